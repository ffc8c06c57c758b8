r"""Spatial and scale control (Gatys, Ecker, Bethge, Hertzmann & Shechtman, CVPR 2017, sections 4 and 6).

**Spatial control: guided Gram matrices.** A mask T_r (H, W) in [0, 1] over the
result says where painting r applies. At each style layer the mask is brought to
the layer's grid (area averaging, as the poolings do: ``layer_masks``), the
responses are weighted by it, ``F_r = F * T_r``, and the region's Gram per
position, ``F_r F_r^T / M_r`` with ``M_r = sum_k T_r[k]^2`` (the region's
effective number of positions), is compared with painting r's Gram per position:

    E_l^r = ||F_r F_r^T / M_r - A_r / M'||_F^2 / (4 N_l^2)

A mask of ones gives ``M_r = M`` and ``F_r = F``: eq. 4 exactly
(``guided_gram_loss``). The regions' losses are weighted by the paintings'
``style_weights`` (normalised to sum 1), so one painting under a mask of ones is
the ordinary transfer.

**Scale control.** The low layers carry a painting's fine scale (colour, brush
grain), the high ones its coarse scale (larger strokes and forms; notebook 03).
``scale_targets`` takes the Gram targets of the style layers up to and including
``split`` from one painting and the deeper ones from another: the fine scale of
the first with the coarse scale of the second, in one run.

Note: the authors' code (leongatys/NeuralImageSynthesis, ``ScaleControl``) does
it in two runs instead: the coarse painting, re-synthesised with the fine
painting's Gram matrices at the low layers, becomes a new style image used at
every layer. The split is one optimisation instead of two; its targets come from
two pictures that no single image need match exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as nnf
from torch import Tensor

from .features import LAYER_NAMES, check_layers, layer_shapes
from .style_statistics import gram_per_position

__all__ = ["check_masks", "guided_gram_loss", "layer_masks", "painting_targets", "scale_layers"]

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


def painting_targets(features: dict[str, Tensor]) -> dict[str, Tensor]:
    """Each layer's Gram per position of a painting's responses: the guided loss's targets."""
    return {layer: gram_per_position(f) for layer, f in features.items()}
