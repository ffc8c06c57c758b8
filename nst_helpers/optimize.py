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

import contextlib
import ctypes
import functools
import math
import os
import platform
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch
from torch import Tensor

from .balance import default_beta, default_tv_weight
from .features import STYLE_LAYERS, VGG19Features, check_layers, load_vgg19, pick_device
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

__all__ = [
    "Options",
    "Progress",
    "Result",
    "optimize_image",
    "reconstruct_content",
    "synthesize_texture",
    "transfer",
    "transfer_batch",
]


#: The parts of the loss recorded in ``Result.history`` besides the total.
_PARTS = ("content", "style", "tv")


@dataclass(frozen=True)
class Options:
    """Settings shared by the three tasks; every keyword of the task functions that is
    not task-specific lands here."""

    steps: int = 300  # loss+gradient evaluations; the paper does not say, 300 L-BFGS evals converge at 256 px (measured)
    optimizer: str = "lbfgs"  # the paper: L-BFGS (2016, Sec. 2.3); or "adam"
    lr: float | None = None  # None: 1.0 for L-BFGS (line search picks the step), 0.02 for Adam (pixels in [0, 1])
    init: str | Tensor = "noise"  # the paper starts from white noise (Fig. 1, 2); or "content", "style", a tensor
    seed: int = 0  # white-noise seed: same seed, same picture
    noise_std: float = 0.05  # white noise N(0.5, std^2); louder noise leaves grain deep layers ignore (notebook 01)
    pooling: str = "avg"  # the paper: average pooling for synthesis (2015, Methods)
    weights: str = "caffe"  # the paper's network: the original Caffe VGG-19
    normalize: bool = False  # the paper's rescaled network (mean activation one per filter)
    device: str | torch.device | None = None  # None: CUDA, else MPS, else CPU
    precision: str = "auto"  # "fp32", "bf16" (autocast features, fp32 losses), "auto": bf16 on CUDA
    callback: Callable[[Progress], bool | None] | None = None  # called every `every` evals; True stops
    every: int = 10  # how often the callback runs and the progress bar shows losses
    progress: bool = True  # tqdm bar
    extractor: VGG19Features | None = None  # a ready network; overrides weights/pooling/normalize/device
    channels_last: bool | None = None  # NHWC layout for network and image; None: on CUDA and CPU (faster there, measured)

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
        # Not dataclasses.asdict: it deep-copies the callback (a bound method holding a lock fails).
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("callback", "extractor", "init")}
        out["init"] = self.init if isinstance(self.init, str) else "tensor"
        out["device"] = str(pick_device(self.device) if self.extractor is None else _device_of(self.extractor))
        return out


@functools.lru_cache(maxsize=4)
def _cached_vgg19(weights: str, pooling: str, device: str, normalize: bool) -> VGG19Features:
    return load_vgg19(weights=weights, pooling=pooling, device=device, normalize=normalize)


def _device_of(module: torch.nn.Module) -> torch.device:
    return next(module.buffers()).device


