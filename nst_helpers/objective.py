"""The objective the engine minimises: targets computed once, then eq. 7 as a function of the image.

* ``white_noise`` and ``initial_image``: where a run starts.
* ``content_targets``: the photo's responses P^l at the content layers (eq. 1).
* ``style_targets``: the painting's Gram matrices A^l at the style layers (eqs. 3, 4), rescaled
  to the result's number of positions when the two sizes differ.
* ``Gram``: eq. 5's style term for one painting, the paper's. It is one ``Style``: a style term
  is an object holding its paintings, which computes its targets once and its loss at each
  evaluation. The others live beside the ideas they come from: several paintings, masks and
  scale (``control``), other statistics than the Gram (``style_statistics``).
* ``Extra``: what a transfer may add to eq. 7, also as objects: a loss term (``smoothing``),
  a change of the images before and after the run (``color``).
* ``objective``: ``alpha L_content + beta L_style`` (eq. 7), plus each extra term, returning the
  total and its parts in the paper's units.
* ``term_scales``: how large a network's two terms are against the raw Caffe VGG-19's
  (``balance`` carries the default alpha/beta over with it).
* ``check_weighting``: clear errors for negative weights and unknown or unused layers.

The engine (``tasks``), the figures, the lab and the benchmarks all build their losses here,
so there is one definition of what is being minimised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .features import VGG19Features, check_layers, layer_shapes
from .images import as_batch, resize, scaled_shape
from .losses import check_weights, content_loss, gram_matrix, rescale_gram, style_loss, total_loss
from .speed import autocast, cached_network, device_of, prepare_network

__all__ = ["NOISE_STD", "Extra", "Gram", "Style", "as_style", "build", "check_weighting", "content_targets", "features_of", "initial_image",
           "objective", "style_targets", "term_scales", "white_noise"]

#: The white-noise start's standard deviation. The paper does not give its strength; uniform
#: noise in [0, 1] (std 0.29) leaves pixel grain the deep layers never remove (notebook 01).
NOISE_STD = 0.05

Objective = Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]]
Term = Callable[[Tensor], Tensor]


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
    if isinstance(init, str) and init == "noise":
        return white_noise(shape, noise_std, seed)
    if isinstance(init, Tensor):
        return resize((init.unsqueeze(0) if init.dim() == 3 else init).float(), tuple(shape[-2:]))
    source = content if init == "content" else style
    if source is None:
        raise ValueError(f"init={init!r} needs a {init} image, which this task does not have; use 'noise'")
    return resize(source, tuple(shape[-2:]))


def features_of(vgg: VGG19Features, image: Tensor, layers: Sequence[str], precision: str = "fp32") -> dict[str, Tensor]:
    """An image's responses at ``layers``, computed once without gradients, kept in fp32: what targets are made of."""
    with torch.no_grad(), autocast(device_of(vgg), precision):
        feats = vgg(image.to(device_of(vgg)), list(layers))
    return {k: v.float() for k, v in feats.items()}


def content_targets(vgg: VGG19Features, content: Tensor, layers: Sequence[str],
                    precision: str = "fp32") -> dict[str, Tensor]:
    """The content image's responses P^l at ``layers`` (eq. 1), computed once, kept in fp32."""
    return features_of(vgg, content, layers, precision)


def style_targets(vgg: VGG19Features, style: Tensor, layers: Sequence[str], out_hw: tuple[int, int],
                  precision: str = "fp32") -> dict[str, Tensor]:
    """The style image's Gram matrices A^l (eq. 3), rescaled to an output of ``out_hw`` pixels.

    Eq. 4 divides by the number of positions M_l; a painting of another size than the
    result has another M_l, so its Grams are rescaled per position (``losses.rescale_gram``).
    """
    feats = features_of(vgg, style, layers, precision)
    positions = {k: h * w for k, (_, h, w) in layer_shapes(list(layers), *out_hw).items()}
    return {layer: rescale_gram(gram_matrix(f), f.shape[-1] * f.shape[-2], positions[layer])
            for layer, f in feats.items()}


