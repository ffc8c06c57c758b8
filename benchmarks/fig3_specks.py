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
  from its result); ``g2=g+n2=N``: then N more evaluations on that path at gamma g.
* the same loop on the pixels (``fourier=0``), with one of: ``jitter=N`` (every N evaluations the loss
  moves to the image rolled by a new random offset in [0, ``shift``), default 8, against the photo rolled
  the same way); ``avg=K`` (each evaluation averages the loss over K fixed offsets); ``box=sigmoid|clamp``
  (the image kept inside [0, 1] by sigmoid(u) or clamp(u) in the loss); ``alias=k`` (k times a term on the
  spread of the means of the image's ``period`` x ``period`` phases, default 8); ``ctv=k`` (k times the
  smoothing weight on the colour alone, the image less its mean over R, G, B). That loop prints how much
  of the unclamped image lies outside [0, 1].
* ``floor=k``: the normalised network with every filter's mean raised to at least k times its layer's
  median (the package uses 0.1); ``net=raw``: the raw Caffe network.
* ``psize=k``: the painting loaded at k times ``--size`` (its Grams rescaled per position, as always).
* in the script's own loop too: ``cblur=s`` (the content term sees the image and the photo through a
  Gaussian blur of s px; the style term sees the image as it is); ``clum=1`` (the same, through their
  luminance, ``color.luminance``: the content term cannot see colour); ``anchor=k`` (k times the smoothing
  weight on ``sum (x - photo)^2``, the pixels held to the photo's; with ``asig=s`` only their part above a
  Gaussian blur of s px); ``ftv=k`` (k times the smoothing weight, on top of the usual term, where the
  photo is flat: ``losses.flat_regions``, the sky).
* ``cmap=1``: the content target is the photo with its colours mapped to the painting's mean and
  covariance (``figures.PaintingColors()``); with ``ftv=k`` the smoothing mask still comes
  from the photo itself. ``cmap=1+ftv=30`` is what ``make figures`` now uses for Fig. 3 (sixth part;
  ``figures.FIG3_EXTRAS``).

``--probe RESULT.png`` runs nothing: it prints the result's weighted terms as it is, with its sky blurred,
and with its sky replaced by the photo's own (as it is, and moved to the result's mean sky colour), the
content term split into the relu4_2 cells in the sky and the others. It says which term the sky's
specks serve.

For each it prints the grain figure (``stats.grain``), the weighted content, style and smoothing terms
at the end, and the time, and writes the result and a sheet of the skies (the top-left quarter, 3x,
nearest neighbour) to ``--out``. Measured results: ``PAPER_RATIO.md``, third to fifth parts.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from nst_helpers import STYLE_LAYERS, load_image, load_vgg19, save_image, transfer
from nst_helpers.balance import NORMALISED_TV_WEIGHT, paper_ratio
from nst_helpers.color import luminance, match_colors
from nst_helpers.features import normalization_means, normalize_state
from nst_helpers.figures import figure_network
from nst_helpers.losses import flat_regions, style_layer_loss, total_variation
from nst_helpers.objective import Gram, content_targets, objective, style_targets, white_noise
from nst_helpers.smoothing import Smoothing
from nst_helpers.stats import grain


def parse(variant: str) -> dict[str, Any]:
    """``"tv=3+start=photo"`` -> the settings of that run."""
    run: dict[str, Any] = {"steps": 150, "tv": 1.0, "f": 1.0, "start": "noise", "pool": "avg",
                           "content": "relu4_2", "fourier": None, "then": 0, "std": 0.05, "low": 1.0,
                           "jitter": 0, "avg": 0, "shift": 8, "box": "none", "net": "normalised", "alias": 0.0,
                           "period": 8, "floor": 0.0, "g2": -1.0, "n2": 0,
                           "ctv": 0.0, "psize": 1.0, "cblur": 0.0,
                           "anchor": 0.0, "asig": 0.0, "ftv": 0.0, "clum": 0.0, "cmap": 0.0}
    for part in variant.split("+"):
        if part == "base":
            continue
        key, _, value = part.partition("=")
        if key not in run:
            raise SystemExit(f"unknown change {part!r} in {variant!r}; choose from {', '.join(run)}")
        run[key] = value if key in ("start", "pool", "content", "box", "net") else float(value)
    for key in ("steps", "then", "jitter", "avg", "shift", "period", "n2"):
        run[key] = int(run[key])
    return run


