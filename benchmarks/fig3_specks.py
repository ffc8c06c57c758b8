"""The specks in Fig. 3's content-heavy columns: one change at a time, with the grain figure and a zoom.

    python benchmarks/fig3_specks.py --size 256 --ratio 1e-2 --depth 5 \\
        --variants base,steps=400,tv=3,f=10,start=photo,pool=max,content=conv4_2,fourier=1+start=photo \\
        --out /tmp/specks

One panel of ``make figures``' Fig. 3 (Tübingen in the style of Composition VII, the normalised
network, average pooling, style up to ``--depth``, the paper's ``--ratio`` through
``balance.paper_ratio``, 150 L-BFGS evaluations from white noise, ``NORMALISED_TV_WEIGHT``, seed 0),
then the same panel with one change each. A variant is ``+``-joined changes:

* ``steps=N``: the evaluation budget; ``tv=k``: k times the smoothing weight;
* ``f=k``: k times the ratio (more content); ``start=photo|grey|noise``; ``std=s``: the noise's std;
* ``low=k``: k times the weight w_l of relu1_1 and relu2_1 (the others keep 1/depth; pixel runs only);
* ``pool=max``; ``content=conv4_2`` (the response before the ReLU instead of ``relu4_2``);
* ``fourier=g``: L-BFGS on a reparameterised image, ``x = irfft2(rfft2(u) * |f|^-g)`` (low frequencies
  move first; the loss and its minimum are unchanged, only the path is). That variant runs the
  script's own loop with the engine's L-BFGS settings (history 100, strong Wolfe, the loss divided by
  its first value), not ``transfer``. ``then=N``: after it, N more evaluations in pixels (``transfer``
  from its result).

For each it prints the grain figure (``stats.grain``), the weighted content, style and smoothing terms
at the end, and the time, and writes the result and a sheet of the skies (the top-left quarter, 3x,
nearest neighbour) to ``--out``. Measured results: ``PAPER_RATIO.md``, third part.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from nst_helpers import STYLE_LAYERS, load_image, save_image, transfer
from nst_helpers.balance import NORMALISED_TV_WEIGHT, paper_ratio
from nst_helpers.figures import figure_network
from nst_helpers.objective import content_targets, objective, style_targets, white_noise
from nst_helpers.stats import grain


def parse(variant: str) -> dict[str, Any]:
    """``"tv=3+start=photo"`` -> the settings of that run."""
    run: dict[str, Any] = {"steps": 150, "tv": 1.0, "f": 1.0, "start": "noise", "pool": "avg",
                           "content": "relu4_2", "fourier": None, "then": 0, "std": 0.05, "low": 1.0}
    for part in variant.split("+"):
        if part == "base":
            continue
        key, _, value = part.partition("=")
        if key not in run:
            raise SystemExit(f"unknown change {part!r} in {variant!r}; choose from {', '.join(run)}")
        run[key] = value if key in ("start", "pool", "content") else float(value)
    run["steps"], run["then"] = int(run["steps"]), int(run["then"])
    return run


def spectrum(hw: tuple[int, int], gamma: float) -> Tensor:
    """``|f|^-gamma`` on the rfft2 grid, 1 at the lowest non-zero frequency (the mean kept as is)."""
    fy = torch.fft.fftfreq(hw[0]).view(-1, 1)
    fx = torch.fft.rfftfreq(hw[1]).view(1, -1)
    radius = (fx ** 2 + fy ** 2).sqrt().clamp_min(1.0 / max(hw))
    return (radius * max(hw)) ** -gamma


def start_image(kind: str, photo: Tensor, std: float = 0.05) -> Tensor:
    if kind == "photo":
        return photo.clone()
    if kind == "grey":
        return torch.full_like(photo, 0.5)
    return white_noise(photo, std=std, seed=0)


def pixel_run(photo: Tensor, painting: Tensor, vgg, alpha: float, run: dict[str, Any], layers,
              init: str | Tensor, steps: int) -> tuple[Tensor, dict[str, float]]:
    """``transfer`` with the variant's settings from ``init``: its image and weighted terms at the best step."""
    weights = {layer: (run["low"] if layer in ("relu1_1", "relu2_1") else 1.0) / len(layers) for layer in layers}
    result = transfer(photo, painting, alpha=alpha, beta=1.0, style_layers=layers, layer_weights=weights,
                      extractor=vgg, content_layer=run["content"], tv_weight=NORMALISED_TV_WEIGHT * run["tv"],
                      init=init, steps=steps, seed=0, progress=False)
    i = max(result.best_step, 1) - 1
    return result.image, {k: result.history[k][i] for k in ("content", "style", "tv")}


