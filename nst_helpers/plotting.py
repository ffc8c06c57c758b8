"""Showing images and loss curves: notebooks' grids and curves, the figures' panels, the lab's live plot.

``show_images``, ``plot_losses``: matplotlib, for the notebooks. ``panel_width``,
``show_panel``, ``row_label``, ``inset_painting``, ``message_panel``: the layout of
the paper's figures (``figures``). ``loss_svg``: the lab's loss curves, as inline SVG.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

import numpy
import torch
from torch import Tensor

from .images import to_pil

__all__ = ["inset_painting", "loss_svg", "message_panel", "panel_width", "plot_losses", "row_label", "show_images",
           "show_panel", "to_numpy"]


def to_numpy(image: Tensor):
    """(1, 3, H, W) or (3, H, W) tensor in [0, 1] -> (H, W, 3) uint8 array for ``imshow``.

    The picture ``images.to_pil`` makes (and ``save_image`` writes), so a plot shows
    exactly the saved pixels; of a batch, the first image.
    """
    return numpy.asarray(to_pil(image[:1] if image.dim() == 4 else image))


def show_images(
    images: Sequence[Tensor],
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    width: float = 3.2,
    suptitle: str | None = None,
):
    """Show images in a grid, one title each; returns the figure."""
    n = len(images)
    ncols = ncols or n
    nrows = (n + ncols - 1) // ncols
    first = images[0]
    aspect = first.shape[-2] / first.shape[-1]
    lines = max((str(t).count("\n") + 1 for t in titles), default=0) if titles is not None else 0
    title_height = 0.2 * lines + 0.2  # inches per row for the titles, so that two-line titles clear the row above
    import matplotlib.pyplot as plt  # here, not at import: the command line and the lab need no matplotlib

    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, (width * aspect + title_height) * nrows),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(to_numpy(images[i]))
            if titles is not None:
                ax.set_title(titles[i], fontsize=10)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_losses(histories: Mapping[str, Mapping[str, Sequence[float]]], parts: Sequence[str] = ("total",),
                ax=None, xlabel: str = "evaluation (forward + backward)"):
    """Plot loss curves on a log scale: ``{label: result.history}``."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 3.5))
    for label, history in histories.items():
        for part in parts:
            values = torch.tensor(history[part])
            ax.plot(range(1, len(values) + 1), values, label=label if len(parts) == 1 else f"{label}: {part}")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


# ------------------------------------------------------------------ the paper's figures


def panel_width(size: int) -> float:
    """Inches for a panel of ``size`` px in the paper's figures."""
    return max(size / 100, 1.8)  # inches: native resolution at dpi=100, readable titles when small


def show_panel(ax, image: Tensor, title: str | None = None, fontsize: int = 9) -> None:
    """``image`` in ``ax`` without ticks or frame, as the paper's figures show their panels."""
    ax.imshow(to_numpy(image))
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=fontsize)


def row_label(ax, text: str) -> None:
    """A vertical label to the left of a row of panels."""
    ax.annotate(text, xy=(-0.06, 0.5), xycoords="axes fraction", rotation=90, ha="right", va="center",
                fontsize=9)


def inset_painting(ax, painting: Tensor, fraction: float = 0.3) -> None:
    """The painting small in the lower-left corner of ``ax``, white-framed, as in the paper's Fig. 2."""
    ax_h, ax_w = ax.images[0].get_array().shape[:2]
    p_h, p_w = painting.shape[-2:]
    w = fraction
    h = fraction * (p_h / p_w) * (ax_w / ax_h)
    if h > 1.2 * fraction:  # a portrait painting: limit its height instead
        w, h = w * 1.2 * fraction / h, 1.2 * fraction
    inset = ax.inset_axes([0.0, 0.0, w, h])
    inset.imshow(to_numpy(painting))
    inset.set_xticks([])
    inset.set_yticks([])
    for spine in inset.spines.values():
        spine.set_edgecolor("white")
        spine.set_linewidth(2)


def message_panel(ax, text: str, shape: tuple[int, int]) -> None:
    """A grey panel of ``shape`` saying ``text``, where a picture cannot be shown (a painting not available)."""
    ax.imshow(torch.full((*shape, 3), 0.92).numpy())
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=8, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


# ------------------------------------------------------------------ the lab's live plot


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = max(span, 1.0) / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def loss_svg(steps: list[int], content: list[float], style: list[float], ratio: float,
              last_step: int | None = None, width: int = 440, height: int = 250) -> str:
    """The two weighted parts of eq. 7 against the step, log scale, as an inline SVG.

    Note: hand-made SVG rather than matplotlib, because it is redrawn during
    the run: it costs microseconds instead of a tenth of a second taken from
    the optimisation, and stays sharp on a projector.
    """
    left, right, top, bottom = 62, 14, 30, 40
    pw, ph = width - left - right, height - top - bottom
    series = [(f"content: α·L_content, α = {ratio:.1e}", "#1f77b4", content), ("style: β·L_style, β = 1", "#ff7f0e", style)]
    values = [v for _, _, ys in series for v in ys if v > 0 and math.isfinite(v)]
    x_max = max([last_step or 1, *steps, 2])
    lo, hi = (math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))) if values else (0, 1)
    hi = max(hi, lo + 1)

    def x(step: float) -> float:
        return left + pw * (step - 1) / (x_max - 1)

    def y(value: float) -> float:
        return top + ph * (hi - math.log10(value)) / (hi - lo)

    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
           "font-family='sans-serif' font-size='12'>",
           f"<rect x='{left}' y='{top}' width='{pw}' height='{ph}' fill='white' stroke='#999'/>"]
    every = 1 + (hi - lo) // 7  # at most ~7 labelled decades
    for k in range(lo, hi + 1):
        yk = y(10.0**k)
        out.append(f"<line x1='{left}' x2='{left + pw}' y1='{yk:.1f}' y2='{yk:.1f}' stroke='#e5e5e5'/>")
        if (k - lo) % every == 0:
            out.append(f"<text x='{left - 6}' y='{yk + 4:.1f}' text-anchor='end'>1e{k}</text>")
    tick = max(1, int(_nice_step(x_max - 1)))
    for t in sorted({1, *range(tick, x_max + 1, tick)}):
        xt = x(t)
        out.append(f"<line x1='{xt:.1f}' x2='{xt:.1f}' y1='{top + ph}' y2='{top + ph + 4}' stroke='#999'/>")
        out.append(f"<text x='{xt:.1f}' y='{top + ph + 17}' text-anchor='middle'>{t}</text>")
    out.append(f"<text x='{left + pw / 2}' y='{height - 4}' text-anchor='middle'>step (loss + gradient evaluation)</text>")
    out.append(f"<text x='14' y='{top + ph / 2}' text-anchor='middle' transform='rotate(-90 14 {top + ph / 2})'>"
               "loss (log scale)</text>")
    for i, (label, colour, ys) in enumerate(series):
        points = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in zip(steps, ys) if v > 0 and math.isfinite(v))
        if points:
            out.append(f"<polyline points='{points}' fill='none' stroke='{colour}' stroke-width='2'/>")
        lx = left + i * 205
        out.append(f"<line x1='{lx}' x2='{lx + 18}' y1='14' y2='14' stroke='{colour}' stroke-width='3'/>")
        out.append(f"<text x='{lx + 23}' y='18'>{html.escape(label)}</text>")
    out.append("</svg>")
    return "".join(out)
