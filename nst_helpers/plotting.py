"""Showing images and loss curves in notebooks (matplotlib)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from torch import Tensor

__all__ = ["show_images", "plot_losses", "to_numpy"]


def to_numpy(image: Tensor):
    """(1, 3, H, W) or (3, H, W) tensor in [0, 1] -> (H, W, 3) array for ``imshow``."""
    if image.dim() == 4:
        image = image[0]
    return image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


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
