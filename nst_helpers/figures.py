"""The paper's figures: their runs, their layout, and the statistics that check them.

The runs are ``runs``'s (what the notebooks call too); each figure here lays their
results out as Gatys, Ecker & Bethge do, with a caption and the numbers behind the
paper's claims (``figure_files.make_figures`` writes them: ``make figures``):

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
The transfers add the engine's smoothing (``smoothing.Smoothing``, not in the
paper), measured for this network: the paper's loss alone leaves a pixel-level
checker in flat regions (notebook 04).

The paper's alpha/beta ratios do not give its balance with this network and the
printed equations; ``balance.paper_ratio`` maps them (``benchmarks/PAPER_RATIO.md``).

Size: even on a CPU the figures are 256 px: this network weighs the low style layers
far more than the raw one, and at 144 px they leave a coarse dot pattern in flat
regions (``benchmarks/PAPER_RATIO.md``, second part).

Note: Fig. 3 departs from eq. 7 in two ways (``FIG3_EXTRAS``), because its content-heavy
columns keep a lattice of specks in the sky with the paper's loss at every setting tried
(``benchmarks/PAPER_RATIO.md``, third to sixth parts): the content target is the photo in the
painting's colours (``PaintingColors``), and the smoothing counts 31x where the photo is flat
(``FlatSmoothing``). The caption says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .balance import Preset, paper_ratio
from .color import match_colors
from .features import STYLE_LAYERS, VGG19Features, load_vgg19, paper_name, pick_device
from .losses import flat_regions, total_variation
from .objective import Extra, Style, Term
from .optimize import Result
from .plotting import inset_painting, message_panel, panel_width, row_label, show_panel
from .runs import content_reconstructions, ratio_grid, style_reconstructions
from .smoothing import Smoothing
from .stats import autocorrelation_length, grain, gram_losses, psnr
from .tasks import transfer

__all__ = ["FIG3_EXTRAS", "FIGURES", "MAKERS", "PRESETS", "FigureContext", "FigureOutput", "FlatSmoothing",
           "PaintingColors", "default_preset", "figure1", "figure2", "figure3", "figure_init", "figure_layers",
           "figure_network", "paper_name"]

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
class FigureContext:
    """What every figure's runs share."""

    size: int
    steps: int
    vgg: VGG19Features
    options: dict[str, Any]  # for every run: steps, network, seed, optimizer, progress
    init: str  # start of the transfers in Fig. 2, 3 and the layer figure
    tick: Callable[[int], None]  # advance the outer progress bar by n runs

    def image(self, name: str) -> Tensor:
        from .images import load_image

        return load_image(name, self.size)

    def settings(self, transfer: bool = True) -> str:
        o = self.options
        smooth = ("; the transfers add a small total-variation term (not in the paper) against pixel grain"
                  if transfer else "")
        return (f"{self.size} px (long edge), {self.steps} L-BFGS evaluations from white noise unless said, "
                f"normalised Caffe VGG-19, {self.vgg.pooling} pooling, seed {o.get('seed', 0)}{smooth}")


def _final_losses(result: Result, alpha: float, beta: float) -> dict[str, float]:
    """Unweighted L_content and L_style of the returned image (from the history, before clamping)."""
    i = max(result.best_step, 1) - 1
    h = result.history
    return {"content": h["content"][i] / alpha if alpha else 0.0,
            "style": h["style"][i] / beta if beta else 0.0}


def figure1(ctx: FigureContext) -> FigureOutput:
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


def figure2(ctx: FigureContext) -> FigureOutput:
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
        result = transfer(photo, painting, alpha=ours, beta=1.0, init=ctx.init, recipe="paper", **ctx.options)
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


