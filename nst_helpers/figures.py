"""The paper's figures: their layout, and the statistics that check them.

The runs behind them are in ``runs`` (what the notebooks call too); ``make_figures``
(``python -m nst_helpers figures --out DIR``, ``make figures``) lays their
results out as Gatys, Ecker & Bethge do and writes, for each figure, a PNG, a
caption (.txt), and one ``stats.json`` with the numbers behind the paper's
claims:

* Fig. 1, content row: the pixel error of the reconstruction grows with depth;
  ``relu1_1`` is near perfect (its PSNR is in the JSON).
* Fig. 1, style row: textures from deeper subsets match the painting on larger
  scales: their Gram loss (eq. 4) at the deep layers falls. The spatial
  autocorrelation length of each texture is recorded too, but it is not a check:
  thin stroke edges shorten it while the swirls grow (notebook 03, section 4).
* Fig. 3: along each row, as alpha/beta grows, the content loss of the result
  falls and its style loss rises.
* 2016 paper: content at ``relu2_2`` keeps more pixel detail than at
  ``relu4_2`` (higher PSNR against the photo).

The network is the paper's: the Caffe VGG-19 normalised so that each filter's
mean activation is one (``load_vgg19(normalize=True)``), with average pooling.
The transfers get the engine's smoothing default for this network
(``balance.NORMALISED_TV_WEIGHT``, picked by ``transfer`` from the network's
``normalized`` flag; not in the paper): the
paper's loss alone leaves a pixel-level checker in flat regions (notebook 04).

The paper's alpha/beta ratios do not give its balance with this network and the
printed equations; ``balance.paper_ratio`` maps them, and how that factor and its
size rule were measured is logged in ``benchmarks/PAPER_RATIO.md``.

Size: even on a CPU the figures are 256 px. This network weighs the low style layers
(relu1_1, relu2_1) far more than the raw one, and in flat regions they leave specks
the size of their receptive fields (3-4 px): a coarse dot pattern at 144 px, a sparse
fine speckle at 256 px (``benchmarks/PAPER_RATIO.md``, second part). Fig. 3's two
content-heavy columns kept a lattice of specks in the sky at every budget, smoothing,
size (512 px included), low-layer weight, stride jitter, box constraint and normalisation
floor tried (third and fourth parts). They are eq. 7's compromise: the style term repaints
the sky in the painting's colours, and the specks bring relu4_2's responses there back to
the photo's; blurring them away raises the content term 1.8x and the style term 4 %
(fifth part). So Fig. 3 departs from eq. 7 in two ways, ``FIG3_OPTIONS`` (sixth part): the
content target is the photo in the painting's colours (``transfer(content_colors="painting")``),
and the smoothing counts 31x where the photo is flat (``flat_smoothing=30``). The caption says so.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .balance import NORMALISED_TV_WEIGHT, Preset, paper_ratio
from .features import STYLE_LAYERS, VGG19Features, load_vgg19, paper_name, pick_device
from .optimize import Result, progress_bar, transfer
from .plotting import inset_painting, message_panel, panel_width, row_label, show_panel
from .runs import content_reconstructions, ratio_grid, style_reconstructions
from .speed import device_of
from .stats import autocorrelation_length, grain, gram_losses, psnr

__all__ = ["add_cli", "default_preset", "figure1", "figure2", "figure3", "figure_init", "figure_layers",
    "figure_network", "FigureOutput", "FIGURES", "make_figures", "paper_name", "PRESETS"]

def _ratio_text(ratio: float) -> str:
    """``1e-05`` -> ``1e-5``, ``3e-06`` -> ``3e-6``: how the paper writes its ratios."""
    mantissa, exponent = f"{ratio:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _is_monotone(values: Sequence[float], increasing: bool) -> bool:
    pairs = zip(values, values[1:])
    return all(b > a for a, b in pairs) if increasing else all(b < a for a, b in pairs)


# ------------------------------------------------------------------ presets and the network


PRESETS: dict[str, Preset] = {
    "gpu": Preset(size=512, steps=500, name="gpu"),  # about the paper's scale (its figures are ~512 px wide)
    # 256 px, not less: see "Size" in the module docstring. All five figures in about 52 min on 2 CPU cores
    # (2026-12-01: Fig. 3 29 min with FIG3_OPTIONS, the other four 23 min).
    "cpu": Preset(size=256, steps=150, name="cpu"),
    "smoke": Preset(size=64, steps=10, name="smoke"),  # seconds; for tests, checks nothing about quality
}

#: The figures ``make_figures`` can make, in order.
FIGURES: tuple[str, ...] = ("fig1", "fig2", "fig3", "layers", "init")


def default_preset(device: str | torch.device | None = None) -> str:
    """``"gpu"`` on CUDA, else ``"cpu"``."""
    return "gpu" if pick_device(device).type == "cuda" else "cpu"


def figure_network(device: str | torch.device | None = None, pooling: str = "avg") -> VGG19Features:
    """The paper's network: Caffe VGG-19, normalised (max pooling), then average pooling."""
    return load_vgg19("caffe", pooling=pooling, device=device, normalize=True)


