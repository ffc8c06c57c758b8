"""One optimisation engine for the paper's three tasks.

* ``reconstruct_content``: find an image whose responses at one layer match a
  photo's (Fig. 1, content reconstructions), from white noise.
* ``synthesize_texture``: find an image whose Gram matrices match a painting's
  (Fig. 1, style reconstructions), from white noise.
* ``transfer``: both at once, ``alpha L_content + beta L_style`` (eq. 7, Fig. 2).

All three build a loss from the pure functions in ``losses`` and hand it to
``optimize_image``, which runs L-BFGS (the paper's choice) or Adam on the
pixels and returns a ``Result``.

How the image is kept in range: the pixels are optimised unconstrained and only
the returned image is clamped to [0, 1]. Clamping inside L-BFGS would make the
objective non-smooth and break its curvature estimates.

Robustness: L-BFGS uses a strong-Wolfe line search, and the objective is
divided by its value at the start (a constant, so the minimiser is unchanged).
That makes the optimiser's tolerances mean the same thing for every network,
pooling and alpha/beta: without it, tiny loss values (a normalised network,
small beta) tripped L-BFGS's stopping tests after a few steps, and fixed-step
L-BFGS diverged when the scale changed. A loss that becomes NaN/inf or grows a
million-fold stops the run with a warning; Ctrl-C stops it too. In every case
the best image found so far is returned.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from torch import Tensor

from .features import STYLE_LAYERS, VGG19Features, check_layers, load_vgg19, pick_device
from .images import resize
from .losses import check_weights, content_loss, gram_matrix, rescale_gram, style_loss, total_loss

__all__ = [
    "Options",
    "Progress",
    "Result",
    "optimize_image",
    "reconstruct_content",
    "synthesize_texture",
    "transfer",
]


@dataclass(frozen=True)
class Options:
    """Settings shared by the three tasks; every keyword of the task functions that is
    not task-specific lands here."""

    steps: int = 300  # loss+gradient evaluations; the paper does not say, 300 L-BFGS evals converge at 256 px (measured)
    optimizer: str = "lbfgs"  # the paper: L-BFGS (2016, Sec. 2.3); or "adam"
    lr: float | None = None  # None: 1.0 for L-BFGS (line search picks the step), 0.02 for Adam (pixels in [0, 1])
    init: str | Tensor = "noise"  # the paper starts from white noise (Fig. 1, 2); or "content", "style", a tensor
    seed: int = 0  # white-noise seed: same seed, same picture
    pooling: str = "avg"  # the paper: average pooling for synthesis (2015, Methods)
    weights: str = "caffe"  # the paper's network: the original Caffe VGG-19
    normalize: bool = False  # the paper's rescaled network (mean activation one per filter)
    device: str | torch.device | None = None  # None: CUDA, else MPS, else CPU
    precision: str = "auto"  # "fp32", "bf16" (autocast features, fp32 losses), "auto": bf16 on CUDA
    callback: Callable[[Progress], bool | None] | None = None  # called every `every` evals; True stops
    every: int = 10  # how often the callback runs and the progress bar shows losses
    progress: bool = True  # tqdm bar
    extractor: VGG19Features | None = None  # a ready network; overrides weights/pooling/normalize/device

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.optimizer not in ("lbfgs", "adam"):
            raise ValueError(f"Unknown optimizer {self.optimizer!r}; use 'lbfgs' or 'adam'")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"Unknown precision {self.precision!r}; use 'auto', 'fp32' or 'bf16'")
        if isinstance(self.init, str) and self.init not in ("noise", "content", "style"):
            raise ValueError(f"Unknown init {self.init!r}; use 'noise', 'content', 'style' or a tensor")
        if self.every < 1:
            raise ValueError(f"every must be at least 1, got {self.every}")

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> Options:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"Unknown option(s) {', '.join(unknown)}; the options are {', '.join(sorted(known))}")
        return cls(**kwargs)

    def network(self) -> VGG19Features:
        if self.extractor is not None:
            return self.extractor
        return _cached_vgg19(self.weights, self.pooling, str(pick_device(self.device)), self.normalize)

    def summary(self) -> dict[str, Any]:
        """The settings as plain values, for ``Result.settings``."""
        out = {k: v for k, v in asdict(self).items() if k not in ("callback", "extractor", "init")}
        out["init"] = self.init if isinstance(self.init, str) else "tensor"
        out["device"] = str(pick_device(self.device) if self.extractor is None else _device_of(self.extractor))
        return out


@functools.lru_cache(maxsize=4)
def _cached_vgg19(weights: str, pooling: str, device: str, normalize: bool) -> VGG19Features:
    return load_vgg19(weights=weights, pooling=pooling, device=device, normalize=normalize)


def _device_of(module: torch.nn.Module) -> torch.device:
    return next(module.buffers()).device


@dataclass
class Progress:
    """What a callback sees: the step reached, the losses there and the current image."""

    step: int
    steps: int
    losses: dict[str, float]
    image: Tensor  # (B, 3, H, W) in [0, 1], a detached copy


@dataclass
class Result:
    """What each task returns.

    Attributes:
        image: best image found, (B, 3, H, W) in [0, 1], on the CPU.
        history: per evaluation, ``{"total": [...], "content": [...], "style": [...]}``
            in the paper's units (alpha and beta applied to the parts).
        steps: evaluations done.
        seconds: wall time of the optimisation (targets and setup included).
        settings: everything needed to run it again.
        stopped: ``"done"``, or why it ended early: ``"interrupted"``,
            ``"diverged"``, ``"stopped"`` (callback), ``"out of memory"``.
    """

    image: Tensor
    history: dict[str, list[float]]
    steps: int
    seconds: float
    settings: dict[str, Any]
    stopped: str = "done"
    best_step: int = field(default=0)

    @property
    def loss(self) -> float:
        """Total loss of the returned image."""
        return self.history["total"][self.best_step - 1] if self.best_step else math.nan


class _Stop(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _autocast(device: torch.device, precision: str):
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)


def optimize_image(
    objective: Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]],
    init: Tensor,
    options: Options,
    settings: dict[str, Any] | None = None,
    description: str = "optimising",
) -> Result:
    """Minimise ``objective`` over the pixels of an image, starting from ``init``.

    Args:
        objective: image (B, 3, H, W) -> (total loss, {"content": ..., "style": ...}),
            scalar tensors in the paper's units.
        init: the starting image, (B, 3, H, W).
        options: optimiser, steps, callback, progress bar.
        settings: recorded in the result (defaults to ``options.summary()``).
        description: the progress bar's label.

    Returns:
        A ``Result`` with the lowest-loss image seen; never raises for
        divergence or Ctrl-C (it warns and returns the best image so far).
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    x = init.detach().clone().requires_grad_(True)
    best_loss = torch.tensor(math.inf, device=x.device)
    best_image = x.detach().clone()
    best_step = torch.tensor(0, device=x.device)
    records: list[Tensor] = []  # (3,) per evaluation: total, content, style; synced once at the end
    state: dict[str, Any] = {"evals": 0, "scale": None, "first": None}
    lbfgs = options.optimizer == "lbfgs"
    if lbfgs:
        # Tolerances 0: we stop on the evaluation budget; the normalised loss keeps the
        # line search well-scaled. History 100 as in common Gatys implementations.
        optimizer: torch.optim.Optimizer = torch.optim.LBFGS(
            [x], lr=options.lr or 1.0, max_iter=options.steps, max_eval=options.steps + 25,
            tolerance_grad=0.0, tolerance_change=0.0, history_size=100, line_search_fn="strong_wolfe",
        )
    else:
        optimizer = torch.optim.Adam([x], lr=options.lr or 0.02)
    bar = tqdm(total=options.steps, desc=description, disable=not options.progress, leave=False)

    def check(total: Tensor, parts: dict[str, Tensor], report: bool) -> None:
        value = float(total)  # the one host-device sync, every `every` evaluations
        if state["first"] is None:
            state["first"] = abs(value)
        if not math.isfinite(value) or abs(value) > 1e6 * max(state["first"], 1e-30):
            raise _Stop("diverged")
        losses = {"total": value, **{k: float(v.detach()) for k, v in parts.items()}}
        bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
        if report and options.callback is not None:
            shown = x.detach().clamp(0, 1).cpu()
            if options.callback(Progress(state["evals"], options.steps, losses, shown)) is True:
                raise _Stop("stopped")

    def closure() -> Tensor:
        nonlocal best_loss, best_image, best_step
        if state["evals"] >= options.steps:
            raise _Stop("done")
        optimizer.zero_grad(set_to_none=True)
        total, parts = objective(x)
        if state["scale"] is None:
            state["scale"] = total.detach().abs().clamp_min(1e-30)
        scaled = total / state["scale"]
        scaled.backward()
        state["evals"] += 1
        detached = total.detach()
        records.append(torch.stack([detached, parts["content"].detach(), parts["style"].detach()]))
        improved = detached < best_loss  # no sync: False for NaN
        best_loss = torch.where(improved, detached, best_loss)
        best_image = torch.where(improved, x.detach(), best_image)
        best_step = torch.where(improved, torch.tensor(state["evals"], device=x.device), best_step)
        bar.update(1)
        report = state["evals"] % options.every == 0 or state["evals"] == options.steps
        if lbfgs or report:  # L-BFGS syncs on every evaluation anyway: check for NaN each time
            check(detached, parts, report)
        return scaled

    stopped = "done"
    try:
        while state["evals"] < options.steps:
            before = state["evals"]
            optimizer.step(closure)
            if state["evals"] == before:  # L-BFGS converged exactly: nothing left to do
                break
    except _Stop as stop:
        stopped = stop.reason
    except KeyboardInterrupt:
        stopped = "interrupted"
    except torch.OutOfMemoryError as err:
        if state["evals"] == 0:
            raise RuntimeError(
                f"Out of memory on {x.device} for a {x.shape[-1]}x{x.shape[-2]} image ({err}). "
                "Use a smaller size (e.g. size=256), fewer style layers, or device='cpu'."
            ) from err
        stopped = "out of memory"
    finally:
        bar.close()
    if stopped not in ("done", "stopped"):
        warnings.warn(
            f"Optimisation {stopped} after {state['evals']} of {options.steps} steps; "
            "returning the best image so far", RuntimeWarning, stacklevel=3,
        )
    history = {"total": [], "content": [], "style": []}
    if records:
        table = torch.stack(records).float().cpu().tolist()
        for total_, content_, style_ in table:
            history["total"].append(total_)
            history["content"].append(content_)
            history["style"].append(style_)
    if not int(best_step):
        best_image = init.detach()
    return Result(
        image=best_image.detach().clamp(0, 1).float().cpu(),
        history=history,
        steps=state["evals"],
        seconds=time.perf_counter() - start,
        settings=settings if settings is not None else options.summary(),
        stopped=stopped,
        best_step=int(best_step),
    )


