"""The smoothing term, ``Smoothing``: total variation added to eq. 7 (not in the paper).

The paper's loss sees the image only through VGG responses, and a pixel checker at the
sampling limit barely changes them, so a run from white noise keeps some pixel grain
(notebook 04). ``losses.total_variation`` is the term that sees it. ``transfer`` adds it by
default, with the weight ``balance.default_tv_weight`` for the network; ``extras=()`` is the
paper's eq. 7 exactly.

The weight is per unit of alpha: the loss is ``alpha (L_content + weight L_tv) + beta L_style``,
so, as in eq. 7, scaling alpha and beta together changes nothing, and one weight holds at every
size (L_tv sums over pixels as L_content sums over positions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from .balance import default_tv_weight
from .losses import check_weights, total_variation
from .objective import Extra, Term

__all__ = ["Smoothing"]


@dataclass(frozen=True)
class Smoothing(Extra):
    """``alpha weight L_tv`` added to eq. 7, recorded as ``history["tv"]``.

    Args:
        weight: per unit of alpha; ``None``: ``balance.default_tv_weight`` for the run's network
            (measured against the raw Caffe VGG-19's content term, ``objective.term_scales``).
    """

    weight: float | None = None
    name = "tv"

    def __post_init__(self) -> None:
        if self.weight is not None:
            check_weights([self.weight], "the smoothing weight")

    def weight_for(self, content_scale: float) -> float:
        """The weight used with a network whose content term is ``content_scale`` times the raw network's."""
        return default_tv_weight(content_scale) if self.weight is None else float(self.weight)

    def term(self, photo: Tensor, alpha: float, content_scale: float) -> Term | None:
        weight = self.weight_for(content_scale)
        return lambda image: alpha * weight * total_variation(image)

    def settings(self, content_scale: float) -> dict[str, Any]:
        return {"tv_weight": self.weight_for(content_scale)}
