"""Runs that figures, notebooks and benchmarks share, built on the engine's ``transfer`` and friends.

* ``content_reconstructions``: Fig. 1, content row (one reconstruction per layer).
* ``style_reconstructions``: Fig. 1, style row (textures from growing layer subsets).
* ``transfers``: Fig. 2 (one photo, several paintings).
* ``ratio_grid``: Fig. 3 (style-layer subsets by alpha/beta ratios).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from .features import STYLE_LAYERS
from .optimize import Result
from .tasks import reconstruct_content, synthesize_texture, transfer

__all__ = ["content_reconstructions", "ratio_grid", "style_reconstructions", "transfers"]


def content_reconstructions(image: Tensor, layers: Sequence[str] = STYLE_LAYERS, **options: Any) -> dict[str, Result]:
    """Fig. 1, content row: reconstruct ``image`` from each layer in turn, from white noise."""
    return {layer: reconstruct_content(image, layer, **options) for layer in layers}


def style_reconstructions(
    style_image: Tensor, layers: Sequence[str] = STYLE_LAYERS, size: tuple[int, int] | None = None, **options: Any
) -> dict[str, Result]:
    """Fig. 1, style row: textures from the growing subsets ``layers[:1]``, ``layers[:2]``, ...

    Keys are the deepest layer of each subset.
    """
    return {layers[k - 1]: synthesize_texture(style_image, layers[:k], size=size, **options)
            for k in range(1, len(layers) + 1)}


def transfers(content_image: Tensor, styles: Mapping[str, Tensor], **kwargs: Any) -> dict[str, Result]:
    """Fig. 2: the same photo in several styles; ``kwargs`` go to ``transfer``."""
    return {name: transfer(content_image, style, **kwargs) for name, style in styles.items()}


def ratio_grid(
    content_image: Tensor,
    style_image: Tensor,
    ratios: Sequence[float] = (1e-5, 1e-4, 1e-3, 1e-2),
    depths: Sequence[int] = (1, 2, 3, 4, 5),
    style_layers: Sequence[str] = STYLE_LAYERS,
    **kwargs: Any,
) -> dict[tuple[int, float], Result]:
    """Fig. 3: rows are style-layer subsets ``style_layers[:depth]``, columns are alpha/beta ratios.

    ``ratios`` are in our units (alpha = ratio, beta = 1); convert the paper's
    with ``balance.paper_ratio``.
    """
    return {
        (depth, ratio): transfer(content_image, style_image, alpha=ratio, beta=1.0,
                                 style_layers=style_layers[:depth], **kwargs)
        for depth in depths for ratio in ratios
    }
