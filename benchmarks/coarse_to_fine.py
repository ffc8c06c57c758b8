"""Coarse-to-fine against single-scale: loss against time, and the pictures at equal time.

    python benchmarks/coarse_to_fine.py --size 512 --steps 100 --splits 60:18,90:40 --out /tmp/c2f.png

Single-scale runs ``--steps`` L-BFGS evaluations at ``--size``; coarse-to-fine
runs two passes, ``a`` evaluations at size/2 then ``b`` at size (``two_pass.py``), for a few splits.
Each final image is scored the same way, whatever produced it: the paper's
total loss at full size, and again at half size (the image downsampled): the
half-size loss sees the picture through receptive fields twice as large, a
proxy for the large-scale structure that coarse-to-fine is meant to buy, but
a biased one, since it is the coarse pass's own objective. So the full-size
loss is also printed term by term: the deep layers' style terms measure the
large-scale structure on neutral ground.
Time is wall-clock time (synchronised on a GPU): run it on a quiet machine.
The coarse pass's beta is scaled by its share of the positions, as
the package's ``coarse_to_fine`` recipe does (``tasks.transfer``).
"""

from __future__ import annotations

import argparse
import time

import torch
from two_pass import two_pass

from nst_helpers import STYLE_LAYERS, content_loss, load_image, load_vgg19, style_layer_loss, transfer
from nst_helpers.images import resize
from nst_helpers.objective import Gram, content_targets, objective, style_targets
from nst_helpers.speed import device_of

BETA = 1e2


def clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def targets(vgg, content: torch.Tensor, style: torch.Tensor) -> tuple[dict, dict]:
    """The photo's relu4_2 responses and the painting's Grams at the content's size, in fp32."""
    return (content_targets(vgg, content, ["relu4_2"]),
            style_targets(vgg, style, STYLE_LAYERS, tuple(content.shape[-2:])))


def scorer(vgg, content: torch.Tensor, style: torch.Tensor, photo_and_grams: tuple[dict, dict], beta: float):
    """image -> the total loss (eq. 7) of that image at the content's size."""
    loss = objective(vgg, photo_and_grams[0], Gram(style), photo_and_grams[1], 1.0, beta)

    def score(image: torch.Tensor) -> float:
        with torch.no_grad():
            return float(loss(resize(image, tuple(content.shape[-2:])).to(device_of(vgg)))[0])

    return score


def terms(vgg, photo_and_grams: tuple[dict, dict], beta: float):
    """image -> its full-size loss split into terms: alpha L_content and beta w_l E_l per style layer.

    The deep layers' terms measure large-scale structure at full size, where
    no pass of either method had an advantage; the half-size loss is, after
    all, what the coarse pass itself minimised.
    """
    device = device_of(vgg)
    photo, grams = photo_and_grams[0]["relu4_2"], photo_and_grams[1]

    def by_term(image: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            feats = vgg(image.to(device), ["relu4_2", *STYLE_LAYERS])
            out = {"content": float(content_loss(feats["relu4_2"].float(), photo))}
            for layer in STYLE_LAYERS:
                out[layer] = beta / len(STYLE_LAYERS) * float(style_layer_loss(feats[layer].float(), grams[layer]))
        return out

    return by_term


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--splits", default="20:10,40:10,30:20", help="coarse:fine evaluation counts")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, all cores)")
    parser.add_argument("--out", default="/tmp/coarse_to_fine.png")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    vgg = load_vgg19("caffe", pooling="avg", device=args.device)
    device = device_of(vgg)
    content, style = load_image("tubingen", args.size), load_image("starry_night", args.size)
    half = args.size // 2
    full_targets = targets(vgg, content, style)
    score_full = scorer(vgg, content, style, full_targets, BETA)
    small = load_image("tubingen", half)  # the half-size score keeps the full size's balance, as transfer's passes do
    positions = small.shape[-1] * small.shape[-2] / (content.shape[-1] * content.shape[-2])
    small_style = load_image("starry_night", half)
    score_half = scorer(vgg, small, small_style, targets(vgg, small, small_style), BETA * positions)
    common = dict(beta=BETA, init="noise", network=vgg, progress=False)

    # Single scale, with a snapshot and a timestamp at every evaluation.
    trace: list[tuple[float, torch.Tensor]] = []
    start = clock(device)
    single = transfer(content, style, steps=args.steps, every=1, recipe="paper",
                      callback=lambda p: trace.append((clock(device) - start, p.image)), **common)
    total = trace[-1][0]
    print(f"| run | time (s) | loss at {args.size} px | loss at {half} px |\n|---|---|---|---|")
    print(f"| single scale, {args.steps} evals | {total:.1f} | {score_full(single.image):.4g} | "
          f"{score_half(single.image):.4g} |")

    def single_at(seconds: float) -> torch.Tensor:
        """The single-scale image as it stood after ``seconds`` (best so far is not tracked: the current one)."""
        earlier = [image for t, image in trace if t <= seconds]
        return earlier[-1] if earlier else trace[0][1]

    by_term = terms(vgg, full_targets, BETA)
    rows = [(f"single scale, {args.steps} evals", total, single.image)]
    panels = [("photo", content), (f"single scale, {args.steps} evals, {total:.0f} s", single.image)]
    for split in args.splits.split(","):
        coarse, fine = (int(n) for n in split.split(":"))
        start = clock(device)
        result = two_pass(content, style, (coarse, fine), **common)
        seconds = clock(device) - start
        same_time = single_at(seconds)
        print(f"| coarse-to-fine {half}:{coarse} + {args.size}:{fine} | {seconds:.1f} | {score_full(result.image):.4g} | "
              f"{score_half(result.image):.4g} |")
        print(f"| single scale at the same time | {seconds:.1f} | {score_full(same_time):.4g} | "
              f"{score_half(same_time):.4g} |")
        panels += [(f"coarse-to-fine {coarse}+{fine}, {seconds:.0f} s", result.image),
                   (f"single scale at {seconds:.0f} s", same_time)]
        rows += [(f"coarse-to-fine {half}:{coarse} + {args.size}:{fine}", seconds, result.image),
                 ("single scale at the same time", seconds, same_time)]

    print(f"\nThe same images' loss at {args.size} px, term by term (alpha L_content, beta w_l E_l):\n")
    print("| run | time (s) | content | " + " | ".join(STYLE_LAYERS) + " |")
    print("|---|---|---|" + "---|" * len(STYLE_LAYERS))
    for name, seconds, image in rows:
        parts = by_term(image)
        print(f"| {name} | {seconds:.1f} | " + " | ".join(f"{v:.3g}" for v in parts.values()) + " |")

    from nst_helpers.plotting import show_images

    figure = show_images([image for _, image in panels], [title for title, _ in panels], ncols=4,
                         suptitle=f"Coarse-to-fine ({half} then {args.size} px) against single scale at equal time")
    figure = getattr(figure, "figure", figure)
    figure.savefig(args.out, dpi=100, bbox_inches="tight")
    from pathlib import Path

    from nst_helpers import save_image

    stem = Path(args.out).with_suffix("")
    for index, (_, image) in enumerate(panels[1:], start=1):  # each picture at full size, to look at closely
        save_image(image, f"{stem}_{index}.png")
    print(f"\nsaved {args.out} and, at full size, {stem}_1.png .. {stem}_{len(panels) - 1}.png (in the figure's order)")


if __name__ == "__main__":
    main()
