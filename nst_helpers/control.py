r"""Several paintings in one transfer: blends, and spatial and scale control (Gatys, Ecker, Bethge,
Hertzmann & Shechtman, CVPR 2017, sections 4 and 6). Each is a style term (``objective.Style``)
passed where the painting goes: ``transfer(photo, Blend([a, b], [0.7, 0.3]))``, ``Guided([a, b],
masks)``, ``ScaleMix(fine, coarse, "relu3_1")``.

**Blends.** ``Blend`` matches the weighted mean of the paintings' Gram matrices,
``sum_s lambda_s A_s`` with the weights normalised to sum 1. For such weights,
``sum_s lambda_s ||G - A_s||^2 = ||G - sum_s lambda_s A_s||^2 + const`` (the constant does not
depend on the image), so matching the blended Gram *is* minimising the weighted sum of the
paintings' style losses, at the cost of one target per layer. Weights (1, 0) give the first
painting alone; summing unnormalised targets, as some codes do, asks for a Gram larger than any
painting's and leaves the weights without a clear meaning.

**Spatial control: guided Gram matrices.** A mask T_r (H, W) in [0, 1] over the
result says where painting r applies. At each style layer the mask is brought to
the layer's grid (area averaging, as the poolings do: ``layer_masks``), the
responses are weighted by it, ``F_r = F * T_r``, and the region's Gram per
position, ``F_r F_r^T / M_r`` with ``M_r = sum_k T_r[k]^2`` (the region's
effective number of positions), is compared with painting r's Gram per position:

    E_l^r = ||F_r F_r^T / M_r - A_r / M'||_F^2 / (4 N_l^2)

A mask of ones gives ``M_r = M`` and ``F_r = F``: eq. 4 exactly
(``guided_gram_loss``). The regions' losses are weighted by the paintings'
``weights`` (normalised to sum 1), so one painting under a mask of ones is
the ordinary transfer.

**Scale control.** The low layers carry a painting's fine scale (colour, brush
grain), the high ones its coarse scale (larger strokes and forms; notebook 03).
``ScaleMix`` takes the Gram targets of the style layers up to and including
``split`` from one painting and the deeper ones from another: the fine scale of
the first with the coarse scale of the second, in one run.

Note: the authors' code (leongatys/NeuralImageSynthesis, ``ScaleControl``) does
it in two runs instead: the coarse painting, re-synthesised with the fine
painting's Gram matrices at the low layers, becomes a new style image used at
every layer. The split is one optimisation instead of two; its targets come from
two pictures that no single image need match exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as nnf
from torch import Tensor

from .features import LAYER_NAMES, VGG19Features, check_layers, layer_shapes
from .images import as_batch, resize, scaled_shape
from .losses import check_weights, style_loss
from .objective import Style, features_of, style_targets
from .style_statistics import gram_per_position

__all__ = ["Blend", "Guided", "ScaleMix", "check_masks", "guided_gram_loss", "layer_masks", "scale_layers", "shares"]

#: Smallest total mask weight a region may have at a layer before its Gram is taken as empty.
EPS = 1e-6


def check_masks(masks: Sequence[Tensor], count: int, hw: tuple[int, int]) -> list[Tensor]:
    """The masks as float (H, W) tensors, or a clear error: one per painting, the result's size, in [0, 1], covering it."""
    masks = list(masks)
    if len(masks) != count:
        raise ValueError(f"{len(masks)} masks for {count} paintings: give one mask (H, W) per painting")
    out = []
    for i, mask in enumerate(masks):
        mask = torch.as_tensor(mask).float()
        if mask.dim() == 4 and mask.shape[:2] == (1, 1):
            mask = mask[0, 0]
        if tuple(mask.shape) != tuple(hw):
            raise ValueError(f"mask {i} is {tuple(mask.shape)}, the result is {tuple(hw)}: give (H, W) masks the "
                             "size of the content image (resize with nst_helpers.images.resize)")
        if float(mask.min()) < 0 or float(mask.max()) > 1:
            raise ValueError(f"mask {i} has values outside [0, 1] ({float(mask.min()):.3g} .. {float(mask.max()):.3g})")
        out.append(mask)
    uncovered = float((torch.stack(out).sum(0) <= EPS).float().mean())
    if uncovered > 0:
        raise ValueError(f"the masks leave {uncovered:.1%} of the picture uncovered: every pixel needs a painting "
                         "(e.g. the second mask = 1 - the first)")
    return out