def spectrum(hw: tuple[int, int], gamma: float) -> Tensor:
    """``|f|^-gamma`` on the rfft2 grid, 1 at the lowest non-zero frequency (the mean kept as is)."""
    fy = torch.fft.fftfreq(hw[0]).view(-1, 1)
    fx = torch.fft.rfftfreq(hw[1]).view(1, -1)
    radius = (fx ** 2 + fy ** 2).sqrt().clamp_min(1.0 / max(hw))
    return (radius * max(hw)) ** -gamma


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """``x`` blurred by a Gaussian of ``sigma`` px (separable, reflected at the border)."""
    r = max(1, math.ceil(3 * sigma))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=x.dtype) ** 2 / (2 * sigma ** 2))
    k = (k / k.sum()).to(x.device)
    c = x.shape[1]
    x = torch.nn.functional.pad(x, (r, r, r, r), mode="reflect")
    x = torch.nn.functional.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return torch.nn.functional.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def probe(image: Tensor, photo: Tensor, painting: Tensor, vgg, alpha: float, layers) -> None:
    """Which term do the sky's specks serve? Prints ``image``'s weighted terms as it is, with its sky
    (``losses.flat_regions``) blurred, with its sky replaced by the photo's own, and with the photo's sky moved to the
    image's mean sky colour. The content term is split into the relu4_2 cells whose 8 x 8 px lie in the sky
    and the others."""
    flat = flat_regions(photo)
    content = content_targets(vgg, photo, ["relu4_2"])["relu4_2"]
    grams = style_targets(vgg, painting, layers, tuple(photo.shape[-2:]))
    sky_cells = torch.nn.functional.avg_pool2d(flat, 8)[0, 0] > 0.99
    print(f"sky: {flat.mean():.0%} of the pixels, {sky_cells.float().mean():.0%} of the relu4_2 cells")
    cases = {"as it is": image, "sky blurred (1 px)": flat * gaussian_blur(image, 1.0) + (1 - flat) * image,
             "sky blurred (2 px)": flat * gaussian_blur(image, 2.0) + (1 - flat) * image,
             "sky = the photo's": flat * photo + (1 - flat) * image}
    shift = ((image - photo) * flat).sum((-2, -1), keepdim=True) / flat.sum()  # the sky's mean colour change
    cases["sky = photo's + shift"] = flat * (photo + shift) + (1 - flat) * image
    with torch.no_grad():
        for name, x in cases.items():
            feats = vgg(x, ["relu4_2", *layers])
            cells = alpha * 0.5 * (feats["relu4_2"] - content).pow(2).sum(1)[0]
            style = {k: style_layer_loss(feats[k], grams[k]) / len(layers) for k in layers}
            print(f"  {name:20s} content {float(cells.sum()):.4f} (sky cells {float(cells[sky_cells].sum()):.4f}, "
                  f"the others {float(cells[~sky_cells].sum()):.4f})  style {float(sum(style.values())):.4f} ("
                  + ", ".join(f"{k} {float(v):.4f}" for k, v in style.items()) + ")")


def network(run: dict[str, Any]):
    """The variant's network: the figures' normalised one, the raw one, or one normalised with ``floor``."""
    if not run["floor"]:
        return figure_network(pooling=run["pool"]) if run["net"] == "normalised" else load_vgg19("caffe", pooling=run["pool"])
    # each filter's mean raised to at least floor x its layer's median (the package's own floor is 0.1)
    means = {k: m.clamp_min(run["floor"] * m.median()) for k, m in normalization_means().items()}
    vgg = load_vgg19("caffe", pooling=run["pool"])
    vgg.load_state_dict(normalize_state(vgg.state_dict(), means))
    vgg.normalized = True
    return vgg


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
                      network=vgg, content_layer=run["content"], extras=[Smoothing(NORMALISED_TV_WEIGHT * run["tv"])],
                      init=init, steps=steps, seed=0, recipe="paper", progress=False)
    i = max(result.best_step, 1) - 1
    return result.image, {k: result.history[k][i] for k in ("content", "style", "tv")}


SHIFTS = ((0, 0), (4, 4), (0, 4), (4, 0))
OWN_LOOP = ("jitter", "avg", "alias", "ctv", "cblur", "clum", "anchor", "ftv")  # changes only fourier_run makes


