"""Two passes of any split, for the studies that chose the ``coarse_to_fine`` recipe's even one.

The package's recipe (``balance.RECIPES``) splits its steps evenly; the studies here also
ran uneven splits, so they build the two passes themselves from two one-pass transfers.
The half-size pass gets beta times its share of the positions, as the recipe's does
(``tasks.transfer``): it solves the full size's problem.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from nst_helpers import STYLE_LAYERS, Options, transfer
from nst_helpers.balance import default_beta
from nst_helpers.images import resize, scaled_shape
from nst_helpers.objective import term_scales


def two_pass(photo: Tensor, painting: Tensor, steps: tuple[int, int], beta: float | None = None,
             **kwargs: Any):
    """``steps[0]`` evaluations at half size from the recipe's start, then ``steps[1]`` at full size."""
    if beta is None:  # transfer's default for the full size, without running an evaluation
        vgg = Options(network=kwargs.get("network")).vgg()
        scales = term_scales(vgg, painting, kwargs.get("content_layer", "relu4_2"),
                             kwargs.get("style_layers", STYLE_LAYERS), kwargs.get("layer_weights"), kwargs.get("seed", 0))
        beta = default_beta(max(photo.shape[-2:]), kwargs.get("alpha", 1.0), "paper", scales)
    hw = scaled_shape(photo, 0.5)
    share = hw[0] * hw[1] / (photo.shape[-2] * photo.shape[-1])
    coarse = transfer(resize(photo, hw), resize(painting, scaled_shape(painting, 0.5)), beta=beta * share,
                      steps=steps[0], recipe="paper", **kwargs)
    kwargs = {k: v for k, v in kwargs.items() if k != "init"}
    fine = transfer(photo, painting, beta=beta, steps=steps[1], init=coarse.image, recipe="paper", **kwargs)
    fine.steps += coarse.steps
    fine.seconds += coarse.seconds
    return fine