@dataclass(frozen=True)
class PaintingColors(Extra):
    """Fig. 3's content target: P^l (eq. 1) of the photo after its colours are mapped to the painting's mean and
    covariance (``color.match_colors``, the 2017 colour transfer the other way round), so that the style term
    no longer fights the content term over the colour of flat regions."""

    name = "painting_colors"

    def prepare(self, photo: Tensor, style: Style) -> tuple[Tensor, Style]:
        return match_colors(photo, style.paintings[0]).clamp(0, 1), style

    def settings(self, content_scale: float) -> dict[str, Any]:
        return {"content_colors": "painting"}


@dataclass(frozen=True)
class FlatSmoothing(Smoothing):
    """Fig. 3's smoothing: ``Smoothing`` counting ``1 + flat`` times where the photo is flat
    (``losses.flat_regions``: the sky), against the lattice of specks content-heavy transfers leave there."""

    flat: float = 30.0

    def term(self, photo: Tensor, alpha: float, content_scale: float) -> Term | None:
        weight, where = self.weight_for(content_scale), 1 + self.flat * flat_regions(photo)
        return lambda image: alpha * weight * total_variation(image, "sum", where)

    def settings(self, content_scale: float) -> dict[str, Any]:
        return {**super().settings(content_scale), "flat_smoothing": self.flat}


#: Fig. 3's two departures from eq. 7, in place of ``transfer``'s default extras; ``(Smoothing(),)`` is the default.
FIG3_EXTRAS = (PaintingColors(), FlatSmoothing())


def figure3(ctx: FigureContext) -> FigureOutput:
    """Fig. 3: Composition VII; rows = style subsets up to conv1_1 .. conv5_1, columns = alpha/beta."""
    import matplotlib.pyplot as plt

    photo, painting = ctx.image("tubingen"), ctx.image("composition_vii")
    ours = {r: paper_ratio(r, ctx.size) for r in FIG3_RATIOS}
    grid: dict[tuple[int, float], Result] = {}
    for depth in range(1, 6):  # row by row, so that the progress bar moves
        grid.update(ratio_grid(photo, painting, ratios=list(ours.values()), depths=[depth],
                               init=ctx.init, recipe="paper", extras=FIG3_EXTRAS, **ctx.options))
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
             "extras": {"content_colors": "painting", "flat_smoothing": FIG3_EXTRAS[1].flat}, "checks": checks}

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
        "(figures.PaintingColors), and the smoothing term counts "
        f"{1 + FIG3_EXTRAS[1].flat:.0f}x where the photo is flat (figures.FlatSmoothing). With the paper's loss "
        "those columns keep a lattice of small coloured specks in the sky: the style term repaints the sky in the "
        "painting's colours, and the specks give relu4_2 back the photo's sky there (benchmarks/PAPER_RATIO.md, "
        "third to sixth parts; notebook 04). "
        + ctx.settings() + "."
    )
    return FigureOutput(fig, caption, stats)


def figure_layers(ctx: FigureContext) -> FigureOutput:
    """2016 paper (Sec. 3.2): content matched at conv2_2 against conv4_2."""
    import matplotlib.pyplot as plt

    photo, painting = ctx.image("tubingen"), ctx.image("starry_night")
    ratio = 1e-3
    ours = paper_ratio(ratio, ctx.size)
    layers = ("relu2_2", "relu4_2")
    results = {layer: transfer(photo, painting, alpha=ours, beta=1.0, content_layer=layer, init=ctx.init, recipe="paper",
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


def figure_init(ctx: FigureContext) -> FigureOutput:
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
        results[label] = transfer(photo, painting, alpha=ours, beta=1.0, recipe="paper", **options)
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


#: The figures, in order: what makes each, and how many runs it takes (for the progress bar).
MAKERS: dict[str, tuple[Callable[[FigureContext], FigureOutput], int]] = {
    "fig1": (figure1, 10), "fig2": (figure2, len(_FIG2)), "fig3": (figure3, 5 * len(FIG3_RATIOS)),
    "layers": (figure_layers, 2), "init": (figure_init, 4),
}
#: The figures ``figure_files.make_figures`` can make, in order.
FIGURES: tuple[str, ...] = tuple(MAKERS)
