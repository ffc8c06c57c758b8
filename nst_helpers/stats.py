r"""Statistics that check pictures against the paper's claims.

* ``psnr``: how close a reconstruction is to the photo (notebook 01).
* ``autocorrelation_length``: the scale of a texture's structure (notebook 03).
* ``gram_losses``: E_l (eq. 4) per layer of an image against a painting (notebook 03, Fig. 1).
* ``grain``: pixel-level energy that neither input has (notebook 04), below.

How grainy a picture is. A style transfer can leave a checker of coloured dots at the sampling limit
that the paper's loss hardly sees (notebook 04). This module measures it.

* top-band power of an image x (B, 3, H, W), each channel's mean removed:
  ``P(x) = 1/(H W)^2 sum_c sum_{f in band} |FFT2(x_c)(f)|^2``, the band being
  ``max(|f_x|, |f_y|) > 0.35`` cycles per pixel (the Nyquist limit is 0.5);
  by Parseval, ``P`` is the per-pixel variance that lives in that band,
  summed over R, G, B (a checker of +-a at the Nyquist limit has ``P = 3 a^2``).
* grain figure: ``P(result) / max(P(photo), P(painting))``, the photo and the
  painting resized to the result's long edge first. 1 means "as much
  pixel-level detail as the more detailed input"; the issue that introduced
  it measured 1.9-2.2 for grainy transfers and 0.6 for a clean one. A value
  far under both inputs (< 0.2) means a blurred result.

Note: ``../shared/tools/grain.py``, where the figure was first measured,
divides by H W once (total rather than per-pixel power); the two agree when
the photo, the painting and the result have the same aspect ratio, and differ
by the ratio of the areas otherwise (7 % for Tübingen and The Scream).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from .features import STYLE_LAYERS, VGG19Features
from .images import resize
from .losses import style_layer_loss
from .objective import style_targets
from .speed import cached_network, device_of

__all__ = ["TOP_BAND", "autocorrelation_length", "grain", "gram_losses", "psnr", "top_band_power"]

#: Frequencies above this (cycles per pixel, max over the two axes) count as pixel-level grain.
TOP_BAND = 0.35


def top_band_power(image: Tensor, cutoff: float = TOP_BAND) -> Tensor:
    """Per-pixel power of ``image`` at frequencies ``max(|f_x|, |f_y|) > cutoff``, summed over channels.

    Args:
        image: (B, C, H, W) or (C, H, W) pixels, in [0, 1] for figures comparable across images.
        cutoff: in cycles per pixel, between 0 and 0.5.

    Returns:
        (B,) float64: ``sum_c sum_band |FFT2(x_c - mean)|^2 / (H W)^2``, a per-pixel variance.
    """
    if not 0 <= cutoff < 0.5:
        raise ValueError(f"cutoff must be in [0, 0.5) cycles per pixel, got {cutoff}")
    x = image.unsqueeze(0) if image.dim() == 3 else image
    x = x.detach().to(torch.float64).cpu()
    x = x - x.mean(dim=(-2, -1), keepdim=True)  # (B, C, H, W), each channel's mean removed
    h, w = x.shape[-2:]
    fy = torch.fft.fftfreq(h, dtype=torch.float64).abs().view(h, 1)
    fx = torch.fft.fftfreq(w, dtype=torch.float64).abs().view(1, w)
    band = torch.maximum(fy, fx) > cutoff  # (H, W)
    power = torch.fft.fft2(x).abs().pow(2)  # (B, C, H, W)
    return (power * band).sum(dim=(1, 2, 3)) / (h * w) ** 2


def _at_long_edge(image: Tensor, edge: int) -> Tensor:
    x = image.unsqueeze(0) if image.dim() == 3 else image
    h, w = x.shape[-2:]
    if max(h, w) == edge:
        return x
    scale = edge / max(h, w)
    return resize(x.float(), (max(1, round(h * scale)), max(1, round(w * scale))))


def grain(result: Tensor, photo: Tensor, painting: Tensor, cutoff: float = TOP_BAND) -> float:
    """The grain figure: top-band power of ``result`` over the larger of the photo's and the painting's.

    Each input is first resized (antialiased) so that its long edge equals the
    result's; load them at that size (``load_image(name, size=...)``) to get
    the figure of ``benchmarks/grain.py``.

    Args:
        result: (1, 3, H, W) in [0, 1], the transfer.
        photo, painting: (1, 3, H', W') in [0, 1], its inputs.

    Returns:
        A ratio: about 1 for as much pixel-level detail as the more detailed
        input, 2 for twice as much (grain), well under 1 for a smoother picture.
    """
    edge = max(result.shape[-2:])
    reference = torch.maximum(top_band_power(_at_long_edge(photo, edge), cutoff),
                              top_band_power(_at_long_edge(painting, edge), cutoff))
    if float(reference.max()) <= 0:
        raise ValueError("the photo and the painting have no energy in the top band (flat images?): "
                         "the grain figure needs at least one detailed input")
    return float((top_band_power(result, cutoff) / reference).max())


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


@torch.no_grad()
def gram_losses(
    image: Tensor, style_image: Tensor, layers: Sequence[str] = STYLE_LAYERS,
    extractor: VGG19Features | None = None,
) -> dict[str, float]:
    """``E_l`` (eq. 4) of ``image`` against ``style_image`` at each layer, unweighted.

    The style image's Gram is rescaled to the image's number of positions
    (``losses.rescale_gram``), as in the optimisation. ``extractor`` defaults
    to the paper's network on the CPU (normalised Caffe VGG-19, average pooling,
    as ``figures.figure_network``).
    """
    vgg = extractor or cached_network("caffe", "avg", "cpu", True)
    ours = vgg(image.float().to(device_of(vgg)), layers)
    targets = style_targets(vgg, style_image.float(), layers, tuple(image.shape[-2:]), "fp32")
    return {layer: float(style_layer_loss(ours[layer], targets[layer])) for layer in layers}
