r"""Keeping the photo's colours (Gatys, Ecker, Bethge, Hertzmann & Shechtman, CVPR 2017, section 5).

The Gram matrices carry the painting's colours (notebook 06: they keep the mean
responses, and at conv1_1 those are largely colour), so a transfer repaints the
photo in the painting's palette. The 2017 paper gives two ways to keep the
photo's own colours, both used through ``transfer(..., extras=[KeepColors(mode)])``:

* ``"luminance"``: transfer on the luminance only. Both images go to YIQ (the
  NTSC colour space the paper uses); the painting's luminance is first given the
  photo's mean and standard deviation (``match_luminance``); the transfer runs on
  grey images; the result's luminance Y is combined with the photo's chroma I, Q
  (``with_chroma_of``), whose luminance is limited per pixel so that R, G and B
  stay in [0, 1]: the returned chroma is exactly the photo's.
* ``"histogram"``: the painting's colours are mapped to the photo's colour
  distribution before the transfer (``match_colors``): the affine map
  ``x -> A (x - mu_s) + mu_c`` with ``A = Sigma_c^{1/2} Sigma_s^{-1/2}``, which
  gives the painting's pixels the photo's mean and covariance. The square roots are
  the *symmetric* ones (by eigendecomposition): the unique positive semi-definite
  roots, so the map is the same whatever order the channels are in, and it is
  the one that moves the colours least among those that match mean and
  covariance when the two covariances commute. (A Cholesky factor would also
  match them, but mixes the channels in an order-dependent way.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .objective import Extra, Style
from .style_statistics import sqrtm_psd

__all__ = ["MODES", "RGB_TO_YIQ", "KeepColors", "check_mode", "luminance", "match_colors", "match_luminance", "rgb_to_yiq",
           "with_chroma_of", "yiq_to_rgb"]

#: The ways ``KeepColors`` keeps the photo's colours.
MODES = ("luminance", "histogram")
#: NTSC RGB -> YIQ: rows give Y (luminance), I and Q (chroma).
RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                           [0.595716, -0.274453, -0.321263],
                           [0.211456, -0.522591, 0.311135]], dtype=torch.float64)
#: Floor on a spread or an eigenvalue before dividing by it (a flat image has none).
EPS = 1e-8


def check_mode(mode: str | None) -> str | None:
    """``mode`` if it is None or one of ``MODES``, else a clear error."""
    if mode is not None and mode not in MODES:
        raise ValueError(f"keeping the photo's colours takes 'luminance' or 'histogram', got {mode!r}")
    return mode


def _apply(matrix: Tensor, image: Tensor) -> Tensor:
    """Multiply the 3 channels of (B, 3, H, W) by a 3x3 matrix."""
    return torch.einsum("ij,bjhw->bihw", matrix.to(image.dtype).to(image.device), image)


def rgb_to_yiq(image: Tensor) -> Tensor:
    """(B, 3, H, W) RGB -> YIQ, channel 0 the luminance."""
    return _apply(RGB_TO_YIQ, image)


def yiq_to_rgb(image: Tensor) -> Tensor:
    """(B, 3, H, W) YIQ -> RGB, the exact inverse of ``rgb_to_yiq`` (not clamped)."""
    return _apply(torch.linalg.inv(RGB_TO_YIQ), image)


def luminance(image: Tensor) -> Tensor:
    """Y of (B, 3, H, W) RGB, repeated on 3 channels: a grey image the network can take."""
    return rgb_to_yiq(image)[:, :1].expand(-1, 3, -1, -1).contiguous()


def match_luminance(style: Tensor, content: Tensor) -> Tensor:
    """The style image's luminance (3 grey channels) with the content's mean and standard deviation.

    The 2017 paper's step before a luminance-only transfer: otherwise a dark painting
    would darken the photo, which is colour, not style.
    """
    y_s, y_c = luminance(style)[:, :1], luminance(content)[:, :1]
    mean_s, std_s = y_s.mean(dim=(2, 3), keepdim=True), y_s.std(dim=(2, 3), keepdim=True, unbiased=False)
    mean_c, std_c = y_c.mean(dim=(2, 3), keepdim=True), y_c.std(dim=(2, 3), keepdim=True, unbiased=False)
    return ((y_s - mean_s) * std_c / std_s.clamp_min(EPS) + mean_c).expand(-1, 3, -1, -1).contiguous()


def with_chroma_of(result: Tensor, content: Tensor) -> Tensor:
    """The result's luminance with the content's chroma (I, Q), back in RGB, inside [0, 1].

    In YIQ -> RGB the luminance adds equally to R, G and B: ``rgb = Y + c(I, Q)``. So the
    chroma is kept *exactly* by limiting Y, per pixel, to ``[-min(c), 1 - max(c)]`` instead
    of clamping R, G and B (which would change the chroma where a channel overflows). The
    interval is never empty: the content's own luminance lies in it.
    """
    chroma = rgb_to_yiq(content.to(result))[:, 1:]
    offset = yiq_to_rgb(torch.cat([torch.zeros_like(chroma[:, :1]), chroma], dim=1))  # c(I, Q), (B, 3, H, W)
    low, high = -offset.amin(dim=1, keepdim=True), 1 - offset.amax(dim=1, keepdim=True)
    y = torch.minimum(torch.maximum(rgb_to_yiq(result)[:, :1], low), high)
    return (y + offset).clamp(0, 1)  # the clamp only absorbs rounding


def match_colors(style: Tensor, content: Tensor) -> Tensor:
    """The style image's pixels mapped affinely to the content's colour mean and covariance (not clamped).

    ``A (x - mu_s) + mu_c`` with ``A = Sigma_c^{1/2} Sigma_s^{-1/2}``, symmetric roots
    (module docstring). Shapes (1, 3, H, W) and (1, 3, H', W'); returns the style's shape.
    """
    s = style.double().reshape(3, -1)
    c = content.double().reshape(3, -1)
    mu_s, mu_c = s.mean(dim=1, keepdim=True), c.mean(dim=1, keepdim=True)
    cov_s = (s - mu_s) @ (s - mu_s).T / s.shape[1]
    cov_c = (c - mu_c) @ (c - mu_c).T / c.shape[1]
    values, vectors = torch.linalg.eigh(cov_s)
    inv_root_s = (vectors / values.clamp_min(EPS).sqrt()) @ vectors.T
    matrix = sqrtm_psd(cov_c) @ inv_root_s
    return (matrix @ (s - mu_s) + mu_c).reshape(style.shape).to(style.dtype)


@dataclass(frozen=True)
class KeepColors(Extra):
    """Keep the photo's colours in a transfer (``transfer(..., extras=[KeepColors("luminance")])``).

    ``"luminance"``: the run is on grey images (the photo's luminance, each painting's luminance
    matched to it, a grey start) and the result gets the photo's chroma back. ``"histogram"``: each
    painting's colours are first mapped to the photo's mean and covariance. See the module docstring.
    """

    mode: str = "luminance"
    name = "colors"

    def __post_init__(self) -> None:
        if check_mode(self.mode) is None:
            raise ValueError("KeepColors takes 'luminance' or 'histogram'; leave it out to keep the painting's colours")

    def prepare(self, photo: Tensor, style: Style) -> tuple[Tensor, Style]:
        if self.mode == "histogram":
            return photo, style.with_paintings([match_colors(p, photo).clamp(0, 1) for p in style.paintings])
        return luminance(photo), style.with_paintings([match_luminance(p, photo) for p in style.paintings])

    def start(self, image: Tensor) -> Tensor:
        return luminance(image) if self.mode == "luminance" else image

    def finish(self, image: Tensor, photo: Tensor) -> Tensor:
        return with_chroma_of(image, photo) if self.mode == "luminance" else image

    def settings(self, content_scale: float) -> dict[str, Any]:
        return {"preserve_color": self.mode}