# ------------------------------------------------------------------ objectives


def _initial_image(init: str | Tensor, shape: Sequence[int], options: Options,
                   content: Tensor | None = None, style: Tensor | None = None) -> Tensor:
    if isinstance(init, Tensor):
        if init.dim() == 3:
            init = init.unsqueeze(0)
        return resize(init.float(), tuple(shape[-2:]))
    if init == "noise":
        generator = torch.Generator().manual_seed(options.seed)
        return torch.rand(tuple(shape), generator=generator)  # white noise, uniform in [0, 1]
    source = content if init == "content" else style
    if source is None:
        raise ValueError(f"init={init!r} needs a {init} image, which this task does not have; use 'noise'")
    return resize(source, tuple(shape[-2:]))


def _style_targets(vgg: VGG19Features, style: Tensor, layers: Sequence[str],
                   out_hw: tuple[int, int], precision: str) -> dict[str, Tensor]:
    """Target Grams of the style image, rescaled to the output's number of positions."""
    device = _device_of(vgg)
    with torch.no_grad(), _autocast(device, precision):
        feats = vgg(style.to(device), layers)
    targets = {}
    out_shapes = _shapes(layers, out_hw)
    for layer, f in feats.items():
        m_a = f.shape[-1] * f.shape[-2]
        targets[layer] = rescale_gram(gram_matrix(f.float()), m_a, out_shapes[layer])
    return targets


