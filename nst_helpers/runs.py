"""Runs that figures, notebooks and benchmarks share, built on the engine's ``transfer`` and friends.

* ``content_reconstructions``: Fig. 1, content row (one reconstruction per layer).
* ``style_reconstructions``: Fig. 1, style row (textures from growing layer subsets).
* ``transfers``: Fig. 2 (one photo, several paintings).
* ``ratio_grid``: Fig. 3 (style-layer subsets by alpha/beta ratios).
* ``coarse_to_fine``: a transfer in passes of growing size, each from the last.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from .balance import default_beta, recipe
from .features import STYLE_LAYERS
from .images import as_batch, resize
from .memory import check_fits
from .objective import term_scales
from .optimize import Options, Result
from .speed import device_of
from .tasks import reconstruct_content, synthesize_texture, transfer

__all__ = ["coarse_to_fine", "content_reconstructions", "ratio_grid", "style_reconstructions", "transfers"]


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


def _scale_shape(image: Tensor, factor: float) -> tuple[int, int]:
    return max(1, round(image.shape[-2] * factor)), max(1, round(image.shape[-1] * factor))


def coarse_to_fine(
    content_image: Tensor,
    style_image: Tensor,
    scales: Sequence[int],
    scale_steps: Sequence[int] | None = None,
    alpha: float = 1.0,
    beta: float | None = None,
    **kwargs: Any,
) -> Result:
    """A transfer in passes at the long edges ``scales`` (e.g. ``(256, 512)``), each from the last result.

    Content and style are resized by the same factor, so brush strokes keep their
    size relative to the picture. Each pass gets beta times its share of the final
    image's positions (1/4 at half size): the content loss (eq. 1) sums over
    positions and the style loss (eq. 4) does not, so at the same beta a half-size
    pass would weigh style four times more; this way every pass solves the final
    size's problem.

    Args:
        content_image, style_image: as for ``transfer``.
        scales: increasing long edges in px; the result has the last one's size.
        scale_steps: evaluations per pass; default ``steps`` split evenly (the
            remainder to the last pass). A pass at half the size costs about a
            quarter, so (256, 512) with the default split takes ~5/8 of the
            time of ``steps`` evaluations at 512 px.
        alpha, beta: as for ``transfer``, for the final size (``beta=None``: balanced there).
        **kwargs: everything else ``transfer`` takes (layers, ``extras``, ``recipe``, ``Options``).

    Returns:
        One ``Result``: the last pass's image, the passes' histories joined (losses
        of different sizes are not comparable: the terms sum over positions), and
        settings that run it again: the first pass's start, the total steps,
        ``scales`` and ``scale_steps``.
    """
    scales = [int(size) for size in scales]
    if not scales or any(size < 1 for size in scales) or sorted(scales) != scales:
        raise ValueError(f"scales must be increasing long edges in px, e.g. (256, 512); got {scales}")
    steps = int(kwargs.pop("steps", Options.steps))
    if scale_steps is None:
        share = steps // len(scales)
        scale_steps = [share] * (len(scales) - 1) + [steps - share * (len(scales) - 1)]
    scale_steps = [int(n) for n in scale_steps]
    if len(scale_steps) != len(scales) or min(scale_steps) < 1:
        raise ValueError(f"scale_steps needs one positive count per scale {scales}; got {scale_steps}")
    content_image = as_batch(content_image, "content_image")
    style_image = as_batch(style_image, "style_image")
    first_init = kwargs.pop("init", recipe(kwargs.get("recipe", "paper")).init)
    start = time.perf_counter()
    long_edge = max(content_image.shape[-2:])
    final_hw = _scale_shape(content_image, scales[-1] / long_edge)
    vgg = Options(network=kwargs.get("network")).vgg()
    # The last pass must fit: know it before any work, the measurement of beta's scales included.
    check_fits(*final_hw, device=device_of(vgg), optimizer=kwargs.get("optimizer", "lbfgs"),
               content_layer=kwargs.get("content_layer", "relu4_2"), style_layers=kwargs.get("style_layers", STYLE_LAYERS))
    if beta is None:  # as transfer's, for the final size and this network
        beta = default_beta(scales[-1], alpha, kwargs.get("recipe", "paper"),
                            term_scales(vgg, style_image, kwargs.get("content_layer", "relu4_2"),
                                        kwargs.get("style_layers", STYLE_LAYERS), kwargs.get("layer_weights")))
    history: dict[str, list[float]] = {}
    done: list[int] = []
    result: Result | None = None
    offset = 0
    for size, n in zip(scales, scale_steps):
        factor = size / long_edge
        hw = _scale_shape(content_image, factor)
        positions = hw[0] * hw[1] / (final_hw[0] * final_hw[1])
        init = first_init if result is None else result.image  # resized to this pass by initial_image
        result = transfer(resize(content_image, hw), resize(style_image, _scale_shape(style_image, factor)),
                          alpha=alpha, beta=beta * positions, steps=n, init=init, **kwargs)
        offset = sum(done)
        for key, values in result.history.items():
            history.setdefault(key, []).extend(values)
        done.append(result.steps)
        if result.stopped != "done":
            break
    assert result is not None
    image = resize(result.image, final_hw).clamp(0, 1)  # only if a pass stopped early
    settings = {**result.settings, "beta": beta, "init": first_init if isinstance(first_init, str) else "tensor",
                "steps": sum(scale_steps), "scales": scales, "scale_steps": done, "size": list(final_hw)}
    return Result(image=image, history=history, steps=sum(done), seconds=time.perf_counter() - start,
                  settings=settings, stopped=result.stopped,
                  best_step=offset + result.best_step if result.best_step else 0)
