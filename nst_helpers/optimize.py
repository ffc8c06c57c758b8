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

import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch
from torch import Tensor

from .balance import default_beta, default_init, default_tv_weight
from .color import check_mode, luminance, match_colors, match_luminance, with_chroma_of
from .features import STYLE_LAYERS, VGG19Features, check_layers, pick_device
from .images import as_batch
from .losses import check_weights, flat_regions
from .memory import check_fits
from .objective import (
    NOISE_STD,
    all_style_targets,
    check_weighting,
    content_targets,
    initial_image,
    objective,
    statistic_scale,
    style_targets,
    term_scales,
)
from .speed import cached_network, device_of, prepare_network, run_settings
from .style_statistics import check_statistic

__all__ = [
    "Options",
    "Progress",
    "Result",
    "optimize_image",
    "reconstruct_content",
    "synthesize_texture",
    "progress_bar",
    "transfer",
]


#: What running out of device memory raises: ``torch.OutOfMemoryError`` from torch 2.5, the CUDA one before.
_OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)

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
    seed: int = 0  # white-noise seed: same seed, same picture (on CUDA to rounding: speed.run_settings)
    noise_std: float = NOISE_STD  # white noise N(0.5, std^2); louder noise leaves grain deep layers ignore (notebook 01)
    pooling: str = "avg"  # the paper: average pooling for synthesis (2015, Methods)
    weights: str = "caffe"  # the paper's network: the original Caffe VGG-19
    normalize: bool = False  # the paper's rescaled network (mean activation one per filter)
    device: str | torch.device | None = None  # None: CUDA, else MPS, else CPU
    precision: str = "auto"  # "fp32", "bf16" (autocast features, fp32 losses), "auto": bf16 where native (speed)
    callback: Callable[[Progress], bool | None] | None = None  # called every `every` evals; True stops
    every: int = 10  # how often the callback runs and the progress bar shows losses
    progress: bool = True  # tqdm bar
    extractor: VGG19Features | None = None  # a ready network; overrides weights/pooling/normalize/device

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}; None gives the optimiser's default")
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
        return cached_network(self.weights, self.pooling, str(pick_device(self.device)), self.normalize)

    def run_device(self) -> torch.device:
        """Where runs with these options compute: the given network's device, else ``pick_device(device)``."""
        return pick_device(self.device) if self.extractor is None else device_of(self.extractor)

    def summary(self) -> dict[str, Any]:
        """The settings as plain values, for ``Result.settings``."""
        # Not dataclasses.asdict: it deep-copies the callback (a bound method holding a lock fails).
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("callback", "extractor", "init")}
        out["init"] = self.init if isinstance(self.init, str) else "tensor"
        out["device"] = str(self.run_device())
        return out


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