def fourier_run(photo: Tensor, painting: Tensor, vgg, alpha: float, run: dict[str, Any], layers) -> tuple[Tensor, dict]:
    """L-BFGS on u, with the image x = P(u); returns the lowest-loss image and its weighted terms."""
    hw = tuple(photo.shape[-2:])
    s = spectrum(hw, run["fourier"])
    to_image = lambda u: torch.fft.irfft2(torch.fft.rfft2(u) * s, s=hw)  # noqa: E731
    loss = objective(vgg, content_targets(vgg, photo, [run["content"]]), style_targets(vgg, painting, layers, hw),
                     alpha, 1.0, tv_weight=NORMALISED_TV_WEIGHT * run["tv"])
    u = torch.fft.irfft2(torch.fft.rfft2(start_image(run["start"], photo, run["std"])) / s, s=hw).requires_grad_(True)
    steps = run["steps"]
    optimizer = torch.optim.LBFGS([u], lr=1.0, max_iter=steps, max_eval=steps + 25, tolerance_grad=0.0,
                                  tolerance_change=0.0, history_size=100, line_search_fn="strong_wolfe")
    state: dict[str, Any] = {"evals": 0, "scale": None, "best": math.inf}

    def closure() -> Tensor:
        optimizer.zero_grad()
        x = to_image(u)
        total, parts = loss(x)
        value = float(total.detach())
        state["scale"] = state["scale"] or value
        (total / state["scale"]).backward()
        state["evals"] += 1
        if value < state["best"]:
            state.update(best=value, image=x.detach().clone(),
                         parts={k: float(v.detach()) for k, v in parts.items()})
        return total.detach() / state["scale"]

    while state["evals"] < steps:
        before = state["evals"]
        optimizer.step(closure)
        if state["evals"] == before:
            break
    return state["image"].clamp(0, 1), state["parts"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--ratio", type=float, default=1e-2, help="the paper's alpha/beta (a Fig. 3 column)")
    parser.add_argument("--depth", type=int, default=5, help="style at relu1_1 .. the depth-th layer (a row)")
    parser.add_argument("--painting", default="composition_vii")
    parser.add_argument("--variants", default="base")
    parser.add_argument("--out", type=Path, default=Path("specks"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    photo, painting = load_image("tubingen", args.size), load_image(args.painting, args.size)
    layers = STYLE_LAYERS[: args.depth]
    networks = {}
    skies = []
    for variant in args.variants.split(","):
        run = parse(variant)
        if run["pool"] not in networks:
            networks[run["pool"]] = figure_network(pooling=run["pool"])
        vgg = networks[run["pool"]]
        alpha = paper_ratio(args.ratio, args.size) * run["f"]
        started = time.perf_counter()
        if run["fourier"] is None:
            start = "content" if run["start"] == "photo" else start_image(run["start"], photo, run["std"])
            image, parts = pixel_run(photo, painting, vgg, alpha, run, layers, start, run["steps"])
        else:
            image, parts = fourier_run(photo, painting, vgg, alpha, run, layers)
            if run["then"]:
                image, parts = pixel_run(photo, painting, vgg, alpha, run, layers, image, run["then"])
        seconds = time.perf_counter() - started
        tag = f"{args.painting}_{args.size}_{args.ratio:g}_d{args.depth}_{variant}"
        save_image(image, args.out / f"{tag}.png")
        h, w = image.shape[-2:]
        skies.append(torch.nn.functional.interpolate(image[..., : h // 3, : w // 2], scale_factor=3, mode="nearest"))
        terms = ", ".join(f"{k} {v:.3g}" for k, v in parts.items())
        print(f"{variant:32s} grain {grain(image, photo, painting):.3f}  {terms}  {seconds:.0f} s", flush=True)
    gap = torch.ones(1, 3, skies[0].shape[-2], 6)
    sheet = torch.cat([t for sky in skies for t in (sky, gap)][:-1], dim=-1)
    save_image(sheet, args.out / f"skies_{args.size}_{args.ratio:g}_d{args.depth}.png")
    print("variants, left to right:", args.variants)


if __name__ == "__main__":
    main()