def layer_masks(mask: Tensor, layers: Sequence[str], hw: tuple[int, int]) -> dict[str, Tensor]:
    """A (H, W) mask on each layer's grid, (1, 1, H_l, W_l), by area averaging (what the poolings do)."""
    shapes = layer_shapes(list(layers), *hw)
    m = mask.float()[None, None]
    return {layer: nnf.adaptive_avg_pool2d(m, (h, w)) for layer, (_, h, w) in shapes.items()}


def guided_gram_loss(features: Tensor, mask: Tensor, target: Tensor) -> Tensor:
    """One region's layer loss: the masked responses' Gram per position against a painting's, summed over B.

    Args:
        features: (B, N, H_l, W_l) responses of the result.
        mask: (1, 1, H_l, W_l) the region on the layer's grid (``layer_masks``).
        target: (1, N, N) the painting's Gram per position (``style_statistics.gram_per_position``).
    """
    masked = features.float() * mask
    b, n = features.shape[:2]
    weight = mask.pow(2).sum().clamp_min(EPS)  # M_r, the region's effective positions
    f = masked.reshape(b, n, -1)
    gram = f @ f.transpose(1, 2) / weight
    return ((gram - target).pow(2).sum(dim=(1, 2)) / (4 * n**2)).sum()


def scale_layers(layers: Sequence[str], split: str) -> tuple[list[str], list[str]]:
    """``layers`` split at ``split``: (those up to and including it, the deeper ones)."""
    check_layers([split, *layers])
    cut = LAYER_NAMES.index(split)
    return ([k for k in layers if LAYER_NAMES.index(k) <= cut], [k for k in layers if LAYER_NAMES.index(k) > cut])


def shares(weights: Sequence[float] | None, count: int) -> list[float]:
    """The paintings' ``weights`` normalised to sum 1 (default equal), or a clear error."""
    weights = [1.0] * count if weights is None else [float(w) for w in weights]
    if len(weights) != count:
        raise ValueError(f"{count} paintings but {len(weights)} weights: give one weight per painting")
    check_weights(weights, "the paintings' weights")
    total = sum(weights)
    if not total > 0:
        raise ValueError("the paintings' weights are all zero: give at least one painting a positive weight")
    return [w / total for w in weights]


def _paintings(paintings: Sequence[Tensor], least: int) -> tuple[Tensor, ...]:
    if isinstance(paintings, Tensor) or len(paintings) < least:
        raise ValueError(f"give a list of at least {least} paintings, each (1, 3, H, W)")
    return tuple(as_batch(p, "style_image") for p in paintings)