@dataclass
class FigureOutput:
    """One figure: the matplotlib figure, its caption, and its statistics."""

    figure: Any
    caption: str
    stats: dict[str, Any]


# ------------------------------------------------------------------ the figures


@dataclass(frozen=True)
class _Context:
    size: int
    steps: int
    vgg: VGG19Features
    options: dict[str, Any]  # for every run: steps, extractor, seed, optimizer, progress
    init: str  # start of the transfers in Fig. 2, 3 and the layer figure
    tick: Callable[[int], None]  # advance the outer progress bar by n runs

    def image(self, name: str) -> Tensor:
        from .images import load_image

        return load_image(name, self.size)

    def settings(self, transfer: bool = True) -> str:
        o = self.options
        smooth = (f"; the transfers add a small total-variation term (tv_weight {NORMALISED_TV_WEIGHT:.2g}, "
                  "not in the paper) against pixel grain" if transfer else "")
        return (f"{self.size} px (long edge), {self.steps} L-BFGS evaluations from white noise unless said, "
                f"normalised Caffe VGG-19, {self.vgg.pooling} pooling, seed {o.get('seed', 0)}{smooth}")


def _final_losses(result: Result, alpha: float, beta: float) -> dict[str, float]:
    """Unweighted L_content and L_style of the returned image (from the history, before clamping)."""
    i = max(result.best_step, 1) - 1
    h = result.history
    return {"content": h["content"][i] / alpha if alpha else 0.0,
            "style": h["style"][i] / beta if beta else 0.0}