class Style:
    """Eq. 5's style term: which paintings, what is computed from them once, and the loss at each evaluation.

    A subclass sets ``paintings`` and implements ``targets`` and ``loss``; ``Gram`` is the paper's.
    """

    paintings: tuple[Tensor, ...]

    def targets(self, vgg: VGG19Features, layers: Sequence[str], start: Tensor, precision: str) -> dict[str, Any]:
        """What the loss compares with, per layer, for results shaped like ``start`` (B, 3, H, W)."""
        raise NotImplementedError

    def loss(self, features: Mapping[str, Tensor], targets: Mapping[str, Any],
             layer_weights: Mapping[str, float] | None) -> Tensor:
        """``sum_l w_l E_l`` (eq. 5) at the image whose responses are ``features``; ``w_l`` default ``1/L``."""
        raise NotImplementedError

    def with_paintings(self, paintings: Sequence[Tensor]) -> Style:
        """The same term with other paintings in the same places (``color`` recolours them)."""
        raise NotImplementedError

    def scaled(self, fraction: float) -> Style:
        """The term for a result ``fraction`` times as large, its paintings scaled alike so that brush strokes keep
        their size in the picture (a recipe's smaller passes, ``balance.RECIPES``)."""
        if fraction == 1:
            return self
        return self.with_paintings([resize(p, scaled_shape(p, fraction)) for p in self.paintings])

    def settings(self, targets: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The term's settings as plain values, for ``Result.settings``; ``targets``: a run's, if made."""
        return {}


@dataclass(frozen=True, eq=False)
class Gram(Style):
    """One painting's Gram matrices (eqs. 3-5): the paper's style term."""

    painting: Tensor

    def __post_init__(self) -> None:
        object.__setattr__(self, "painting", as_batch(self.painting, "style_image"))

    @property
    def paintings(self) -> tuple[Tensor, ...]:  # type: ignore[override]
        return (self.painting,)

    def targets(self, vgg: VGG19Features, layers: Sequence[str], start: Tensor, precision: str) -> dict[str, Any]:
        return style_targets(vgg, self.painting, layers, tuple(start.shape[-2:]), precision)

    def loss(self, features: Mapping[str, Tensor], targets: Mapping[str, Any],
             layer_weights: Mapping[str, float] | None) -> Tensor:
        return style_loss(features, targets, layer_weights)

    def with_paintings(self, paintings: Sequence[Tensor]) -> Gram:
        return Gram(paintings[0])


def as_style(style: Tensor | Style) -> Style:
    """A painting (1, 3, H, W) is the paper's ``Gram`` term; a ``Style`` is used as it is."""
    if isinstance(style, Style):
        return style
    if isinstance(style, (list, tuple)):
        raise TypeError("several paintings: say how to use them, e.g. control.Blend([a, b], weights=[0.7, 0.3]), "
                        "control.Guided([a, b], masks) or control.ScaleMix(fine, coarse, 'relu3_1')")
    return Gram(style)


class Extra:
    """Something a transfer adds to the paper's method, passed as an object (``transfer(extras=[...])``).

    Each hook does nothing unless a subclass overrides it: ``prepare`` changes the images before
    the targets are made, ``start`` the start image, ``term`` adds a loss term (recorded in
    ``Result.history`` under ``name``), ``finish`` changes the result. ``smoothing.Smoothing`` and
    ``color.KeepColors`` are the package's.
    """

    name: str = "extra"

    def prepare(self, photo: Tensor, style: Style) -> tuple[Tensor, Style]:
        return photo, style

    def start(self, image: Tensor) -> Tensor:
        return image

    def term(self, photo: Tensor, alpha: float, content_scale: float) -> Term | None:
        """A loss term image -> scalar, in the paper's units, for the ``photo`` as given (before ``prepare``);
        ``content_scale`` is ``term_scales``'s ``c`` for the run's network."""
        return None

    def finish(self, image: Tensor, photo: Tensor) -> Tensor:
        return image

    def settings(self, content_scale: float) -> dict[str, Any]:
        """The extra's settings as plain values for ``Result.settings``, with the network's ``content_scale``."""
        return {}


def objective(vgg: VGG19Features, content: Mapping[str, Tensor], style: Style | None, targets: Mapping[str, Any],
              alpha: float, beta: float, layer_weights: Mapping[str, float] | None = None, precision: str = "fp32",
              terms: Mapping[str, Term] | None = None) -> Objective:
    """Eq. 7, ``alpha L_content + beta L_style``, plus the extra ``terms``, as a function of the image.

    Args:
        vgg: the network; the image is fed in its memory layout (``speed.prepare_network``).
        content: P^l from ``content_targets`` (may be empty: texture synthesis).
        style, targets: the style term and its ``targets`` (``None`` and empty: content reconstruction).
        alpha, beta: eq. 7's weights.
        layer_weights: ``{layer: w_l}`` (eq. 5); default ``1/L``.
        precision: ``"fp32"``, ``"bf16"`` or ``"auto"`` (``speed.autocast``); the losses are fp32.
        terms: ``{name: image -> loss}`` added to the total, in the paper's units (``Extra.term``).

    Returns:
        ``image -> (total, {"content": ..., "style": ..., name: ...})``, the parts with their
        weights applied, so that they add up to the total.
    """
    layers = list(dict.fromkeys([*content, *targets]))
    device = device_of(vgg)
    channels_last = prepare_network(vgg)
    terms = dict(terms or {})
    zero = torch.zeros((), device=device)

    def loss(image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        extra = {name: term(image) for name, term in terms.items()}
        if channels_last:  # NHWC: what the fast kernels want; the gradient comes back NCHW
            image = image.contiguous(memory_format=torch.channels_last)
        with autocast(device, precision):
            feats = vgg(image, layers)
        content_part = sum((content_loss(feats[k].float(), p) for k, p in content.items()), zero)  # eq. 1
        style_part = style.loss(feats, targets, layer_weights) if style is not None and targets else zero  # eq. 5
        total = total_loss(content_part, style_part, alpha, beta)  # eq. 7
        for value in extra.values():
            total = total + value
        return total, {"content": alpha * content_part, "style": beta * style_part, **extra}

    return loss


def build(vgg: VGG19Features, content: Tensor | None, content_layers: Sequence[str], style: Style | None,
          style_layers: Sequence[str], layer_weights: Mapping[str, float] | None, alpha: float, beta: float,
          start: Tensor, precision: str = "fp32", terms: Mapping[str, Term] | None = None) -> Objective:
    """One run's eq. 7: the targets P^l (eq. 1) and A^l (eqs. 3-4) computed once, then ``objective``."""
    p = content_targets(vgg, content, content_layers, precision) if content is not None and content_layers else {}
    a = style.targets(vgg, style_layers, start, precision) if style is not None and style_layers else {}
    return objective(vgg, p, style, a, alpha, beta, layer_weights, precision, terms)


def term_scales(vgg: VGG19Features, painting: Tensor, content_layer: str, style_layers: Sequence[str],
                layer_weights: Mapping[str, float] | None = None, seed: int = 0) -> tuple[float, float]:
    """How large ``vgg``'s content and style terms are against the reference network's: ``(c, s)``.

    The reference is the raw Caffe VGG-19 (``load_vgg19("caffe")``), for which ``balance``'s ratios and the
    smoothing weight were chosen. ``c`` is eq. 1 for ``vgg`` over eq. 1 for the reference, ``s`` the same for
    eq. 5, both at the same white-noise image with the ``painting``'s responses and Grams as targets. With
    ``vgg`` the same alpha/beta balance needs beta times ``c / s``, and the smoothing weight (per unit of
    alpha) times ``c``: every network the package loads (the paper's normalised one, torchvision's, a file) is
    measured, none is looked up. The raw Caffe network is the reference itself: ``(1.0, 1.0)``, nothing is run.
    """
    if vgg.weights == "caffe" and not vgg.normalized:
        return 1.0, 1.0
    reference = cached_network("caffe", vgg.pooling, str(device_of(vgg)), False)
    noise = white_noise(painting.shape, seed=seed)

    def terms(net: VGG19Features) -> tuple[float, float]:
        loss = build(net, painting, [content_layer], Gram(painting), style_layers, layer_weights, 1.0, 1.0, noise)
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