def _outside_the_package() -> int:
    """The ``stacklevel`` that makes a warning from ``optimize_image`` point at the user's call, not into the package."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(2), 2  # 1 is optimize_image itself
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package + os.sep):
        frame, level = frame.f_back, level + 1
    return level


class _Stop(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def optimize_image(
    objective: Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]],
    init: Tensor,
    options: Options,
    settings: dict[str, Any] | list[dict[str, Any]] | None = None,
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
            a list of one dict per image for per-image losses: then a list of results
            comes back even when the run stopped before its first evaluation.
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
            [x], lr=1.0 if options.lr is None else options.lr, max_iter=options.steps, max_eval=options.steps + 25,
            tolerance_grad=0.0, tolerance_change=0.0, history_size=100, line_search_fn="strong_wolfe",
        )
    else:
        optimizer = torch.optim.Adam([x], lr=0.02 if options.lr is None else options.lr)
    bar = progress_bar(options.steps, description, options.progress, leave=False)

    def check(total: Tensor, parts: dict[str, Tensor], report: bool) -> None:
        value = float(total.sum())  # the one host-device sync, every `every` evaluations
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
        if state["first"] is None:  # the divergence check's baseline: the first evaluation, for every optimiser
            state["first"] = abs(float(detached.sum()))
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
        with run_settings(x.device):
            while state["evals"] < options.steps:
                before = state["evals"]
                optimizer.step(closure)
                if state["evals"] == before:  # L-BFGS converged exactly: nothing left to do
                    break
    except _Stop as stop:
        stopped = stop.reason
    except KeyboardInterrupt:
        stopped = "interrupted"
    except _OUT_OF_MEMORY as err:
        if state["evals"] == 0:
            raise MemoryError(
                f"Out of memory on {x.device} for a {x.shape[-1]}x{x.shape[-2]} image ({err}). "
                "Use a smaller size (e.g. size=256), fewer style layers, or device='cpu'."
            ) from err
        stopped = "out of memory"
    finally:
        bar.close()
    if stopped not in ("done", "stopped"):
        warnings.warn(
            f"Optimisation {stopped} after {state['evals']} of {options.steps} steps; "
            "returning the best image so far", RuntimeWarning, stacklevel=_outside_the_package(),
        )
    if isinstance(settings, list) or (records and records[0].dim() == 2):  # per-image losses: a Result per image
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


def _split_batch(records: list[Tensor], best_image: Tensor, best_step: Tensor, init: Tensor, options: Options,
                 settings: Any, evals: int, seconds: float, stopped: str) -> list[Result]:
    """One ``Result`` per image of a batched run (per-image losses)."""
    table = torch.stack(records).float().cpu() if records else torch.zeros(0, 4, init.shape[0])  # (T, 4, B)
    steps = best_step.expand(init.shape[0]).cpu().tolist()  # () when no evaluation was done
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


def _run(content: Tensor | None, style: Tensor | Sequence[Tensor] | None, content_layers: Sequence[str],
         style_layers: Sequence[str], alpha: float, beta: float,
         layer_weights: Mapping[str, float] | None, out_shape: Sequence[int],
         options: Options, task: str, extra: dict[str, Any], tv_weight: float = 0.0,
         statistic: str = "gram", style_weights: Sequence[float] | None = None,
         masks: Sequence[Tensor] | None = None, scale_split: str | None = None,
         tv_map: Tensor | None = None) -> Result:
    check_weighting(alpha, beta, style_layers, layer_weights)
    check_statistic(statistic)
    check_weights([tv_weight], "tv_weight")
    check_layers(content_layers)
    hw = (int(out_shape[-2]), int(out_shape[-1]))
    check_fits(*hw, device=options.run_device(), optimizer=options.optimizer, batch=int(out_shape[0]),  # before any work
               content_layer=content_layers[0] if content_layers else None, style_layers=style_layers)
    start = time.perf_counter()
    vgg = options.network()
    channels_last = prepare_network(vgg)  # speed only
    p = content_targets(vgg, content, content_layers, options.precision) if content is not None and content_layers else {}
    a = all_style_targets(vgg, style, style_layers, hw, options.precision, statistic, style_weights, masks, scale_split)
    several = style is not None and not isinstance(style, Tensor)
    first = style[0] if several else style  # init="style" starts from the first painting
    x0 = initial_image(options.init, out_shape, options.seed, options.noise_std, content, first).to(device_of(vgg))
    scale = 1.0
    if statistic != "gram" and p and a:  # beta in the Gram's units, so that alpha/beta keeps its meaning
        grams = style_targets(vgg, style, style_layers, hw, options.precision)
        scale = statistic_scale(vgg, x0, grams, a, statistic, layer_weights)
    loss = objective(vgg, p, a, alpha, beta * scale, layer_weights, options.precision, channels_last,
                     tv_weight=tv_weight, statistic=statistic, guided=masks is not None,
                     tv_map=None if tv_map is None else tv_map.to(device_of(vgg)))
    settings = {"task": task, **extra, **options.summary(), "size": list(hw)}
    if scale != 1.0:
        settings["style_scale"] = scale
    result = optimize_image(loss, x0, options, settings, description=task)
    result.seconds = time.perf_counter() - start
    return result


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
    image = as_batch(image, "image")
    return _run(image, None, [layer], [], 1.0, 0.0, None, image.shape, o,
                "reconstruct_content", {"layer": layer})


def synthesize_texture(
    style_image: Tensor,
    layers: Sequence[str] = STYLE_LAYERS,
    layer_weights: Mapping[str, float] | None = None,
    size: tuple[int, int] | None = None,
    style_statistic: str = "gram",
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
        style_statistic: what is matched at each layer: ``"gram"`` (eq. 4, the paper), or
            ``"mean_std"``, ``"mmd_linear"``, ``"sliced_w2"`` (``style_statistics``, notebook 06).
        **options: see ``Options``.
    """
    o = Options.from_kwargs(options)
    style_image = as_batch(style_image, "style_image")
    if isinstance(layers, str) or not list(layers):
        raise ValueError(f"layers must be a list of style layers, e.g. {list(STYLE_LAYERS)}; got {layers!r}")
    shape = (1, 3, *(size or style_image.shape[-2:]))
    return _run(None, style_image, [], list(layers), 0.0, 1.0, layer_weights, shape, o,
                "synthesize_texture", {"layers": list(layers), "layer_weights": layer_weights,
                                       "style_statistic": style_statistic}, statistic=style_statistic)