def fourier_run(photo: Tensor, painting: Tensor, vgg, alpha: float, run: dict[str, Any], layers,
                init: Tensor | None = None) -> tuple[Tensor, dict]:
    """L-BFGS on u, with the image x = P(u) (P the identity without ``fourier``); returns its image and terms.

    ``jitter=N``: every N evaluations the loss moves to the image rolled by a new random (dy, dx) in
    [0, shift), against the photo rolled the same way, and L-BFGS restarts; ``avg=K``: each evaluation
    averages the loss over the first K of SHIFTS. Without either: the lowest-loss image; with: the last.
    """
    hw = tuple(photo.shape[-2:])
    s = spectrum(hw, run["fourier"] or 0.0)
    squash, unsquash = {"none": (lambda v: v, lambda v: v),
                        "sigmoid": (torch.sigmoid, lambda v: torch.logit(v.clamp(0.02, 0.98))),
                        "clamp": (lambda v: v.clamp(0, 1), lambda v: v)}[run["box"]]
    to_image = lambda u: squash(torch.fft.irfft2(torch.fft.rfft2(u) * s, s=hw))  # noqa: E731
    grams = style_targets(vgg, painting, layers, hw)
    tv = NORMALISED_TV_WEIGHT * run["tv"]
    smoothing = {"tv": lambda x: alpha * tv * total_variation(x)}  # the engine's Smoothing(tv) term

    def loss_at(shift: tuple[int, int]):
        if run["cblur"] or run["clum"]:  # the content term sees the image blurred or grey, the style term as it is
            seen = (lambda v: gaussian_blur(v, run["cblur"])) if run["cblur"] else luminance  # noqa: E731
            target = content_targets(vgg, seen(torch.roll(photo, shift, dims=(-2, -1))), [run["content"]])
            fc = objective(vgg, target, None, {}, alpha, 1.0)
            fs = objective(vgg, {}, Gram(painting), grams, alpha, 1.0, terms=smoothing)

            def both(x: Tensor):
                x = torch.roll(x, shift, dims=(-2, -1))
                (c, pc), (t, ps) = fc(seen(x)), fs(x)
                return c + t, {"content": pc["content"], "style": ps["style"], "tv": ps["tv"]}
            return both
        target = content_targets(vgg, torch.roll(photo, shift, dims=(-2, -1)), [run["content"]])
        f = objective(vgg, target, Gram(painting), grams, alpha, 1.0, terms=smoothing)
        return lambda x: f(torch.roll(x, shift, dims=(-2, -1)))

    shifted = [loss_at(d) for d in SHIFTS[: max(run["avg"], 1)]]

    def loss(x: Tensor):
        results = [f(x) for f in shifted]
        n = len(results)
        return (sum(r[0] for r in results) / n, {k: sum(r[1][k] for r in results) / n for k in results[0][1]})

    plain = loss_at((0, 0))
    flat = flat_regions(run.get("flat_of", photo))  # where the (original) photo is flat
    period, alias_weight = run["period"], run["alias"] * alpha * tv * hw[0] * hw[1]

    def alias(x: Tensor) -> Tensor:
        """The power of the period-``period`` pattern: how far the means of the period x period phases differ."""
        h, w = (hw[0] // period) * period, (hw[1] // period) * period
        phases = x[..., :h, :w].unflatten(-1, (w // period, period)).unflatten(-3, (h // period, period))
        means = phases.mean(dim=(-4, -2))  # (B, C, period, period)
        return ((means - means.mean(dim=(-2, -1), keepdim=True)) ** 2).sum()

    u = torch.fft.irfft2(torch.fft.rfft2(unsquash(start_image(run["start"], photo, run["std"]) if init is None else init)) / s, s=hw)
    u.requires_grad_(True)
    steps, chunk = run["steps"], run["jitter"] or run["steps"]
    rng = torch.Generator().manual_seed(0)
    state: dict[str, Any] = {"evals": 0, "scale": None, "best": math.inf}
    current = loss
    while state["evals"] < steps:
        if run["jitter"]:
            d = tuple(int(v) for v in torch.randint(0, run["shift"], (2,), generator=rng))
            current = loss_at(d)
        budget = min(chunk, steps - state["evals"])
        optimizer = torch.optim.LBFGS([u], lr=1.0, max_iter=budget, max_eval=budget + 25, tolerance_grad=0.0,
                                      tolerance_change=0.0, history_size=100, line_search_fn="strong_wolfe")
        stop = state["evals"] + budget

        def closure(optimizer=optimizer, current=current) -> Tensor:
            optimizer.zero_grad()
            x = to_image(u)
            total, parts = current(x)
            if alias_weight:
                parts = {**parts, "alias": alias_weight * alias(x)}
                total = total + parts["alias"]
            if run["ctv"]:  # smoothing on the colour only: the image less its grey (the mean of R, G, B)
                parts = {**parts, "ctv": run["ctv"] * alpha * tv * total_variation(x - x.mean(1, keepdim=True))}
                total = total + parts["ctv"]
            if run["anchor"]:  # pixels held to the photo's (their high-pass part alone with asig)
                d = x - photo
                if run["asig"]:
                    d = d - gaussian_blur(d, run["asig"])
                parts = {**parts, "anchor": run["anchor"] * alpha * tv * d.pow(2).sum()}
                total = total + parts["anchor"]
            if run["ftv"]:  # smoothing where the photo is flat only (its local gradient below a threshold)
                dy, dx = x[..., 1:, :-1] - x[..., :-1, :-1], x[..., :-1, 1:] - x[..., :-1, :-1]
                parts = {**parts, "ftv": run["ftv"] * alpha * tv * (flat[..., :-1, :-1] * (dy ** 2 + dx ** 2)).sum()}
                total = total + parts["ftv"]
            value = float(total.detach())
            state["scale"] = state["scale"] or value
            (total / state["scale"]).backward()
            state["evals"] += 1
            if value < state["best"]:
                state.update(best=value, image=x.detach().clone(),
                             parts={k: float(v.detach()) for k, v in parts.items()})
            return total.detach() / state["scale"]

        while state["evals"] < stop:
            before = state["evals"]
            optimizer.step(closure)
            if state["evals"] == before:
                break
    if run["jitter"] or run["avg"]:
        with torch.no_grad():
            image = to_image(u).detach()
            _, parts = plain(image)
        return image.clamp(0, 1), {k: float(v) for k, v in parts.items()}
    x = state["image"]
    outside = (x < 0) | (x > 1)
    print(f"    out of [0, 1]: {outside.float().mean():.2%} of values, range {x.min():.2f} .. {x.max():.2f}")
    return x.clamp(0, 1), state["parts"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--ratio", type=float, default=1e-2, help="the paper's alpha/beta (a Fig. 3 column)")
    parser.add_argument("--depth", type=int, default=5, help="style at relu1_1 .. the depth-th layer (a row)")
    parser.add_argument("--painting", default="composition_vii")
    parser.add_argument("--variants", default="base")
    parser.add_argument("--out", type=Path, default=Path("specks"))
    parser.add_argument("--probe", type=Path, help="a result (PNG) to probe instead of running variants")
    args = parser.parse_args()
    if args.probe:
        layers = STYLE_LAYERS[: args.depth]
        probe(load_image(str(args.probe), args.size), load_image("tubingen", args.size),
              load_image(args.painting, args.size), figure_network(pooling="avg"),
              paper_ratio(args.ratio, args.size), layers)
        return
    args.out.mkdir(parents=True, exist_ok=True)

    photo = load_image("tubingen", args.size)
    paintings: dict[float, Tensor] = {}
    layers = STYLE_LAYERS[: args.depth]
    networks = {}
    skies = []
    for variant in args.variants.split(","):
        run = parse(variant)
        key = (run["pool"], run["net"], run["floor"])
        if key not in networks:
            networks[key] = network(run)
        vgg = networks[key]
        alpha = paper_ratio(args.ratio, args.size) * run["f"]
        if run["psize"] not in paintings:
            paintings[run["psize"]] = load_image(args.painting, round(args.size * run["psize"]))
        painting = paintings[run["psize"]]
        target = match_colors(photo, painting).clamp(0, 1) if run["cmap"] else photo  # the content target
        started = time.perf_counter()
        if run["fourier"] is None and run["box"] == "none" and not any(run[k] for k in OWN_LOOP):
            start = "content" if run["start"] == "photo" else start_image(run["start"], photo, run["std"])
            image, parts = pixel_run(target, painting, vgg, alpha, run, layers, start, run["steps"])
        else:
            image, parts = fourier_run(target, painting, vgg, alpha, {**run, "flat_of": photo}, layers)
            if run["n2"]:  # a second stage: n2 evaluations at gamma g2 from the first stage's image
                image, parts = fourier_run(photo, painting, vgg, alpha, {**run, "fourier": run["g2"],
                                                                         "steps": run["n2"]}, layers, init=image)
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