def figure1(ctx: _Context) -> FigureOutput:
    """Fig. 1: content reconstructions of the photo, style reconstructions of Starry Night."""
    import matplotlib.pyplot as plt

    photo, painting = ctx.image("tubingen"), ctx.image("starry_night")
    # Twice the budget: reconstructions from the deep layers converge slowly, and the shallow
    # ones are cheap (the network runs only up to the layer).
    content = content_reconstructions(photo, STYLE_LAYERS, **{**ctx.options, "steps": 2 * ctx.steps})
    ctx.tick(len(content))
    style = style_reconstructions(painting, STYLE_LAYERS, **ctx.options)
    ctx.tick(len(style))

    errors = {layer: psnr(r.image, photo) for layer, r in content.items()}
    grams = {layer: gram_losses(r.image, painting, STYLE_LAYERS, ctx.vgg) for layer, r in style.items()}
    lengths = {layer: autocorrelation_length(r.image) for layer, r in style.items()}
    deep = STYLE_LAYERS[-2:]  # the large-scale end
    deep_gram = {layer: sum(g[k] for k in deep) for layer, g in grams.items()}
    stats = {
        "content": {paper_name(k): {"psnr_db": errors[k], "loss": content[k].loss, "steps": content[k].steps}
                    for k in content},
        "style": {paper_name(k): {"autocorrelation_px": lengths[k], "gram_loss": {paper_name(n): v for n, v in g.items()},
                                  "steps": style[k].steps} for k, g in grams.items()},
        "painting_autocorrelation_px": autocorrelation_length(painting),
        "checks": {
            "content error grows with depth (PSNR falls)": _is_monotone(list(errors.values()), increasing=False),
            "conv1_1 reconstruction PSNR (dB)": errors[STYLE_LAYERS[0]],
            "each deeper style subset matches the conv4_1+conv5_1 Grams better":
                _is_monotone([deep_gram[k] for k in STYLE_LAYERS], increasing=False),
        },
    }

    w = panel_width(ctx.size)
    a_style = painting.shape[-2] / painting.shape[-1]
    a_photo = photo.shape[-2] / photo.shape[-1]
    fig, axes = plt.subplots(2, 6, figsize=(6 * w, w * (a_style + a_photo) + 1.2),
                             gridspec_kw={"height_ratios": [a_style, a_photo], "wspace": 0.05, "hspace": 0.25})
    show_panel(axes[0, 0], painting, "style image")
    show_panel(axes[1, 0], photo, "content image")
    for i, layer in enumerate(STYLE_LAYERS):
        subset = paper_name(layer) if i == 0 else f"+ {paper_name(layer)}"
        show_panel(axes[0, i + 1], style[layer].image, f"{'abcde'[i]}  {subset}\n{lengths[layer]:.1f} px")
        show_panel(axes[1, i + 1], content[layer].image, f"{'abcde'[i]}  {paper_name(layer)}\n{errors[layer]:.1f} dB")
    row_label(axes[0, 0], "style reconstructions")
    row_label(axes[1, 0], "content reconstructions")
    fig.suptitle("Fig. 1: what each layer keeps (Gatys, Ecker & Bethge 2015)")
    caption = (
        "Fig. 1. Top: style reconstructions of The Starry Night (left) from the Gram matrices of growing "
        "subsets of layers, a: conv1_1, b: conv1_1 and conv2_1, ... e: conv1_1 .. conv5_1, with the "
        "texture's autocorrelation length in the titles (the painting's: "
        f"{stats['painting_autocorrelation_px']:.1f} px); the Gram loss at conv4_1 + conv5_1 goes "
        + " -> ".join(f"{deep_gram[k]:.2g}" for k in STYLE_LAYERS) + " from a to e. "
        "Bottom: content reconstructions of the photo (left) from the responses of one layer, a: conv1_1 .. "
        f"e: conv5_1 ({2 * ctx.steps} evaluations each), with their PSNR against the photo: low layers keep "
        "the exact pixels, high layers the arrangement of objects but not the detail. Layer names are the "
        "paper's; they are the "
        "rectified responses (our relu*). " + ctx.settings(transfer=False) + "."
    )
    return FigureOutput(fig, caption, stats)


_FIG2 = (  # (panel, sample, the paper's alpha/beta for that panel (2015, Fig. 2))
    ("B", "shipwreck", 1e-3),
    ("C", "starry_night", 1e-3),
    ("D", "the_scream", 1e-3),
    ("E", "seated_nude", 1e-4),
    ("F", "composition_vii", 1e-4),
)


