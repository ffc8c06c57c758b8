"""The objective the engine minimises: targets computed once, then eq. 7 as a function of the image.

* ``content_targets``: the photo's responses P^l at the content layers (eq. 1).
* ``style_targets``: the painting's Gram matrices A^l at the style layers (eqs. 3, 4),
  rescaled to the result's number of positions when the two sizes differ; or, with
  another ``statistic``, the painting's summary for it (``style_statistics``).
* ``objective``: ``alpha L_content + beta L_style`` (eq. 7), plus
  ``alpha tv_weight L_tv`` (not in the paper; ``tv_weight=0`` is eq. 7 exactly),
  returning the total and its parts in the paper's units.
* ``white_noise`` and ``initial_image``: where a run starts.
* ``check_weighting``: clear errors for negative weights and unknown or unused layers.

The engine (``optimize``), the figures, the lab and the benchmarks all build their
losses here, so there is one definition of what is being minimised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .control import check_masks, guided_gram_loss, layer_masks, painting_targets, scale_layers
from .features import VGG19Features, check_layers, layer_shapes
from .images import resize
from .losses import (
    check_weights,
    content_loss,
    gram_matrix,
    rescale_gram,
    style_layer_loss,
    style_loss,
    total_loss,
    total_variation,
)
from .speed import autocast, cached_network, device_of
from .style_statistics import check_statistic, statistic_loss, style_statistic

__all__ = ["NOISE_STD", "all_style_targets", "blended_style_targets", "check_weighting", "content_targets", "guided_style_targets",
           "initial_image", "objective", "split_style_targets", "statistic_scale", "style_targets", "term_scales",
           "white_noise"]

#: The white-noise start's standard deviation. The paper does not give its strength; uniform
#: noise in [0, 1] (std 0.29) leaves pixel grain the deep layers never remove (notebook 01).
NOISE_STD = 0.05

Objective = Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]]


def white_noise(like: Tensor | Sequence[int], std: float = NOISE_STD, seed: int = 0) -> Tensor:
    """Gaussian white noise N(0.5, std²) shaped like ``like`` (a tensor or a shape): the paper's start.

    The same seed gives the same noise, on every device (drawn on the CPU).
    """
    shape = tuple(like.shape) if isinstance(like, Tensor) else tuple(like)
    generator = torch.Generator().manual_seed(seed)
    return 0.5 + std * torch.randn(shape, generator=generator)


def initial_image(init: str | Tensor, shape: Sequence[int], seed: int = 0, noise_std: float = NOISE_STD,
                  content: Tensor | None = None, style: Tensor | None = None) -> Tensor:
    """The start of a run of output ``shape``: ``"noise"``, ``"content"``, ``"style"`` or an image (resized)."""
    if isinstance(init, Tensor):
        if init.dim() == 3:
            init = init.unsqueeze(0)
        return resize(init.float(), tuple(shape[-2:]))
    if init == "noise":
        return white_noise(shape, noise_std, seed)
    source = content if init == "content" else style
    if source is None:
        raise ValueError(f"init={init!r} needs a {init} image, which this task does not have; use 'noise'")
    return resize(source, tuple(shape[-2:]))


def content_targets(vgg: VGG19Features, content: Tensor, layers: Sequence[str],
                    precision: str = "fp32") -> dict[str, Tensor]:
    """The content image's responses P^l at ``layers`` (eq. 1), computed once, kept in fp32."""
    with torch.no_grad(), autocast(device_of(vgg), precision):
        feats = vgg(content.to(device_of(vgg)), layers)
    return {k: v.float() for k, v in feats.items()}


def style_targets(vgg: VGG19Features, style: Tensor, layers: Sequence[str], out_hw: tuple[int, int],
                  precision: str = "fp32", statistic: str = "gram") -> dict[str, Any]:
    """The style image's Gram matrices A^l (eq. 3), rescaled to an output of ``out_hw`` pixels.

    Eq. 4 divides by the number of positions M_l; a painting of another size than the
    result has another M_l, so its Grams are rescaled per position (``losses.rescale_gram``).
    Another ``statistic`` (``style_statistics.STATISTICS``) gives ``{layer: its summary}``,
    per position already.
    """
    check_statistic(statistic)
    device = device_of(vgg)
    with torch.no_grad(), autocast(device, precision):
        feats = vgg(style.to(device), layers)
    if statistic != "gram":
        return {layer: style_statistic(f.float(), statistic) for layer, f in feats.items()}
    positions = {k: h * w for k, (_, h, w) in layer_shapes(layers, *out_hw).items()}
    return {layer: rescale_gram(gram_matrix(f.float()), f.shape[-1] * f.shape[-2], positions[layer])
            for layer, f in feats.items()}