def _shapes(layers: Sequence[str], hw: tuple[int, int]) -> dict[str, int]:
    from .features import layer_shapes

    return {k: h * w for k, (_, h, w) in layer_shapes(layers, *hw).items()}


def _make_objective(vgg: VGG19Features, content_targets: dict[str, Tensor], style_targets: dict[str, Tensor],
                    alpha: float, beta: float, layer_weights: Mapping[str, float] | None,
                    precision: str) -> Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]]:
    layers = list(dict.fromkeys([*content_targets, *style_targets]))
    device = _device_of(vgg)
    zero = torch.zeros((), device=device)

    def objective(image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        with _autocast(device, precision):
            feats = vgg(image, layers)
        content = sum((content_loss(feats[k].float(), p) for k, p in content_targets.items()), zero)
        style = style_loss(feats, style_targets, layer_weights) if style_targets else zero
        return total_loss(content, style, alpha, beta), {"content": alpha * content, "style": beta * style}

    return objective


def _run(content: Tensor | None, style: Tensor | None, content_layers: Sequence[str],
         style_layers: Sequence[str], alpha: float, beta: float,
         layer_weights: Mapping[str, float] | None, out_shape: Sequence[int],
         options: Options, task: str, extra: dict[str, Any]) -> Result:
    check_weights([alpha, beta], "alpha and beta")
    if layer_weights is not None:
        check_weights(layer_weights.values(), "style layer weights")
        unknown = set(layer_weights) - set(style_layers)
        if unknown:
            raise ValueError(f"layer_weights names {sorted(unknown)}, which are not among style_layers {list(style_layers)}")
    check_layers([*content_layers, *style_layers])
    start = time.perf_counter()
    vgg = options.network()
    device = _device_of(vgg)
    hw = (int(out_shape[-2]), int(out_shape[-1]))
    content_targets: dict[str, Tensor] = {}
    if content is not None and content_layers:
        with torch.no_grad(), _autocast(device, options.precision):
            feats = vgg(content.to(device), content_layers)
        content_targets = {k: v.float() for k, v in feats.items()}
    style_targets = (
        _style_targets(vgg, style, style_layers, hw, options.precision) if style is not None and style_layers else {}
    )
    objective = _make_objective(vgg, content_targets, style_targets, alpha, beta, layer_weights, options.precision)
    x0 = _initial_image(options.init, out_shape, options, content, style).to(device)
    settings = {"task": task, **extra, **options.summary(), "size": list(hw)}
    result = optimize_image(objective, x0, options, settings, description=task)
    result.seconds = time.perf_counter() - start
    return result


def _as_batch(image: Tensor, name: str) -> Tensor:
    if not isinstance(image, Tensor):
        raise TypeError(f"{name} must be an image tensor (1, 3, H, W); load one with nst_helpers.load_image")
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"{name} must have shape (B, 3, H, W), got {tuple(image.shape)}")
    return image.float()