def figure2(ctx: _Context) -> FigureOutput:
    """Fig. 2: the photo and its transfers, the painting inset in the corner of each."""
    import matplotlib.pyplot as plt

    from .images import SAMPLES, SampleUnavailable, load_image, sample_image

    photo = ctx.image("tubingen")
    results: dict[str, tuple[Tensor, Result, float, float]] = {}
    missing: dict[str, str] = {}
    for panel, name, ratio in _FIG2:
        try:
            path = sample_image(name, download=False)  # never download here: the Picasso needs your consent
        except SampleUnavailable as err:
            missing[panel] = (f"{SAMPLES[name].title} ({SAMPLES[name].credit}): {SAMPLES[name].rights}.\n"
                              f"Not available locally, so not shown.\n{err}")
            ctx.tick(1)
            continue
        painting = load_image(path, ctx.size)
        ours = paper_ratio(ratio, ctx.size)
        result = transfer(photo, painting, alpha=ours, beta=1.0, init=ctx.init, **ctx.options)
        ctx.tick(1)
        results[panel] = (painting, result, ratio, ours)

    stats = {
        "panels": {panel: {"painting": name, "paper_ratio": ratio, "our_ratio": paper_ratio(ratio, ctx.size),
                           **({"losses": _final_losses(results[panel][1], results[panel][3], 1.0),
                               "psnr_vs_photo_db": psnr(results[panel][1].image, photo),
                               "grain": grain(results[panel][1].image, photo, results[panel][0])}
                              if panel in results else {"missing": True})}
                   for panel, name, ratio in _FIG2},
    }
    w = panel_width(ctx.size)
    aspect = photo.shape[-2] / photo.shape[-1]
    fig, axes = plt.subplots(3, 2, figsize=(2 * w * 1.4, 3 * w * 1.4 * aspect + 1.0),
                             gridspec_kw={"wspace": 0.04, "hspace": 0.18})
    show_panel(axes[0, 0], photo, "A  photograph\n ")
    for ax, (panel, name, ratio) in zip(axes.flat[1:], _FIG2):
        if panel in missing:
            message_panel(ax, missing[panel].split("\n")[0] + "\n" + missing[panel].split("\n")[1],
                           tuple(photo.shape[-2:]))
            ax.set_title(f"{panel}  {SAMPLES[name].title}\nnot available", fontsize=9)
            continue
        painting, result, _, _ = results[panel]
        show_panel(ax, result.image, f"{panel}  {SAMPLES[name].title}\nα/β = {_ratio_text(ratio)} (paper)")
        inset_painting(ax, painting)
    fig.suptitle("Fig. 2: the photograph in the style of five paintings")
    absent = "".join(f" Panel {p} is empty: {missing[p].splitlines()[0]}" for p in missing)
    caption = (
        "Fig. 2. A: the photograph (Neckarfront, Tübingen; photo Andreas Praefcke, CC BY 3.0). B-F: the "
        "photograph rendered in the style of the painting shown in the lower-left corner: B The Shipwreck of "
        "the Minotaur (Turner), C The Starry Night (van Gogh), D The Scream (Munch), E Femme nue assise "
        "(Picasso), F Composition VII (Kandinsky). Content at conv4_2, style at conv1_1 .. conv5_1 "
        "(w_l = 1/5), the paper's alpha/beta (1e-3 for B-D, 1e-4 for E-F), multiplied by "
        f"{paper_ratio(1.0, ctx.size):.2g} at {ctx.size} px to give the paper's balance (balance.paper_ratio). "
        + ctx.settings() + "." + absent
    )
    return FigureOutput(fig, caption, stats)


FIG3_RATIOS = (1e-5, 1e-4, 1e-3, 1e-2)  # the paper's alpha/beta, columns of Fig. 3
#: Fig. 3's two departures from eq. 7 (``transfer``): the content target is the photo in the painting's colours,
#: and the smoothing counts 31x where the photo is flat. Without them the content-heavy columns keep a lattice of
#: specks in the sky (``benchmarks/PAPER_RATIO.md``, fifth and sixth parts); ``{}`` gives the paper's loss.
FIG3_OPTIONS: dict[str, Any] = {"content_colors": "painting", "flat_smoothing": 30.0}