def objective(vgg: VGG19Features, content: Mapping[str, Tensor], style: Mapping[str, Any],
              alpha: float | Tensor, beta: float | Tensor, layer_weights: Mapping[str, float | Tensor] | None = None,
              precision: str = "fp32", channels_last: bool = False, per_image: bool = False,
              tv_weight: float = 0.0, statistic: str = "gram", guided: bool = False,
              tv_map: Tensor | None = None) -> Objective:
    """Eq. 7, ``alpha L_content + beta L_style``, plus ``alpha tv_weight L_tv``, as a function of the image.

    Args:
        vgg: the network.
        content, style: targets from ``content_targets`` and ``style_targets`` (either may be empty).
        alpha, beta: eq. 7's weights.
        layer_weights: ``{layer: w_l}`` (eq. 5); default ``1/len(style)``.
        precision: ``"fp32"``, ``"bf16"`` or ``"auto"`` (``speed.autocast``); losses are fp32.
        channels_last: feed the network NHWC images (``speed.prepare_network``).
        per_image: losses per image, shape (B,); alpha, beta and the layer weights may
            then be (B,) tensors: a batch of independent problems sharing the targets
            (``runs.transfer_batch``).
        tv_weight: the smoothing term's weight per unit of alpha (``balance``); 0: the paper's loss.
        statistic: the style statistic the targets hold (``style_targets``); ``"gram"`` is eq. 4,
            the others replace E_l in eq. 5 by ``style_statistics.statistic_loss``.
        guided: ``style`` holds ``guided_style_targets`` (spatial control): each layer's term is
            the paintings' masked Gram losses, weighted by their shares (``control``).
        tv_map: (1, 1, H, W) weight per pixel of the smoothing term (``losses.total_variation``);
            ``None``: 1 everywhere.

    Returns:
        ``image -> (total, {"content": ..., "style": ..., "tv": ...})``, the parts with
        their weights applied, so that they add up to the total.
    """
    check_statistic(statistic)
    if per_image and statistic != "gram":
        raise ValueError(f"batches of independent problems (per_image) match the Gram only, not {statistic!r}")
    layers = list(dict.fromkeys([*content, *style]))
    device = device_of(vgg)
    weights = layer_weights or {k: 1.0 / max(len(style), 1) for k in style}
    zero = torch.zeros((), device=device)

    def loss(image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        reduction = "none" if per_image else "sum"
        tv = (alpha * tv_weight * total_variation(image, reduction, tv_map) if tv_weight
              else torch.zeros_like(zero))
        if channels_last:  # NHWC: what cuDNN's tensor-core kernels want; the gradient comes back NCHW
            image = image.contiguous(memory_format=torch.channels_last)
        with autocast(device, precision):
            feats = vgg(image, layers)
        if per_image:
            start = torch.zeros(image.shape[0], device=device)
            content_part = sum((content_loss(feats[k].float(), p, reduction="none") for k, p in content.items()), start)
            style_part = sum((weights[k] * style_layer_loss(feats[k], a, reduction="none") for k, a in style.items()),
                             start)
            tv = tv.expand_as(content_part)
            return (alpha * content_part + beta * style_part + tv,
                    {"content": alpha * content_part, "style": beta * style_part, "tv": tv})
        content_part = sum((content_loss(feats[k].float(), p) for k, p in content.items()), zero)
        if guided:  # eq. 5 with each E_l the regions' guided Gram losses (control)
            style_part = sum((weights[k] * sum(share * guided_gram_loss(feats[k], mask, target)
                                               for mask, target, share in regions)
                              for k, regions in style.items()), zero)
        elif statistic == "gram":
            style_part = style_loss(feats, style, layer_weights) if style else zero
        else:  # eq. 5 with another statistic in place of E_l
            style_part = sum((weights[k] * statistic_loss(feats[k], t, statistic) for k, t in style.items()), zero)
        return (total_loss(content_part, style_part, alpha, beta) + tv,
                {"content": alpha * content_part, "style": beta * style_part, "tv": tv})

    return loss


def blended_style_targets(vgg: VGG19Features, styles: Sequence[Tensor], weights: Sequence[float] | None,
                          layers: Sequence[str], out_hw: tuple[int, int], precision: str = "fp32") -> dict[str, Tensor]:
    """Several paintings' Gram targets (eq. 3), blended: ``sum_s lambda_s A_s`` with the weights normalised to sum 1.

    Why the weighted mean of the targets: for weights summing to one,
    ``sum_s lambda_s ||G - A_s||^2 = ||G - sum_s lambda_s A_s||^2 + const`` (the constant does not
    depend on the image), so matching the blended Gram *is* minimising the weighted sum of the
    paintings' style losses (Gatys et al. 2017 mix styles this way), at the cost of one
    target per layer. Weights (1, 0) give the first painting alone; summing unnormalised
    targets, as some codes do, asks for a Gram larger than any painting's and leaves the
    weights without a clear meaning.
    """
    if not styles:
        raise ValueError("no style image given: pass one painting, or a list of them")
    weights = [1.0] * len(styles) if weights is None else [float(w) for w in weights]
    if len(weights) != len(styles):
        raise ValueError(f"{len(styles)} style images but {len(weights)} style_weights: give one weight per painting")
    check_weights(weights, "style_weights")
    total = sum(weights)
    if not total > 0:
        raise ValueError("style_weights are all zero: give at least one painting a positive weight")
    targets = [style_targets(vgg, image, layers, out_hw, precision) for image in styles]
    return {layer: sum(w / total * t[layer] for w, t in zip(weights, targets)) for layer in layers}


def guided_style_targets(vgg: VGG19Features, styles: Sequence[Tensor], masks: Sequence[Tensor],
                         weights: Sequence[float] | None, layers: Sequence[str], out_hw: tuple[int, int],
                         precision: str = "fp32") -> dict[str, list[tuple[Tensor, Tensor, float]]]:
    """Spatial control (``control``): per layer, for each painting, (its mask on the layer's grid, its Gram
    per position, its share of the style term), the shares normalised to sum 1."""
    masks = check_masks(masks, len(styles), out_hw)
    weights = [1.0] * len(styles) if weights is None else [float(w) for w in weights]
    check_weights(weights, "style_weights")
    total = sum(weights)
    if not total > 0:
        raise ValueError("style_weights are all zero: give at least one painting a positive weight")
    device = device_of(vgg)
    out: dict[str, list[tuple[Tensor, Tensor, float]]] = {layer: [] for layer in layers}
    for image, mask, weight in zip(styles, masks, weights):
        with torch.no_grad(), autocast(device, precision):
            feats = vgg(image.to(device), layers)
        targets = painting_targets({k: v.float() for k, v in feats.items()})
        for layer, m in layer_masks(mask.to(device), layers, out_hw).items():
            out[layer].append((m, targets[layer], weight / total))
    return out


def split_style_targets(vgg: VGG19Features, fine: Tensor, coarse: Tensor, split: str, layers: Sequence[str],
                        out_hw: tuple[int, int], precision: str = "fp32") -> dict[str, Tensor]:
    """Scale control (``control``): Gram targets of the layers up to ``split`` from ``fine``, deeper ones from ``coarse``."""
    low, high = scale_layers(layers, split)
    if not low or not high:
        raise ValueError(f"scale_split={split!r} leaves no style layer on one side of {list(layers)}: split between them")
    return {**style_targets(vgg, fine, low, out_hw, precision), **style_targets(vgg, coarse, high, out_hw, precision)}


def all_style_targets(vgg: VGG19Features, style: Tensor | Sequence[Tensor] | None, layers: Sequence[str],
                      out_hw: tuple[int, int], precision: str = "fp32", statistic: str = "gram",
                      weights: Sequence[float] | None = None, masks: Sequence[Tensor] | None = None,
                      scale_split: str | None = None) -> dict[str, Any]:
    """The style targets of a run, whichever way the paintings are used.

    One painting: ``style_targets`` (any statistic). Several: blended (``blended_style_targets``),
    under masks (``guided_style_targets``, for ``objective(..., guided=True)``) or split by scale
    (``split_style_targets``). Clear errors for the combinations that do not exist.
    """
    several = style is not None and not isinstance(style, Tensor)
    if statistic != "gram" and (several or masks is not None or scale_split is not None):
        raise ValueError(f"several paintings, masks and scale_split work on Gram matrices; "
                         f"style_statistic={statistic!r} takes one painting without them")
    if style is None or not layers:
        return {}
    if masks is not None:
        return guided_style_targets(vgg, list(style) if several else [style], masks, weights, layers, out_hw, precision)
    if scale_split is not None:
        if not several or len(style) != 2:
            raise ValueError("scale_split takes two paintings, [fine, coarse]: the first gives the layers up to "
                             "scale_split, the second the deeper ones")
        return split_style_targets(vgg, style[0], style[1], scale_split, layers, out_hw, precision)
    if several:
        return blended_style_targets(vgg, style, weights, layers, out_hw, precision)
    return style_targets(vgg, style, layers, out_hw, precision, statistic)


@torch.no_grad()
def statistic_scale(vgg: VGG19Features, image: Tensor, grams: Mapping[str, Tensor], targets: Mapping[str, Any],
                    statistic: str, layer_weights: Mapping[str, float] | None = None) -> float:
    """L_style with the Gram (eq. 5) over L_style with ``statistic``, both at ``image``: the factor that puts
    another statistic's style term in the Gram's units.

    The statistics' losses differ by orders of magnitude (a Gram entry is a product of two
    responses, a mean is one), so the same beta would weigh them very differently. Scaling
    by this factor, measured at the start image of each run, makes their style terms equal
    there: alpha/beta then means roughly the same balance whichever statistic is matched.
    """
    feats = vgg(image.float(), list(grams))
    weights = layer_weights or {k: 1.0 / len(grams) for k in grams}
    gram_part = float(style_loss(feats, grams, weights))
    other = float(sum(weights[k] * statistic_loss(feats[k], t, statistic) for k, t in targets.items()))
    if not other > 0:
        raise ValueError(f"the start image already matches the painting's {statistic!r} statistics: start elsewhere")
    return gram_part / other


def term_scales(vgg: VGG19Features, content: Tensor, style: Tensor, content_layer: str, style_layers: Sequence[str],
                layer_weights: Mapping[str, float] | None = None, seed: int = 0) -> tuple[float, float]:
    """How large ``vgg``'s content and style terms are against the reference network's: ``(c, s)``.

    The reference is the raw Caffe VGG-19 (``load_vgg19("caffe")``), for which ``balance``'s ratios and the
    smoothing weight were chosen. ``c`` is eq. 1 for ``vgg`` over eq. 1 for the reference, ``s`` the same for
    eq. 5, both at the same white-noise image with these images' targets. With ``vgg`` the same alpha/beta
    balance needs beta times ``c / s``, and the smoothing weight (per unit of alpha) times ``c``: every network
    the package loads (the paper's normalised one, torchvision's, a file) is measured, none is looked up.
    The raw Caffe network is the reference itself: ``(1.0, 1.0)``, nothing is run.
    """
    if vgg.weights == "caffe" and not vgg.normalized:
        return 1.0, 1.0
    reference = cached_network("caffe", vgg.pooling, str(device_of(vgg)), False)
    noise = white_noise(content.shape, seed=seed)

    def terms(net: VGG19Features) -> tuple[float, float]:
        targets = style_targets(net, style, style_layers, tuple(content.shape[-2:]))
        loss = objective(net, content_targets(net, content, [content_layer]), targets, 1.0, 1.0, layer_weights)
        with torch.no_grad():
            _, parts = loss(noise.to(device_of(net)))
        return float(parts["content"]), float(parts["style"])

    (c, s), (c_ref, s_ref) = terms(vgg), terms(reference)
    return c / c_ref if c_ref else 1.0, s / s_ref if s_ref else 1.0  # a term that is absent keeps its weight


def check_weighting(alpha: float, beta: float, style_layers: Sequence[str],
                     layer_weights: Mapping[str, float] | None) -> None:
    """Clear errors for negative weights, unknown style layers, and layer weights for layers not used."""
    check_weights([alpha, beta], "alpha and beta")
    check_layers(style_layers)
    if layer_weights is not None:
        check_weights(layer_weights.values(), "style layer weights")
        unknown = set(layer_weights) - set(style_layers)
        if unknown:
            raise ValueError(f"layer_weights names {sorted(unknown)}, which are not among style_layers {list(style_layers)}")
        missing = [layer for layer in style_layers if layer not in layer_weights]
        if missing:
            raise ValueError(f"layer_weights gives no weight for {missing}: give one for every style layer, "
                             f"e.g. {dict.fromkeys(style_layers, 1 / len(style_layers))}")