@dataclass(frozen=True, eq=False)
class Blend(Style):
    """Several paintings' styles mixed: the ``weights``' mean of their Gram matrices (module docstring)."""

    paintings: tuple[Tensor, ...]
    weights: Sequence[float] | None = None  # shares, normalised to sum 1; default equal

    def __post_init__(self) -> None:
        object.__setattr__(self, "paintings", _paintings(self.paintings, 1))
        shares(self.weights, len(self.paintings))

    def targets(self, vgg: VGG19Features, layers: Sequence[str], start: Tensor, precision: str) -> dict[str, Any]:
        each = [style_targets(vgg, p, layers, tuple(start.shape[-2:]), precision) for p in self.paintings]
        return {k: sum(w * t[k] for w, t in zip(shares(self.weights, len(each)), each)) for k in layers}

    def loss(self, features: Mapping[str, Tensor], targets: Mapping[str, Any],
             layer_weights: Mapping[str, float] | None) -> Tensor:
        return style_loss(features, targets, layer_weights)

    def with_paintings(self, paintings: Sequence[Tensor]) -> Blend:
        return Blend(tuple(paintings), self.weights)

    def settings(self, targets: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {"paintings": len(self.paintings), "style_weights": shares(self.weights, len(self.paintings))}


@dataclass(frozen=True, eq=False)
class Guided(Style):
    """Spatial control: painting r where its mask (H, W) in [0, 1] over the result is (guided Grams)."""

    paintings: tuple[Tensor, ...]
    masks: Sequence[Tensor]
    weights: Sequence[float] | None = None  # the regions' shares of the style term; default equal

    def __post_init__(self) -> None:
        object.__setattr__(self, "paintings", _paintings(self.paintings, 1))
        shares(self.weights, len(self.paintings))
        if len(self.masks) != len(self.paintings):
            raise ValueError(f"{len(self.masks)} masks for {len(self.paintings)} paintings: give one mask (H, W) "
                             "per painting")

    def targets(self, vgg: VGG19Features, layers: Sequence[str], start: Tensor, precision: str) -> dict[str, Any]:
        hw = tuple(start.shape[-2:])
        masks = check_masks(self.masks, len(self.paintings), hw)
        out: dict[str, list[tuple[Tensor, Tensor, float]]] = {layer: [] for layer in layers}
        for painting, mask, share in zip(self.paintings, masks, shares(self.weights, len(self.paintings))):
            grams = {k: gram_per_position(f) for k, f in features_of(vgg, painting, layers, precision).items()}
            for layer, m in layer_masks(mask.to(start.device), layers, hw).items():
                out[layer].append((m, grams[layer], share))
        return out

    def loss(self, features: Mapping[str, Tensor], targets: Mapping[str, Any],
             layer_weights: Mapping[str, float] | None) -> Tensor:
        weights = layer_weights or {k: 1.0 / len(targets) for k in targets}
        return sum(weights[k] * sum(share * guided_gram_loss(features[k], mask, target)
                                    for mask, target, share in regions)
                   for k, regions in targets.items())

    def with_paintings(self, paintings: Sequence[Tensor]) -> Guided:
        return Guided(tuple(paintings), self.masks, self.weights)

    def scaled(self, fraction: float) -> Guided:
        if fraction == 1:
            return self
        masks = [torch.as_tensor(m).float() for m in self.masks]
        masks = [m.reshape(1, 1, *m.shape[-2:]) for m in masks]
        masks = [resize(m, scaled_shape(m, fraction))[0, 0].clamp(0, 1) for m in masks]  # the masks with the result
        return Guided(super().scaled(fraction).paintings, masks, self.weights)

    def settings(self, targets: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {"paintings": len(self.paintings), "masks": True, "style_weights": shares(self.weights, len(self.paintings))}


@dataclass(frozen=True, eq=False)
class ScaleMix(Style):
    """Scale control: the style layers up to ``split`` take ``fine``'s Grams, the deeper ones ``coarse``'s."""

    fine: Tensor
    coarse: Tensor
    split: str = "relu3_1"

    def __post_init__(self) -> None:
        object.__setattr__(self, "fine", as_batch(self.fine, "fine"))
        object.__setattr__(self, "coarse", as_batch(self.coarse, "coarse"))
        check_layers([self.split])

    @property
    def paintings(self) -> tuple[Tensor, ...]:  # type: ignore[override]
        return (self.fine, self.coarse)

    def targets(self, vgg: VGG19Features, layers: Sequence[str], start: Tensor, precision: str) -> dict[str, Any]:
        low, high = scale_layers(layers, self.split)
        if not low or not high:
            raise ValueError(f"split={self.split!r} leaves no style layer on one side of {list(layers)}: "
                             "split between them")
        hw = tuple(start.shape[-2:])
        return {**style_targets(vgg, self.fine, low, hw, precision), **style_targets(vgg, self.coarse, high, hw, precision)}

    def loss(self, features: Mapping[str, Tensor], targets: Mapping[str, Any],
             layer_weights: Mapping[str, float] | None) -> Tensor:
        return style_loss(features, targets, layer_weights)

    def with_paintings(self, paintings: Sequence[Tensor]) -> ScaleMix:
        return ScaleMix(paintings[0], paintings[1], self.split)

    def settings(self, targets: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {"paintings": 2, "scale_split": self.split}
