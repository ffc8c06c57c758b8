"""The paper's three tasks, each a short path from images to a picture.

* ``reconstruct_content``: find an image whose responses at one layer match a photo's
  (Fig. 1, content reconstructions), from white noise: eq. 1.
* ``synthesize_texture``: find an image whose Gram matrices match a painting's
  (Fig. 1, style reconstructions), from white noise: eqs. 3-5.
* ``transfer``: both at once, ``alpha L_content + beta L_style`` (eq. 7, Fig. 2).

Each follows the same steps: the images in, the network (and a memory check before any
work), the start, the targets (P^l for eq. 1, A^l for eqs. 3-4), eq. 7 as a function of the
image (``objective``), and L-BFGS on the pixels (``optimize``). What a transfer adds to the
paper comes as objects: the style term (``objective.Gram`` for one painting, the paper's;
``control`` and ``style_statistics`` for others) and ``extras`` (``smoothing``, ``color``).
A transfer's recipe (``balance.RECIPES``) may run those steps first at half size, where an
evaluation costs a quarter; that result, enlarged, starts the full-size pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from torch import Tensor

from .balance import default_beta
from .balance import recipe as named_recipe
from .features import STYLE_LAYERS, check_layers, min_size
from .images import as_batch, resize, scaled_shape
from .memory import check_fits
from .objective import (
    Extra,
    Objective,
    Style,
    as_style,
    build,
    check_weighting,
    content_targets,
    initial_image,
    objective,
    term_scales,
)
from .optimize import Options, Result, optimize_image
from .smoothing import Smoothing
from .speed import device_of

__all__ = ["reconstruct_content", "synthesize_texture", "transfer"]


def _solve(task: str, loss: Objective, start: Tensor, options: Options, settings: dict[str, Any]) -> Result:
    """Minimise ``loss`` from ``start`` with these settings recorded."""
    settings = {"task": task, **settings, **options.summary(), "size": list(start.shape[-2:])}
    return optimize_image(loss, start, options, settings, description=task)


def reconstruct_content(image: Tensor, layer: str = "relu4_2", **options: Any) -> Result:
    """Reconstruct an image from one layer's responses (Fig. 1, content reconstructions).

    Minimises ``L_content`` (eq. 1) at ``layer``, starting from white noise.

    Args:
        image: the photo, (1, 3, H, W) in [0, 1].
        layer: any name in ``LAYER_NAMES``. The paper's "conv1_1 .. conv5_1"
            are rectified responses (Caffe's in-place ReLU), our ``relu1_1 ..
            relu5_1``; ``conv*`` names give the responses before the ReLU.
        **options: see ``Options`` (steps, optimizer, init, seed, network, ...).
    """
    photo = as_batch(image, "image")
    o = Options.from_kwargs(options)
    check_layers([layer])
    vgg = o.vgg()
    check_fits(*photo.shape[-2:], device=device_of(vgg), optimizer=o.optimizer, content_layer=layer, style_layers=[])
    start = initial_image(o.init, photo.shape, o.seed, content=photo).to(device_of(vgg))
    loss = build(vgg, photo, [layer], None, [], None, 1.0, 0.0, start, o.precision)  # eq. 1
    return _solve("reconstruct_content", loss, start, o, {"layer": layer})


def synthesize_texture(
    style_image: Tensor | Style,
    layers: Sequence[str] = STYLE_LAYERS,
    layer_weights: Mapping[str, float] | None = None,
    size: tuple[int, int] | None = None,
    **options: Any,
) -> Result:
    """Synthesise a texture matching the Gram matrices of ``layers`` (Fig. 1, style reconstructions).

    Minimises ``L_style`` (eq. 5) from white noise.

    Args:
        style_image: the painting, (1, 3, H, W) in [0, 1]; or another style term
            (``style_statistics.Statistic(painting, "sliced_w2")``, notebook 06).
        layers: the style layers; the paper's growing subsets are
            ``STYLE_LAYERS[:k]`` (rectified, see ``reconstruct_content``).
        layer_weights: ``{layer: w_l}``; default ``1/len(layers)``.
        size: (height, width) of the result; default the painting's.
        **options: see ``Options``.
    """
    style = as_style(style_image)
    o = Options.from_kwargs(options)
    if isinstance(layers, str) or not list(layers):
        raise ValueError(f"layers must be a list of style layers, e.g. {list(STYLE_LAYERS)}; got {layers!r}")
    check_weighting(0.0, 1.0, list(layers), layer_weights)
    shape = (1, 3, *(size or style.paintings[0].shape[-2:]))
    vgg = o.vgg()
    check_fits(*shape[-2:], device=device_of(vgg), optimizer=o.optimizer, content_layer=None, style_layers=list(layers))
    start = initial_image(o.init, shape, o.seed, style=style.paintings[0]).to(device_of(vgg))
    a = style.targets(vgg, list(layers), start, o.precision)  # A^l (eqs. 3, 4)
    loss = objective(vgg, {}, style, a, 0.0, 1.0, layer_weights, o.precision)  # eq. 5
    return _solve("synthesize_texture", loss, start, o,
                  {"layers": list(layers), "layer_weights": layer_weights, **style.settings(a)})


def transfer(
    content_image: Tensor,
    style_image: Tensor | Style,
    alpha: float = 1.0,
    beta: float | None = None,
    content_layer: str = "relu4_2",
    style_layers: Sequence[str] = STYLE_LAYERS,
    layer_weights: Mapping[str, float] | None = None,
    extras: Sequence[Extra] = (Smoothing(),),
    recipe: str = "coarse_to_fine",
    **options: Any,
) -> Result:
    """Render ``content_image`` in the style of ``style_image`` (eq. 7, Fig. 2).

    Minimises ``alpha L_content + beta L_style``. The result has the photo's size; the
    painting may differ in size and aspect (its Grams are rescaled per position,
    ``losses.rescale_gram``).

    Args:
        content_image: the photo, (1, 3, H, W) in [0, 1].
        style_image: the painting, (1, 3, H', W') in [0, 1]: the paper's Gram term. Or another
            style term: several paintings (``control.Blend``, ``control.Guided`` under masks,
            ``control.ScaleMix``), another statistic (``style_statistics.Statistic``).
        alpha, beta: weights of content and style (eq. 7); only alpha/beta matters.
            ``beta=None``: balanced for the result's size, the recipe and the network
            (``balance.default_beta`` with ``objective.term_scales``).
        content_layer: the paper's "conv4_2" is our ``relu4_2`` (rectified).
        style_layers: the paper's "conv1_1 .. conv5_1" are ``relu1_1 .. relu5_1``.
        layer_weights: ``{layer: w_l}`` for every style layer; default ``1/len(style_layers)``.
        extras: what the run adds to the paper's method, in order: ``smoothing.Smoothing``,
            ``color.KeepColors``, or your own ``objective.Extra``.
        recipe: ``"coarse_to_fine"`` (white noise, half the evaluations at half size first),
            ``"paper"`` (white noise, one pass) or ``"quick"`` (from the photo, more content:
            previews of ~100 evaluations): start, balance, passes and steps (``balance.RECIPES``).
            ``init`` and ``steps`` options override the recipe's; the balance stays the recipe's.
        **options: see ``Options`` (steps, optimizer, init, seed, network, precision, callback, ...).

    Note:
        Differs from the paper by default, in two ways: a small total-variation term
        (``smoothing.Smoothing``) removes the pixel-level grain the paper's loss does not see
        (notebook 04, ``benchmarks/PICTURES.md``), and the default recipe spends its first
        evaluations at half size, where they cost a quarter (``balance``). ``extras=()`` and
        ``recipe="paper"`` run the paper's algorithm.
    """
    photo = as_batch(content_image, "content_image")
    style = as_style(style_image)
    plan = named_recipe(recipe)
    o = Options.from_kwargs({"init": plan.init, "steps": plan.steps, **options})
    check_weighting(alpha, 0.0 if beta is None else beta, list(style_layers), layer_weights)
    check_layers([content_layer])
    vgg = o.vgg()
    check_fits(*photo.shape[-2:], device=device_of(vgg), optimizer=o.optimizer, content_layer=content_layer,
               style_layers=list(style_layers))  # before any work
    content = photo
    for extra in extras:  # e.g. keeping the photo's colours changes the images the targets come from
        content, style = extra.prepare(content, style)
    # The default balance was chosen on the raw Caffe VGG-19; measured on this network, it carries over.
    c, s = term_scales(vgg, style.paintings[0], content_layer, list(style_layers), layer_weights, o.seed)
    beta = default_beta(max(photo.shape[-2:]), alpha, recipe, (c, s)) if beta is None else beta
    settings = {"alpha": alpha, "beta": beta, "content_layer": content_layer, "style_layers": list(style_layers),
                "layer_weights": layer_weights, "recipe": recipe,
                **{k: v for e in extras for k, v in e.settings(c).items()}}
    steps = _split(o.steps, len(plan.passes))
    smallest = max(min_size(layer) for layer in [content_layer, *style_layers])
    shortest = min(min(image.shape[-2:]) for image in (photo, *style.paintings))
    start: Tensor | None = None
    passes: list[Result] = []
    for fraction, n in zip(plan.passes, steps):
        if n == 0:
            continue
        fraction = min(1.0, max(fraction, smallest / shortest))  # never smaller than the deepest layer needs
        hw = scaled_shape(photo, fraction)
        here, style_here = resize(content, hw), style.scaled(fraction)  # the painting scaled with the photo
        if start is None:  # the recipe's start, then the extras' (e.g. its luminance only)
            start = initial_image(o.init, (1, 3, *hw), o.seed, content=here, style=style_here.paintings[0])
            for extra in extras:
                start = extra.start(start)
        else:  # the last pass's result, enlarged
            start = resize(passes[-1].image, hw)
        start = start.to(device_of(vgg))
        terms = {e.name: t for e in extras if (t := e.term(resize(photo, hw).to(start.device), alpha, c)) is not None}
        p = content_targets(vgg, here, [content_layer], o.precision)  # P^l (eq. 1)
        a = style_here.targets(vgg, list(style_layers), start, o.precision)  # A^l (eqs. 3, 4)
        # Eq. 1 sums over positions and eq. 4 does not: beta times this pass's share of the positions keeps the
        # balance of the result's size at every pass.
        share = hw[0] * hw[1] / (photo.shape[-2] * photo.shape[-1])
        loss = objective(vgg, p, style_here, a, alpha, beta * share, layer_weights, o.precision, terms)  # eq. 7 (+ extras)
        passes.append(_solve("transfer", loss, start, replace(o, steps=n), {**settings, **style_here.settings(a)}))
        if passes[-1].stopped not in ("done", "converged"):  # interrupted, stopped by the callback: keep what is
            break
    result = _joined(passes, photo, o.steps)
    for extra in extras:  # e.g. the photo's chroma back on a luminance-only result
        result.image = extra.finish(result.image, photo)
    return result


def _split(steps: int, count: int) -> list[int]:
    """``steps`` evaluations split evenly between ``count`` passes, the remainder to the last (fewer steps than
    passes: the first passes get none and are skipped)."""
    share = steps // count
    return [share] * (count - 1) + [steps - share * (count - 1)]


def _joined(passes: list[Result], photo: Tensor, steps: int) -> Result:
    """One result from a recipe's passes: the last image at the photo's size, the histories joined."""
    last = passes[-1]
    if len(passes) == 1 and last.image.shape[-2:] == photo.shape[-2:]:  # one pass: the paper's recipe
        return last
    history: dict[str, list[float]] = {}
    for part in passes:  # in the full size's units: eq. 1 and the smoothing sum over positions, beta was scaled
        times = photo.shape[-2] * photo.shape[-1] / (part.image.shape[-2] * part.image.shape[-1])
        for key, values in part.history.items():
            history.setdefault(key, []).extend(v * times for v in values)
    done = [part.steps for part in passes]
    settings = {**last.settings, "steps": steps, "pass_steps": done, "size": list(photo.shape[-2:]),
                "init": passes[0].settings["init"]}
    image = resize(last.image, tuple(photo.shape[-2:])).clamp(0, 1)  # resizes only if a pass stopped early
    return Result(image=image, history=history, steps=sum(done), seconds=sum(part.seconds for part in passes),
                  settings=settings, stopped=last.stopped,
                  best_step=sum(done[:-1]) + last.best_step if last.best_step else 0)