def progress_bar(total: int, description: str, enabled: bool = True, **kwargs: Any):
    """A tqdm bar (a widget in Jupyter, text elsewhere), off when ``enabled`` is false or ``NST_PROGRESS=0``.

    ``NST_PROGRESS=0`` is for pages executed once and read later (``make book``): there a
    live bar is noise, and a widget bar needs JavaScript from a CDN to show at all.
    """
    from tqdm.auto import tqdm

    enabled = enabled and os.environ.get("NST_PROGRESS", "1") != "0"
    return tqdm(total=total, desc=description, disable=not enabled, **kwargs)


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
        history: per evaluation, ``{"total": [...], "content": [...], "style": [...], "tv": [...]}``
            in the paper's units (alpha, beta and tv_weight applied to the parts).
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
) -> Result | list[Result]:
    """Minimise ``objective`` over the pixels of an image, starting from ``init``.

    Args:
        objective: image (B, 3, H, W) -> (total loss, {"content": ..., "style": ..., "tv": ...}),
            scalar tensors in the paper's units (weights applied; a missing part
            is recorded as 0). Or, for a batch of independent problems, tensors
            of shape (B,), one loss per image (Adam only).
        init: the starting image, (B, 3, H, W).
        options: optimiser, steps, callback, progress bar.
        settings: recorded in the result (defaults to ``options.summary()``);
            a list of one dict per image for per-image losses.
        description: the progress bar's label.

    Returns:
        A ``Result`` with the lowest-loss image seen; never raises for
        divergence or Ctrl-C (it warns and returns the best image so far).
        With per-image losses, a list of ``Result``, one per image, each with
        its own history and best step, as if it had run alone.

    Note:
        Host-device syncs: Adam runs without any until every ``every``-th
        evaluation (losses stay on the device and are copied once at the end).
        L-BFGS reads the loss as a Python float at every evaluation (its line
        search branches on it), so it syncs once per evaluation by design.
    """
    start = time.perf_counter()
    x = init.detach().clone().requires_grad_(True)
    best_loss = torch.tensor(math.inf, device=x.device)  # () or (B,) for per-image losses
    best_image = x.detach().clone()
    best_step = torch.tensor(0, device=x.device)
    records: list[Tensor] = []  # (4,) or (4, B) per evaluation: total, content, style, tv; synced once at the end
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
    bar = progress_bar(options.steps, description, options.progress, leave=False)

    def check(total: Tensor, parts: dict[str, Tensor], report: bool) -> None:
        value = float(total.sum())  # the one host-device sync, every `every` evaluations
        if state["first"] is None:
            state["first"] = abs(value)
        if not math.isfinite(value) or abs(value) > 1e6 * max(state["first"], 1e-30):
            raise _Stop("diverged")
        losses = {"total": value, **{k: float(v.detach().sum()) for k, v in parts.items()}}
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
        scaled = (total / state["scale"]).sum()  # per image: each scaled by its own start, as if alone
        scaled.backward()
        state["evals"] += 1
        detached = total.detach()
        records.append(torch.stack([detached, *(parts[k].detach() if k in parts else torch.zeros_like(detached)
                                                for k in _PARTS)]))
        improved = detached < best_loss  # no sync: False for NaN
        best_loss = torch.where(improved, detached, best_loss)
        best_image = torch.where(improved.reshape(-1, 1, 1, 1), x.detach(), best_image)
        # full_like launches a fill kernel; torch.tensor(n, device="cuda") would copy from the host and sync
        best_step = torch.where(improved, torch.full_like(best_step, state["evals"]), best_step)
        bar.update(1)
        report = state["evals"] % options.every == 0 or state["evals"] == options.steps
        if lbfgs or report:  # L-BFGS syncs on every evaluation anyway: check for NaN each time
            check(detached, parts, report)
        return scaled

    stopped = "done"
    try:
        with _keep_cpu_memory(x.device.type == "cpu"):
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
    if records and records[0].dim() == 2:
        return _split_batch(records, best_image, best_step, init, options, settings, state["evals"],
                            time.perf_counter() - start, stopped)
    history: dict[str, list[float]] = {"total": [], **{k: [] for k in _PARTS}}
    if records:
        for row in torch.stack(records).float().cpu().tolist():
            for key, value in zip(history, row):
                history[key].append(value)
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


# glibc's mallopt parameters (malloc.h), and what _keep_cpu_memory sets during and after a run.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_DURING_RUN = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))
_AFTER_RUN = ((_M_MMAP_MAX, 65536), (_M_MMAP_THRESHOLD, 32 * 2**20), (_M_TRIM_THRESHOLD, 64 * 2**20))
_memory_lock = threading.Lock()
_memory_users = 0