def figure3(ctx: _Context) -> FigureOutput:
    """Fig. 3: Composition VII; rows = style subsets up to conv1_1 .. conv5_1, columns = alpha/beta."""
    import matplotlib.pyplot as plt

    photo, painting = ctx.image("tubingen"), ctx.image("composition_vii")
    ours = {r: paper_ratio(r, ctx.size) for r in FIG3_RATIOS}
    grid: dict[tuple[int, float], Result] = {}
    for depth in range(1, 6):  # row by row, so that the progress bar moves
        grid.update(ratio_grid(photo, painting, ratios=list(ours.values()), depths=[depth],
                               init=ctx.init, **FIG3_OPTIONS, **ctx.options))
        ctx.tick(len(ours))
    rows: dict[str, dict[str, dict[str, float]]] = {}
    checks: dict[str, bool] = {}
    for depth in range(1, 6):
        row = {_ratio_text(r): _final_losses(grid[(depth, ours[r])], ours[r], 1.0) for r in FIG3_RATIOS}
        name = f"up to {paper_name(STYLE_LAYERS[depth - 1])}"
        rows[name] = row
        contents = [v["content"] for v in row.values()]
        styles = [v["style"] for v in row.values()]
        checks[f"{name}: content loss falls as alpha/beta grows"] = _is_monotone(contents, increasing=False)
        checks[f"{name}: style loss rises as alpha/beta grows"] = _is_monotone(styles, increasing=True)
    grains = {f"up to {paper_name(STYLE_LAYERS[d - 1])}": {_ratio_text(r): grain(grid[(d, ours[r])].image, photo, painting)
                                                         for r in FIG3_RATIOS} for d in range(1, 6)}
    stats = {"our_ratios": {_ratio_text(r): v for r, v in ours.items()}, "losses": rows, "grain": grains,
             "options": FIG3_OPTIONS, "checks": checks}

    w = panel_width(ctx.size)
    aspect = photo.shape[-2] / photo.shape[-1]
    fig, axes = plt.subplots(5, 4, figsize=(4 * w + 0.6, 5 * w * aspect + 0.7),
                             gridspec_kw={"wspace": 0.04, "hspace": 0.06})
    for depth in range(1, 6):
        for j, r in enumerate(FIG3_RATIOS):
            ax = axes[depth - 1, j]
            show_panel(ax, grid[(depth, ours[r])].image, f"α/β = {_ratio_text(r)}" if depth == 1 else None)
        row_label(axes[depth - 1, 0], paper_name(STYLE_LAYERS[depth - 1]))
    fig.suptitle("Fig. 3: style layers (rows) against the content/style ratio (columns)")
    caption = (
        "Fig. 3. The photograph in the style of Composition VII (Kandinsky). Rows: the style is matched on "
        "conv1_1 only, then conv1_1 and conv2_1, ... up to conv1_1 .. conv5_1 (label: the deepest layer). "
        "Columns: the paper's alpha/beta, 1e-5 .. 1e-2 (content at conv4_2); ours are "
        f"{paper_ratio(1.0, ctx.size):.2g} times these at {ctx.size} px (balance.paper_ratio). Deeper rows transfer larger-scale "
        "structure; to the right the photograph dominates, to the left the painting. Two departures from the "
        "paper's eq. 7, in every panel (they weigh with alpha, so they matter to the right): the content "
        "target is the photo with its colours mapped to the painting's mean and covariance "
        "(content_colors='painting'), and the smoothing term counts "
        f"{1 + FIG3_OPTIONS['flat_smoothing']:.0f}x where the photo is flat (flat_smoothing). With the paper's loss "
        "those columns keep a lattice of small coloured specks in the sky: the style term repaints the sky in the "
        "painting's colours, and the specks give relu4_2 back the photo's sky there (benchmarks/PAPER_RATIO.md, "
        "third to sixth parts; notebook 04). "
        + ctx.settings() + "."
    )
    return FigureOutput(fig, caption, stats)


def figure_layers(ctx: _Context) -> FigureOutput:
    """2016 paper (Sec. 3.2): content matched at conv2_2 against conv4_2."""
    import matplotlib.pyplot as plt

    photo, painting = ctx.image("tubingen"), ctx.image("starry_night")
    ratio = 1e-3
    ours = paper_ratio(ratio, ctx.size)
    layers = ("relu2_2", "relu4_2")
    results = {layer: transfer(photo, painting, alpha=ours, beta=1.0, content_layer=layer, init=ctx.init,
                               **ctx.options) for layer in layers}
    ctx.tick(len(results))
    errors = {layer: psnr(r.image, photo) for layer, r in results.items()}
    stats = {
        "paper_ratio": ratio, "our_ratio": ours,
        "psnr_vs_photo_db": {paper_name(k): v for k, v in errors.items()},
        "checks": {"conv2_2 keeps more pixel detail than conv4_2 (higher PSNR)": errors["relu2_2"] > errors["relu4_2"]},
    }
    w = panel_width(ctx.size) * 1.3
    aspect = photo.shape[-2] / photo.shape[-1]
    fig, axes = plt.subplots(1, 3, figsize=(3 * w, w * aspect + 0.9), gridspec_kw={"wspace": 0.04})
    show_panel(axes[0], photo, "photograph\n ")
    inset_painting(axes[0], painting)
    for ax, layer in zip(axes[1:], layers):
        show_panel(ax, results[layer].image, f"content at {paper_name(layer)}\n{errors[layer]:.1f} dB")
    fig.suptitle("Which layer holds the content (Gatys et al. 2016, Sec. 3.2)")
    caption = (
        "Content layer (Gatys, Ecker & Bethge 2016, Sec. 3.2). The photograph in the style of The Starry "
        "Night (inset), with the content matched at conv2_2 (middle) or conv4_2 (right), style at conv1_1 .. "
        f"conv5_1, the paper's alpha/beta 1e-3 (ours {ours:.2g}). The paper: at conv2_2 the photo's fine "
        "detail survives and the painting's texture looks laid over it; at conv4_2 texture and content merge. "
        f"PSNR against the photo: {errors['relu2_2']:.1f} dB (conv2_2), {errors['relu4_2']:.1f} dB (conv4_2). " + ctx.settings() + "."
    )
    return FigureOutput(fig, caption, stats)