def transfer(
    content_image: Tensor,
    style_image: Tensor | Sequence[Tensor],
    alpha: float = 1.0,
    beta: float | None = None,
    content_layer: str = "relu4_2",
    style_layers: Sequence[str] = STYLE_LAYERS,
    layer_weights: Mapping[str, float] | None = None,
    tv_weight: float | None = None,
    style_statistic: str = "gram",
    preserve_color: str | None = None,
    style_weights: Sequence[float] | None = None,
    masks: Sequence[Tensor] | None = None,
    scale_split: str | None = None,
    content_colors: str = "photo",
    flat_smoothing: float = 0.0,
    **options: Any,
) -> Result:
    """Render ``content_image`` in the style of ``style_image`` (eq. 7, Fig. 2).

    Minimises ``alpha L_content + beta L_style``. The result has the content
    image's size; the style image may differ in size and aspect (its Grams are
    rescaled per position, see ``losses.rescale_gram``).

    Args:
        content_image: the photo, (1, 3, H, W) in [0, 1].
        style_image: the painting, (1, 3, H', W') in [0, 1], or a list of paintings to blend.
        alpha, beta: weights of content and style (eq. 7); only alpha/beta matters.
            ``beta=None``: balanced for the result's size, start and network, ``balance.default_beta``
            with the network's ``objective.term_scales``.
        content_layer: the paper's "conv4_2" is our ``relu4_2`` (rectified).
        style_layers: the paper's "conv1_1 .. conv5_1" are ``relu1_1 .. relu5_1``.
        layer_weights: ``{layer: w_l}``; default ``1/len(style_layers)``.
        tv_weight: weight of ``losses.total_variation`` per unit of alpha: the
            loss is ``alpha (L_content + tv_weight L_tv) + beta L_style``, so,
            as in eq. 7, scaling alpha and beta together changes nothing, and
            the weight holds at every size (L_tv and L_content both sum over
            positions). ``0`` gives the paper's eq. 7; ``None``: the default for
            the network, ``balance.default_tv_weight`` (measured as for beta).
        style_statistic: ``"gram"`` (eq. 4) or another statistic of ``style_statistics``.
            Another statistic's term is scaled to equal the Gram's at the start image
            (``objective.statistic_scale``, recorded as ``settings["style_scale"]``), so the
            same alpha/beta gives a comparable balance with every statistic.
        preserve_color: ``None`` (the paper: the painting's colours), ``"luminance"`` (style
            on the luminance only, the photo's chroma kept) or ``"histogram"`` (the painting's
            colours first mapped to the photo's mean and covariance): Gatys et al. 2017, ``color``.
        style_weights: with several paintings, their shares (normalised to sum 1; default
            equal): the targets are the weighted mean of their Gram matrices, which is the
            weighted sum of their style losses up to a constant (``objective.blended_style_targets``).
        masks: spatial control, one (H, W) mask in [0, 1] over the result per painting, together
            covering it: painting r is matched where its mask is (guided Grams, ``control``).
        scale_split: scale control with two paintings ``[fine, coarse]``: the style layers up to
            this one (e.g. ``"relu3_1"``) take the first painting's Grams, the deeper ones the second's.
        content_colors: ``"photo"`` (the paper: P^l of eq. 1 is the photo's), or ``"painting"``: P^l
            is the photo's after its colours are mapped to the painting's mean and covariance
            (``color.match_colors``, the 2017 colour transfer the other way round). The style term
            then no longer has to fight the content term over the colour of flat regions (Fig. 3).
        flat_smoothing: ``k``: the smoothing term counts ``1 + k`` times where the photo is flat
            (``losses.flat_regions``: the sky), against the lattice of specks that content-heavy
            transfers leave there (``figures``, Fig. 3); 0: the same smoothing everywhere.
        **options: see ``Options``. ``init`` defaults to ``balance.default_init``: the
            paper's white noise from 256 px up, the photo below (too small for noise).
            Coarse-to-fine passes: ``runs.coarse_to_fine``.

    Note:
        Differs from the paper by default: a small total-variation term
        (``balance.DEFAULT_TV_WEIGHT``) removes the pixel-level grain the paper's loss
        does not see (notebook 04, ``benchmarks/PICTURES.md``); ``tv_weight=0``
        is the paper's loss. The right alpha/beta depends on the network's
        scale and the image size: ``balance``.
    """
    photo = content_image = as_batch(content_image, "content_image")
    several = not isinstance(style_image, Tensor)
    styles = [as_batch(image, "style_image") for image in (style_image if several else [style_image])]
    if style_weights is not None and not several and masks is None:
        raise ValueError("style_weights needs a list of paintings: transfer(photo, [painting_a, painting_b], "
                         "style_weights=[0.7, 0.3])")
    if content_colors not in ("photo", "painting"):
        raise ValueError(f"Unknown content_colors {content_colors!r}; use 'photo' (the paper) or 'painting'")
    if content_colors == "painting" and (several or preserve_color is not None):
        raise ValueError("content_colors='painting' recolours the photo to one painting's colours: give one "
                         "painting and no preserve_color (which keeps the photo's colours instead)")
    check_weights([flat_smoothing], "flat_smoothing")
    size = max(content_image.shape[-2:])
    o = Options.from_kwargs({"init": default_init(size), **options})
    if check_mode(preserve_color) == "histogram":
        styles = [match_colors(image, content_image).clamp(0, 1) for image in styles]
    elif preserve_color == "luminance":  # the transfer runs on grey images; the photo's chroma comes back at the end
        content_image, styles = luminance(photo), [match_luminance(image, photo) for image in styles]
        if isinstance(o.init, Tensor):
            o = replace(o, init=luminance(as_batch(o.init, "init")))
    check_weighting(alpha, 0.0 if beta is None else beta, list(style_layers), layer_weights)  # before any work
    if beta is None or tv_weight is None:  # the defaults were chosen for the raw Caffe VGG-19: carried to this one
        scales = term_scales(o.network(), content_image, styles[0], content_layer, list(style_layers), layer_weights,
                             o.seed)
        beta = default_beta(size, alpha, o.init, scales) if beta is None else beta
        tv_weight = default_tv_weight(scales[0]) if tv_weight is None else tv_weight
    if flat_smoothing and not tv_weight:
        raise ValueError("flat_smoothing multiplies the smoothing term where the photo is flat; it needs "
                         "tv_weight > 0 (tv_weight=None gives the network's default)")
    tv_map = 1 + flat_smoothing * flat_regions(photo) if flat_smoothing else None
    if content_colors == "painting":
        content_image = match_colors(content_image, styles[0]).clamp(0, 1)
    result = _run(content_image, styles if several else styles[0], [content_layer], list(style_layers), alpha, beta,
                  layer_weights, content_image.shape, o, "transfer",
                  {"alpha": alpha, "beta": beta, "content_layer": content_layer, "tv_weight": tv_weight,
                   "style_layers": list(style_layers), "layer_weights": layer_weights,
                   "style_statistic": style_statistic, "preserve_color": preserve_color,
                   "style_weights": None if style_weights is None else list(style_weights),
                   "masks": masks is not None, "scale_split": scale_split,
                   "content_colors": content_colors, "flat_smoothing": flat_smoothing},
                  tv_weight, style_statistic, style_weights, masks, scale_split, tv_map)
    if preserve_color == "luminance":
        result.image = with_chroma_of(result.image, photo)
    return result