@functools.cache
def _glibc() -> Any:
    """The C library if it is glibc and the user has not tuned its malloc, else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None  # macOS, Windows, musl: their allocators are left alone
    if any(k.startswith("MALLOC_") for k in os.environ) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return None  # the user's own malloc settings win (and are the way to opt out)
    try:
        libc = ctypes.CDLL("libc.so.6")  # glibc's soname; find_library would run ldconfig
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


@contextlib.contextmanager
def _keep_cpu_memory(active: bool = True):
    """While a CPU run lasts, let glibc reuse freed memory instead of returning it to the system.

    Every step allocates and frees the same large buffers (at 512 px an early
    layer's responses are 50 MB). glibc serves blocks over 32 MB with mmap and
    unmaps them when freed, so each step the kernel maps and zero-fills fresh
    pages: 10 % of a 512 px step on the development machine, and most of its
    step-to-step noise (``benchmarks/RESULTS.md``). For the run, large blocks
    come from the heap (``M_MMAP_MAX = 0``) and freed memory stays there
    (``M_TRIM_THRESHOLD`` = 2 GiB, the largest mallopt takes). At the end
    ``malloc_trim`` hands the memory back.

    Note:
        This changes the allocator of the whole process, and not only while
        the run lasts: any mallopt call switches off glibc's sliding mmap and
        trim thresholds for good. After a run they are therefore set to where
        the sliding takes them in a torch process (mmap above 32 MiB, trim
        above 64 MiB) rather than to glibc's starting values (128 KiB), which
        would unmap every tensor over 128 KiB. Nested and concurrent runs (the
        lab's thread) share one setting; the last to finish restores it. Off
        glibc, or when ``MALLOC_*`` variables or ``GLIBC_TUNABLES=glibc.malloc...``
        are set (the way to opt out), nothing happens.
    """
    global _memory_users
    libc = _glibc() if active else None
    if libc is None:
        yield
        return
    with _memory_lock:
        if _memory_users == 0:
            for param, value in _DURING_RUN:
                libc.mallopt(param, value)
        _memory_users += 1
    try:
        yield
    finally:
        with _memory_lock:
            _memory_users -= 1
            if _memory_users == 0:
                for param, value in _AFTER_RUN:
                    libc.mallopt(param, value)
                libc.malloc_trim(0)


def _split_batch(records: list[Tensor], best_image: Tensor, best_step: Tensor, init: Tensor, options: Options,
                 settings: Any, evals: int, seconds: float, stopped: str) -> list[Result]:
    """One ``Result`` per image of a batched run (per-image losses)."""
    table = torch.stack(records).float().cpu()  # (T, 4, B)
    steps = best_step.cpu().tolist()
    results = []
    for b in range(table.shape[-1]):
        image = best_image[b:b + 1] if steps[b] else init[b:b + 1].detach()
        rows = table[:, :, b].T.tolist()  # total, content, style, tv
        sample_settings = settings[b] if isinstance(settings, list) else (settings or options.summary())
        results.append(Result(
            image=image.detach().clamp(0, 1).float().cpu(),
            history=dict(zip(("total", *_PARTS), rows)),
            steps=evals, seconds=seconds, settings=sample_settings, stopped=stopped, best_step=steps[b],
        ))
    return results


# ------------------------------------------------------------------ objectives


def _initial_image(init: str | Tensor, shape: Sequence[int], options: Options,
                   content: Tensor | None = None, style: Tensor | None = None) -> Tensor:
    if isinstance(init, Tensor):
        if init.dim() == 3:
            init = init.unsqueeze(0)
        return resize(init.float(), tuple(shape[-2:]))
    if init == "noise":
        generator = torch.Generator().manual_seed(options.seed)
        # Gaussian white noise around mid-grey. The paper does not give its strength; uniform
        # noise in [0, 1] (std 0.29) leaves pixel grain the deep layers never remove (notebook 01).
        return 0.5 + options.noise_std * torch.randn(tuple(shape), generator=generator)
    source = content if init == "content" else style
    if source is None:
        raise ValueError(f"init={init!r} needs a {init} image, which this task does not have; use 'noise'")
    return resize(source, tuple(shape[-2:]))


def _content_targets(vgg: VGG19Features, content: Tensor, layers: Sequence[str], precision: str) -> dict[str, Tensor]:
    """The content image's responses P at ``layers`` (eq. 1), computed once, kept in fp32."""
    with torch.no_grad(), _autocast(_device_of(vgg), precision):
        feats = vgg(content.to(_device_of(vgg)), layers)
    return {k: v.float() for k, v in feats.items()}


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
                    alpha: float | Tensor, beta: float | Tensor, layer_weights: Mapping[str, float | Tensor] | None,
                    precision: str, channels_last: bool = False, per_image: bool = False,
                    tv_weight: float = 0.0) -> Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]]:
    """The loss of eq. 7, plus ``alpha * tv_weight * total_variation``, as a function of the image.

    With ``per_image``, the losses come back per image, shape (B,), and alpha,
    beta and the layer weights may be (B,) tensors: a batch of independent
    problems sharing the targets (see ``transfer_batch``).
    """
    layers = list(dict.fromkeys([*content_targets, *style_targets]))
    device = _device_of(vgg)
    zero = torch.zeros((), device=device)

    def objective(image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        reduction = "none" if per_image else "sum"
        tv = alpha * tv_weight * total_variation(image, reduction) if tv_weight else torch.zeros_like(zero)
        if channels_last:  # NHWC: what cuDNN's tensor-core kernels want; the gradient comes back NCHW
            image = image.contiguous(memory_format=torch.channels_last)
        with _autocast(device, precision):
            feats = vgg(image, layers)
        if per_image:  # (B,) losses; layer weights may differ per image
            start = torch.zeros(image.shape[0], device=device)
            weights = layer_weights or {}  # per_image callers (transfer_batch) give every layer's (B,) weights
            content = sum((content_loss(feats[k].float(), p, reduction="none") for k, p in content_targets.items()),
                          start)
            style = sum((weights[k] * style_layer_loss(feats[k], a, reduction="none") for k, a in style_targets.items()),
                        start)
            tv = tv.expand_as(content)
            return alpha * content + beta * style + tv, {"content": alpha * content, "style": beta * style, "tv": tv}
        content = sum((content_loss(feats[k].float(), p) for k, p in content_targets.items()), zero)
        style = style_loss(feats, style_targets, layer_weights) if style_targets else zero
        total = total_loss(content, style, alpha, beta) + tv
        return total, {"content": alpha * content, "style": beta * style, "tv": tv}

    return objective


def _prepare_network(vgg: VGG19Features, options: Options) -> bool:
    """Switch on the device's fast paths; return whether to feed the network NHWC images.

    On CUDA: cuDNN autotuning (the image size is fixed for a whole run, so the
    search pays for itself within a few steps) and channels_last, the layout
    of cuDNN's bf16 tensor-core convolutions. On CPU channels_last too: oneDNN
    computes in a blocked channels-inner layout, and NHWC steps measured 0-8 %
    faster than NCHW from 128 to 512 px (``benchmarks/RESULTS.md``). Not on
    MPS, where it was not measured. The network's layout is set in place (the
    cached network is shared), to NHWC or back to NCHW as asked; the features
    agree to rounding (``tests/test_performance.py``).
    """
    device = _device_of(vgg)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    channels_last = options.channels_last if options.channels_last is not None else device.type in ("cuda", "cpu")
    layout = torch.channels_last if channels_last else torch.contiguous_format
    if not vgg.conv("conv1_2").weight.is_contiguous(memory_format=layout):
        vgg.to(memory_format=layout)
    return channels_last


def _check_weighting(alpha: float, beta: float, style_layers: Sequence[str],
                     layer_weights: Mapping[str, float] | None) -> None:
    """Clear errors for negative weights, unknown layers, and layer weights for layers not used."""
    check_weights([alpha, beta], "alpha and beta")
    check_layers(style_layers)
    if layer_weights is not None:
        check_weights(layer_weights.values(), "style layer weights")
        unknown = set(layer_weights) - set(style_layers)
        if unknown:
            raise ValueError(f"layer_weights names {sorted(unknown)}, which are not among style_layers {list(style_layers)}")


def _run(content: Tensor | None, style: Tensor | None, content_layers: Sequence[str],
         style_layers: Sequence[str], alpha: float, beta: float,
         layer_weights: Mapping[str, float] | None, out_shape: Sequence[int],
         options: Options, task: str, extra: dict[str, Any], tv_weight: float = 0.0) -> Result:
    _check_weighting(alpha, beta, style_layers, layer_weights)
    check_weights([tv_weight], "tv_weight")
    check_layers(content_layers)
    start = time.perf_counter()
    vgg = options.network()
    device = _device_of(vgg)
    channels_last = _prepare_network(vgg, options)
    hw = (int(out_shape[-2]), int(out_shape[-1]))
    content_targets = (
        _content_targets(vgg, content, content_layers, options.precision) if content is not None and content_layers else {}
    )
    style_targets = (
        _style_targets(vgg, style, style_layers, hw, options.precision) if style is not None and style_layers else {}
    )
    objective = _make_objective(vgg, content_targets, style_targets, alpha, beta, layer_weights, options.precision,
                                channels_last, tv_weight=tv_weight)
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
    beta: float | None = None,
    content_layer: str = "relu4_2",
    style_layers: Sequence[str] = STYLE_LAYERS,
    layer_weights: Mapping[str, float] | None = None,
    scales: Sequence[int] | None = None,
    scale_steps: Sequence[int] | None = None,
    tv_weight: float | None = None,
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
            ``beta=None``: balanced for the result's size, ``balance.default_beta``.
        content_layer: the paper's "conv4_2" is our ``relu4_2`` (rectified).
        style_layers: the paper's "conv1_1 .. conv5_1" are ``relu1_1 .. relu5_1``.
        layer_weights: ``{layer: w_l}``; default ``1/len(style_layers)``.
        scales: coarse-to-fine, e.g. ``(256, 512)``: long edges (px) of successive
            passes, each started from the previous result upsampled. Content and
            style are resized by the same factor, so brush strokes keep their size
            relative to the picture, and beta by the pass's share of the positions,
            so every pass has the final size's balance. The result has the last
            scale's size.
        scale_steps: evaluations per pass; default ``steps`` split evenly (the
            remainder to the last pass). A pass at half the size costs about a
            quarter, so (256, 512) with the default split takes ~5/8 of the
            time of ``steps`` evaluations at 512 px.
        tv_weight: weight of ``losses.total_variation`` per unit of alpha: the
            loss is ``alpha (L_content + tv_weight L_tv) + beta L_style``, so,
            as in eq. 7, scaling alpha and beta together changes nothing, and
            the weight holds at every size (L_tv and L_content both sum over
            positions). ``0`` gives the paper's eq. 7; ``None``: the default for
            the network (raw or normalised), ``balance.default_tv_weight``.
        **options: see ``Options`` (``init="content"`` starts from the photo).

    Note:
        Differs from the paper by default: a small total-variation term
        (``balance.DEFAULT_TV_WEIGHT``) removes the pixel-level grain the paper's loss
        does not see (notebook 04, ``benchmarks/PICTURES.md``); ``tv_weight=0``
        is the paper's loss. The right alpha/beta depends on the network's
        scale and the image size: ``balance``.
    """
    o = Options.from_kwargs(options)
    content_image = _as_batch(content_image, "content_image")
    style_image = _as_batch(style_image, "style_image")
    if beta is None:
        beta = default_beta(scales[-1] if scales else max(content_image.shape[-2:]), alpha)
    if tv_weight is None:
        tv_weight = _default_tv_weight(o)
    if scales is not None:
        return _coarse_to_fine(
            content_image, style_image, scales, scale_steps, o,
            lambda c, s, opts, positions: transfer(c, s, alpha, beta * positions, content_layer, style_layers,
                                                   layer_weights, tv_weight=tv_weight,
                                                   **{f.name: getattr(opts, f.name) for f in fields(opts)}),
        )
    return _run(content_image, style_image, [content_layer], list(style_layers), alpha, beta,
                layer_weights, content_image.shape, o, "transfer",
                {"alpha": alpha, "beta": beta, "content_layer": content_layer, "tv_weight": tv_weight,
                 "style_layers": list(style_layers), "layer_weights": layer_weights}, tv_weight)


def _default_tv_weight(options: Options) -> float:
    """The smoothing weight measured for the network these options use (``balance.default_tv_weight``)."""
    vgg = options.network()  # cached: the run itself gets the same object
    return default_tv_weight(vgg.normalized, vgg.preprocessing)


# ------------------------------------------------------------------ coarse-to-fine


def _scale_shape(image: Tensor, factor: float) -> tuple[int, int]:
    return max(1, round(image.shape[-2] * factor)), max(1, round(image.shape[-1] * factor))


def _coarse_to_fine(content: Tensor, style: Tensor, scales: Sequence[int], scale_steps: Sequence[int] | None,
                    options: Options, run: Callable[[Tensor, Tensor, Options, float], Result]) -> Result:
    """Run ``run`` at each of ``scales`` in turn, each pass starting from the previous result.

    ``run(content, style, options, positions)`` gets the pass's share of the
    final image's positions (1/4 for a pass at half size): ``transfer`` scales
    beta by it, so that every pass solves the final size's problem. The content
    loss (eq. 1) sums over positions and the style loss (eq. 4) does not, so at
    the same beta a half-size pass would weigh style four times more.

    Returns one ``Result``: the last pass's image, the passes' histories joined
    (losses of different sizes are not comparable: the content and style terms
    sum over positions), ``settings["scales"]`` and ``settings["scale_steps"]``.
    """
    scales = [int(size) for size in scales]
    if not scales or any(size < 1 for size in scales) or sorted(scales) != scales:
        raise ValueError(f"scales must be increasing long edges in px, e.g. (256, 512); got {scales}")
    if scale_steps is None:
        share = options.steps // len(scales)
        scale_steps = [share] * (len(scales) - 1) + [options.steps - share * (len(scales) - 1)]
    scale_steps = [int(n) for n in scale_steps]
    if len(scale_steps) != len(scales) or min(scale_steps) < 1:
        raise ValueError(f"scale_steps needs one positive count per scale {scales}; got {scale_steps}")
    start = time.perf_counter()
    long_edge = max(content.shape[-2:])
    history: dict[str, list[float]] = {"total": [], **{k: [] for k in _PARTS}}
    done: list[int] = []
    result: Result | None = None
    final_hw = _scale_shape(content, scales[-1] / long_edge)
    for size, steps in zip(scales, scale_steps):
        factor = size / long_edge
        init = options.init if result is None else result.image  # resized to this pass by _initial_image
        hw = _scale_shape(content, factor)
        result = run(resize(content, hw), resize(style, _scale_shape(style, factor)),
                     replace(options, steps=steps, init=init), hw[0] * hw[1] / (final_hw[0] * final_hw[1]))
        offset = sum(done)
        for key in history:
            history[key] += result.history[key]
        done.append(result.steps)
        if result.stopped != "done":
            break
    assert result is not None
    image = resize(result.image, final_hw).clamp(0, 1)  # only if a pass stopped early
    settings = {**result.settings, "scales": scales, "scale_steps": done, "size": list(final_hw)}
    return Result(image=image, history=history, steps=sum(done), seconds=time.perf_counter() - start,
                  settings=settings, stopped=result.stopped,
                  best_step=offset + result.best_step if result.best_step else 0)


# ------------------------------------------------------------------ batches


_BATCH_KEYS = ("alpha", "beta", "style_layers", "layer_weights")


def transfer_batch(
    content_image: Tensor,
    style_image: Tensor,
    runs: Sequence[Mapping[str, Any]],
    content_layer: str = "relu4_2",
    batch_size: int | None = None,
    tv_weight: float | None = None,
    **options: Any,
) -> list[Result]:
    """Many transfers of one photo and one painting that differ in alpha, beta or style layers.

    For the figures that need many independent runs of the same size (Fig. 3:
    style-layer subsets by alpha/beta ratios). With Adam, the runs are
    optimised together as one batch: the losses are summed over the batch
    (each image's gradient is its own), each image's loss is scaled by its own
    starting value, and Adam's update is per pixel, so each image follows
    exactly the path it would alone (up to float rounding). On a GPU one
    batch keeps the device busy where a single 256 px image does not; on a
    CPU the convolutions already run at the machine's limit, so it is about
    as fast as one after another.

    With L-BFGS the runs are done one after another (``transfer`` for each):
    L-BFGS keeps a curvature history and takes line-search steps for the whole
    parameter vector, so a batch would couple the images. Making it exact
    needs a history and a line search per image, each stopping at its own
    evaluation count; we keep it sequential instead.

    Args:
        content_image, style_image: as for ``transfer``.
        runs: one mapping per run with any of ``alpha``, ``beta``,
            ``style_layers``, ``layer_weights`` (defaults as in ``transfer``).
        content_layer: shared by all runs.
        batch_size: at most this many images per batch (memory); default all.
        tv_weight: the smoothing term, shared by all runs (as for ``transfer``).
        **options: see ``Options``; the same for all runs (same seed: the
            same starting noise for every run, as when run one by one). With
            a ``callback`` (a live preview) the runs go one by one too.

    Returns:
        One ``Result`` per run, in order; ``seconds`` is each run's share of
        its batch's wall time.
    """
    o = Options.from_kwargs(options)
    if tv_weight is None:
        tv_weight = _default_tv_weight(o)
    runs = [dict(run) for run in runs]
    for run in runs:
        unknown = sorted(set(run) - set(_BATCH_KEYS))
        if unknown:
            raise ValueError(f"Unknown run setting(s) {', '.join(unknown)}; use {', '.join(_BATCH_KEYS)}")
    if o.optimizer != "adam" or o.callback is not None:  # exact batching needs a separable optimiser
        return [transfer(content_image, style_image, content_layer=content_layer, tv_weight=tv_weight, **run, **options)
                for run in runs]
    content_image = _as_batch(content_image, "content_image")
    style_image = _as_batch(style_image, "style_image")
    size = batch_size or len(runs)
    results: list[Result] = []
    for first in range(0, len(runs), size):
        results += _transfer_chunk(content_image, style_image, runs[first:first + size], content_layer, o, tv_weight)
    return results


def _transfer_chunk(content: Tensor, style: Tensor, runs: list[dict[str, Any]], content_layer: str,
                    options: Options, tv_weight: float) -> list[Result]:
    start = time.perf_counter()
    settings = []
    shared = {**options.summary(), "size": list(content.shape[-2:]), "batched": len(runs)}
    for run in runs:
        run.setdefault("alpha", 1.0)
        run.setdefault("beta", default_beta(max(content.shape[-2:]), run["alpha"]))
        run["style_layers"] = list(run.get("style_layers", STYLE_LAYERS))
        _check_weighting(run["alpha"], run["beta"], run["style_layers"], run.get("layer_weights"))
        settings.append({"task": "transfer", "alpha": run["alpha"], "beta": run["beta"], "content_layer": content_layer,
                         "tv_weight": tv_weight,
                         "style_layers": run["style_layers"], "layer_weights": run.get("layer_weights"), **shared})
    vgg = options.network()
    device = _device_of(vgg)
    channels_last = _prepare_network(vgg, options)
    union = list(dict.fromkeys(layer for run in runs for layer in run["style_layers"]))
    weights = {}
    for layer in union:  # (B,): w_l of each run (checked above), 0 where a run does not use the layer
        column = [
            float((run.get("layer_weights") or {}).get(layer, 1.0 / len(run["style_layers"])))
            if layer in run["style_layers"] else 0.0
            for run in runs
        ]
        weights[layer] = torch.tensor(column, device=device)
    content_targets = _content_targets(vgg, content, [content_layer], options.precision)
    style_targets = _style_targets(vgg, style, union, tuple(content.shape[-2:]), options.precision)
    alpha = torch.tensor([float(run["alpha"]) for run in runs], device=device)
    beta = torch.tensor([float(run["beta"]) for run in runs], device=device)
    objective = _make_objective(vgg, content_targets, style_targets, alpha, beta, weights, options.precision,
                                channels_last, per_image=True, tv_weight=tv_weight)
    x0 = _initial_image(options.init, (1, *content.shape[1:]), options, content, style)
    x0 = x0.expand(len(runs), -1, -1, -1).contiguous().to(device)  # the same start for every run, as alone
    results = optimize_image(objective, x0, options, settings, description=f"transfer x{len(runs)}")
    assert isinstance(results, list)
    seconds = time.perf_counter() - start
    for result in results:
        result.seconds = seconds / len(runs)
    return results