def figure_init(ctx: _Context) -> FigureOutput:
    """2016 paper (Sec. 3.4): the start of gradient descent: content, style, or white noise."""
    import matplotlib.pyplot as plt

    photo, painting = ctx.image("tubingen"), ctx.image("starry_night")
    ratio = 1e-3
    ours = paper_ratio(ratio, ctx.size)
    starts = {"content": dict(init="content"), "style": dict(init="style"),
              "noise, seed 0": dict(init="noise", seed=0), "noise, seed 1": dict(init="noise", seed=1)}
    results = {}
    for label, start in starts.items():
        options = {**ctx.options, **start}
        results[label] = transfer(photo, painting, alpha=ours, beta=1.0, **options)
        ctx.tick(1)
    stats = {
        "paper_ratio": ratio, "our_ratio": ours,
        "runs": {label: {"psnr_vs_photo_db": psnr(r.image, photo), "loss": r.loss, **_final_losses(r, ours, 1.0)}
                 for label, r in results.items()},
        "psnr_between_noise_seeds_db": psnr(results["noise, seed 0"].image, results["noise, seed 1"].image),
    }
    w = panel_width(ctx.size)
    aspect = photo.shape[-2] / photo.shape[-1]
    fig, axes = plt.subplots(1, 4, figsize=(4 * w, w * aspect + 0.9), gridspec_kw={"wspace": 0.04})
    for ax, (label, result) in zip(axes, results.items()):
        show_panel(ax, result.image, f"from {label}")
    fig.suptitle("Where gradient descent starts (Gatys et al. 2016, Sec. 3.4)")
    caption = (
        "Initialisation (Gatys, Ecker & Bethge 2016, Sec. 3.4). The same transfer (The Starry Night, alpha/beta "
        f"1e-3 in the paper's units, ours {ours:.2g}) started from the photograph, from the painting, and from "
        "two white-noise images. The paper: a start from the photo or the painting pulls the result towards "
        "that image, and different noise gives different pictures of the same quality. PSNR against the "
        "photo: " + ", ".join(f"{k} {v['psnr_vs_photo_db']:.1f} dB" for k, v in stats["runs"].items()) + ". "
        + ctx.settings() + "."
    )
    return FigureOutput(fig, caption, stats)


_MAKERS: dict[str, Callable[[_Context], FigureOutput]] = {
    "fig1": figure1, "fig2": figure2, "fig3": figure3, "layers": figure_layers, "init": figure_init,
}
_RUNS = {"fig1": 10, "fig2": len(_FIG2), "fig3": 5 * len(FIG3_RATIOS), "layers": 2, "init": 4}


