"""The paper's figures: the runs behind them and the statistics that check them.

The run functions here are what the notebooks call; ``make figures`` lays
their results out as the paper does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .features import STYLE_LAYERS
from .optimize import Result, reconstruct_content, synthesize_texture, transfer

__all__ = [
    "content_reconstructions",
    "style_reconstructions",
    "transfers",
    "ratio_grid",
    "psnr",
    "autocorrelation_length",
]


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
    """Fig. 3: rows are style-layer subsets ``style_layers[:depth]``, columns are alpha/beta ratios."""
    return {
        (depth, ratio): transfer(content_image, style_image, alpha=ratio, beta=1.0,
                                 style_layers=style_layers[:depth], **kwargs)
        for depth in depths for ratio in ratios
    }


def psnr(image: Tensor, reference: Tensor) -> float:
    """Peak signal-to-noise ratio in dB of ``image`` against ``reference`` (both in [0, 1])."""
    mse = (image.float().clamp(0, 1) - reference.float().clamp(0, 1)).pow(2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def autocorrelation_length(image: Tensor, level: float = 0.5) -> float:
    """Distance (px) at which the image's spatial autocorrelation first falls below ``level``.

    The luminance, mean removed, is autocorrelated through the FFT (circularly),
    averaged over directions, normalised to 1 at distance 0. Textures matched
    on deeper layers have structure on larger scales, hence longer lengths.
    """
    gray = image.float().mean(dim=(0, 1))  # (H, W)
    gray = gray - gray.mean()
    spectrum = torch.fft.rfft2(gray)
    corr = torch.fft.irfft2(spectrum * spectrum.conj(), s=gray.shape)
    corr = torch.fft.fftshift(corr / corr[0, 0].clamp_min(1e-12))
    h, w = corr.shape
    yy, xx = torch.meshgrid(torch.arange(h) - h // 2, torch.arange(w) - w // 2, indexing="ij")
    radius = (yy.float() ** 2 + xx.float() ** 2).sqrt().round().long()
    max_r = min(h, w) // 2
    sums = torch.zeros(radius.max() + 1).index_add_(0, radius.flatten(), corr.flatten())
    counts = torch.zeros(radius.max() + 1).index_add_(0, radius.flatten(), torch.ones(h * w))
    profile = (sums / counts.clamp_min(1))[: max_r + 1]
    below = (profile < level).nonzero()
    if len(below) == 0:
        return float(max_r)
    r = int(below[0])
    # linear interpolation between r-1 and r
    p0, p1 = float(profile[r - 1]), float(profile[r])
    return (r - 1) + (p0 - level) / max(p0 - p1, 1e-12)