def reconstruct_content(image: Tensor, layer: str = "relu4_2", **options: Any) -> Result:
    """Reconstruct an image from one layer's responses (Fig. 1, content reconstructions).

    Minimises ``L_content`` (eq. 1) at ``layer``, starting from white noise.

    Args:
        image: the photo, (1, 3, H, W) in [0, 1].
        layer: any name in ``LAYER_NAMES``. The paper's "conv1_1 .. conv5_1"
            are rectified responses (Caffe's in-place ReLU), our ``relu1_1 ..
            relu5_1``; ``conv*`` names give the responses before the ReLU.
        **options: see ``Options`` (steps, optimizer, init, seed, pooling, ...).
    """
    o = Options.from_kwargs(options)
    image = _as_batch(image, "image")
    return _run(image, None, [layer], [], 1.0, 0.0, None, image.shape, o,
                "reconstruct_content", {"layer": layer})


def synthesize_texture(
    style_image: Tensor,
    layers: Sequence[str] = STYLE_LAYERS,
    layer_weights: Mapping[str, float] | None = None,
    size: tuple[int, int] | None = None,
    **options: Any,
) -> Result:
    """Synthesise a texture matching the Gram matrices of ``layers`` (Fig. 1, style reconstructions).

    Minimises ``L_style`` (eq. 5) from white noise.

    Args:
        style_image: the painting, (1, 3, H, W) in [0, 1].
        layers: the style layers; the paper's growing subsets are
            ``STYLE_LAYERS[:k]`` (rectified, see ``reconstruct_content``).
        layer_weights: ``{layer: w_l}``; default ``1/len(layers)``.
        size: (height, width) of the result; default the style image's.
        **options: see ``Options``.
    """
    o = Options.from_kwargs(options)
    style_image = _as_batch(style_image, "style_image")
    shape = (1, 3, *(size or style_image.shape[-2:]))
    return _run(None, style_image, [], list(layers), 0.0, 1.0, layer_weights, shape, o,
                "synthesize_texture", {"layers": list(layers), "layer_weights": layer_weights})


def transfer(
    content_image: Tensor,
    style_image: Tensor,
    alpha: float = 1.0,
    beta: float = 1e3,
    content_layer: str = "relu4_2",
    style_layers: Sequence[str] = STYLE_LAYERS,
    layer_weights: Mapping[str, float] | None = None,
    **options: Any,
) -> Result:
    """Render ``content_image`` in the style of ``style_image`` (eq. 7, Fig. 2).

    Minimises ``alpha L_content + beta L_style``. The result has the content
    image's size; the style image may differ in size and aspect (its Grams are
    rescaled per position, see ``losses.rescale_gram``).

    Args:
        content_image: the photo, (1, 3, H, W) in [0, 1].
        style_image: the painting, (1, 3, H', W') in [0, 1].
        alpha, beta: weights of content and style (eq. 7); only alpha/beta matters.
        content_layer: the paper's "conv4_2" is our ``relu4_2`` (rectified).
        style_layers: the paper's "conv1_1 .. conv5_1" are ``relu1_1 .. relu5_1``.
        layer_weights: ``{layer: w_l}``; default ``1/len(style_layers)``.
        **options: see ``Options`` (``init="content"`` starts from the photo).

    Note:
        The right alpha/beta depends on the network's scale and the image size;
        see notebook 04 and ``figures`` for the mapping to the paper's ratios.
    """
    o = Options.from_kwargs(options)
    content_image = _as_batch(content_image, "content_image")
    style_image = _as_batch(style_image, "style_image")
    return _run(content_image, style_image, [content_layer], list(style_layers), alpha, beta,
                layer_weights, content_image.shape, o, "transfer",
                {"alpha": alpha, "beta": beta, "content_layer": content_layer,
                 "style_layers": list(style_layers), "layer_weights": layer_weights})