def make_figures(
    out: str | Path = "figures",
    only: Sequence[str] = FIGURES,
    size: int | None = None,
    steps: int | None = None,
    preset: str | None = None,
    device: str | torch.device | None = None,
    pooling: str = "avg",
    optimizer: str = "lbfgs",
    init: str = "noise",
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Make the paper's figures: ``out/<name>.png``, ``out/<name>.txt`` and ``out/stats.json``.

    Args:
        out: output folder (created).
        only: which of ``FIGURES`` to make.
        size, steps: override the preset's image size (long edge, px) and evaluations per run.
        preset: ``"gpu"``, ``"cpu"`` or ``"smoke"`` (see ``PRESETS``); default ``default_preset(device)``.
        device: where to run; ``None`` picks CUDA, MPS, then CPU.
        pooling: the paper's ``"avg"`` (after normalising with max pooling), or ``"max"``.
        optimizer: ``"lbfgs"`` (the paper) or ``"adam"``.
        init: where the transfers of Fig. 2, 3 and the layer figure start (the paper: noise).
        seed: white-noise seed.
        progress: show progress bars (one over runs, one per run).

    Returns:
        The statistics written to ``stats.json`` (existing entries for figures
        not made this time are kept).
    """
    import matplotlib.pyplot as plt

    unknown = [name for name in only if name not in _MAKERS]
    if unknown:
        raise ValueError(f"Unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    preset = preset or default_preset(device)
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    size = size or PRESETS[preset].size
    steps = steps or PRESETS[preset].steps
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    vgg = figure_network(device, pooling=pooling)
    stats_path = out / "stats.json"
    stats: dict[str, Any] = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    bar = progress_bar(sum(_RUNS[name] for name in only), "figures (runs)", progress, unit="run")
    options = {"steps": steps, "extractor": vgg, "optimizer": optimizer, "seed": seed, "progress": progress}
    interrupted = _interrupts()

    def tick(runs: int) -> None:
        bar.update(runs)
        if interrupted.seen:  # the engine ended that run at Ctrl-C and kept its picture; end the figures too
            raise KeyboardInterrupt

    ctx = _Context(size=size, steps=steps, vgg=vgg, options=options, init=init, tick=tick)
    try:
        for name in only:
            bar.set_postfix_str(name)
            start = time.perf_counter()
            made = _MAKERS[name](ctx)
            made.figure.savefig(out / f"{name}.png", dpi=100, bbox_inches="tight")
            plt.close(made.figure)
            (out / f"{name}.txt").write_text(made.caption + "\n")
            stats[name] = {**made.stats, "settings": {
                "size": size, "steps": steps, "device": str(device_of(vgg)), "pooling": pooling,
                "optimizer": optimizer, "init": init, "seed": seed, "normalized": True,
                "tv_weight": NORMALISED_TV_WEIGHT,
                "ratio_factor": paper_ratio(1.0, size), "seconds": round(time.perf_counter() - start, 1)}}
            stats_path.write_text(json.dumps(stats, indent=1, default=float) + "\n")
    finally:
        bar.close()
        interrupted.restore()
    return stats


class _interrupts:
    """Notes Ctrl-C while the figures run (main thread only), then raises as Python does.

    The engine catches the ``KeyboardInterrupt`` to return its best image; ``make_figures`` checks
    ``seen`` after each run so that Ctrl-C ends all 37 runs, not one. ``restore`` puts back the
    previous SIGINT handler (the only process-wide change, for the duration of ``make_figures``).
    """

    def __init__(self) -> None:
        self.seen = False
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._note)

    def _note(self, signum: int, frame: Any) -> None:
        self.seen = True
        signal.default_int_handler(signum, frame)

    def restore(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


# ------------------------------------------------------------------ command line


def _cli(args: Any) -> int:
    import matplotlib

    matplotlib.use("Agg")  # this process only writes files
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    if args.weights != "caffe":
        raise ValueError("The figures use the paper's normalised Caffe VGG-19; leave --weights at caffe")
    stats = make_figures(args.out, only=only, size=args.size, steps=args.steps, preset=args.preset,
                         device=args.device, pooling=args.pooling, optimizer=args.optimizer, init=args.init or "noise",
                         seed=args.seed)
    for name in only:
        for check, value in stats[name].get("checks", {}).items():
            shown = f"{value:.1f}" if isinstance(value, float) else ("yes" if value else "NO")
            print(f"{name}: {check}: {shown}")
    print(f"wrote {', '.join(f'{n}.png' for n in only)}, captions and stats.json to {args.out}")
    return 0


def add_cli(subparsers: Any, add_common: Callable[..., None]) -> None:
    """Add ``figures`` to the command line (``cli.build_parser`` calls this)."""
    p = subparsers.add_parser(
        "figures", help="make the paper's figures (PNG + caption + stats.json)",
        description="Make the figures of Gatys et al. with the paper's normalised network and average pooling. "
                    "Size and steps follow the device unless given: " +
                    ", ".join(f"{k}: {v.size} px, {v.steps} steps" for k, v in PRESETS.items()) +
                    ". --init sets the start of the transfers (Fig. 2, 3, layers); --normalize is implied.",
    )
    p.add_argument("--out", default="figures", help="output folder (default figures/)")
    p.add_argument("--only", default=",".join(FIGURES), help=f"comma-separated subset of {','.join(FIGURES)}")
    p.add_argument("--preset", choices=list(PRESETS), default=None, help="default: gpu on CUDA, else cpu")
    add_common(p, size=None, steps=None, size_help="long edge in px (default: the preset's)",
               steps_help="evaluations per run (default: the preset's)")
    p.set_defaults(run=_cli)
