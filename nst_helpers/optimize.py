"""The optimisation loop: L-BFGS (the paper's choice) or Adam on the pixels of one image.

* ``Options``: the settings every task shares (steps, optimiser, start, network, precision, progress).
* ``optimize_image``: minimise an objective (``objective.objective``) from a start image; returns a
  ``Result`` with the lowest-loss image seen and the losses per evaluation.

The paper's three tasks (``tasks``) build an objective and call it.

How the image is kept in range: the pixels are optimised unconstrained and only
the returned image is clamped to [0, 1]. Clamping inside L-BFGS would make the
objective non-smooth and break its curvature estimates.

Robustness: L-BFGS uses a strong-Wolfe line search, and the objective is
divided by its value at the start (a constant, so the minimiser is unchanged),
so that the optimiser's tolerances mean the same thing for every network,
pooling and alpha/beta. A loss that becomes NaN/inf or grows a million-fold
stops the run with a warning; Ctrl-C stops it too. In every case the best image
found so far is returned.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import Tensor

from .features import VGG19Features, pick_device
from .speed import cached_network, device_of, run_settings

__all__ = ["Options", "Progress", "Result", "optimize_image", "progress_bar"]


#: The convergence test's window (``Options.tol``): the best loss now against the best this many evaluations ago.
WINDOW = 20
#: What running out of device memory raises: ``torch.OutOfMemoryError`` from torch 2.5, the CUDA one before.
_OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


@dataclass(frozen=True)
class Options:
    """Settings shared by the three tasks (``tasks``): each task takes them as keywords."""

    steps: int = 300  # most loss+gradient evaluations; the paper does not say, 300 L-BFGS evals converge at 256 px (measured); a transfer's recipe sets its own
    tol: float = 0.0  # stop once the best loss fell by less than this fraction in the last WINDOW evaluations; 0: all steps
    optimizer: str = "lbfgs"  # the paper: L-BFGS (2016, Sec. 2.3); or "adam"
    lr: float | None = None  # None: 1.0 for L-BFGS (line search picks the step), 0.02 for Adam (pixels in [0, 1])
    init: str | Tensor = "noise"  # the paper starts from white noise (Fig. 1, 2); or "content", "style", a tensor
    seed: int = 0  # white-noise seed: same seed, same picture (on CUDA to rounding: speed.run_settings)
    network: VGG19Features | None = None  # None: raw Caffe VGG-19, avg pooling (2015, Methods), on CUDA/MPS/CPU
    precision: str = "auto"  # "fp32", "bf16" (autocast features, fp32 losses), "auto": bf16 where native (speed)
    callback: Callable[[Progress], bool | None] | None = None  # called every `every` evals; True stops
    every: int = 10  # how often the callback runs and the progress bar shows losses
    progress: bool = True  # tqdm bar

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
        if not 0 <= self.tol < 1:
            raise ValueError(f"tol must be in [0, 1), a fraction of the loss, got {self.tol}; 0 runs every step")
        if self.every < 1:
            raise ValueError(f"every must be at least 1, got {self.every}")

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> Options:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"Unknown option(s) {', '.join(unknown)}; the options are {', '.join(sorted(known))}")
        return cls(**kwargs)

    def vgg(self) -> VGG19Features:
        """The network runs use: ``network``, else the paper's (loaded once per process, ``speed.cached_network``).

        Another network is one argument away: ``network=load_vgg19(pooling="max")``, ``load_vgg19(normalize=True)``
        (the paper's rescaled one), ``load_vgg19("torchvision")``, ``load_vgg19(device="cpu")``.
        """
        if self.network is not None:
            return self.network
        return cached_network("caffe", "avg", str(pick_device(None)), False)

    def summary(self) -> dict[str, Any]:
        """The settings as plain values, for ``Result.settings``."""
        # Not dataclasses.asdict: it deep-copies the callback (a bound method holding a lock fails).
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("callback", "network", "init")}
        out["init"] = self.init if isinstance(self.init, str) else "tensor"
        vgg = self.vgg()
        out.update(weights=vgg.weights, pooling=vgg.pooling, normalize=vgg.normalized, device=str(device_of(vgg)))
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
        history: per evaluation, ``{"total": [...], "content": [...], "style": [...]}`` and one list per extra
            term (``"tv"``: ``smoothing``), in the paper's units (alpha, beta and the terms' weights applied).
        steps: evaluations done.
        seconds: wall time of the optimisation (targets and setup included).
        settings: everything needed to run it again.
        stopped: ``"done"`` (all steps), ``"converged"`` (``Options.tol``), or why it ended early:
            ``"interrupted"``, ``"diverged"``, ``"stopped"`` (callback), ``"out of memory"``.
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
    settings: dict[str, Any] | None = None,
    description: str = "optimising",
) -> Result:
    """Minimise ``objective`` over the pixels of an image, starting from ``init``.

    Args:
        objective: image (B, 3, H, W) -> (total loss, {"content": ..., "style": ..., ...}),
            scalar tensors in the paper's units (weights applied), the same parts at every call.
        init: the starting image, (B, 3, H, W).
        options: optimiser, steps, callback, progress bar.
        settings: recorded in the result (defaults to ``options.summary()``).
        description: the progress bar's label.

    Returns:
        A ``Result`` with the lowest-loss image seen; never raises for
        divergence or Ctrl-C (it warns and returns the best image so far).

    Note:
        Host-device syncs: Adam runs without any until every ``every``-th
        evaluation (losses stay on the device and are copied once at the end).
        L-BFGS reads the loss as a Python float at every evaluation (its line
        search branches on it), so it syncs once per evaluation by design.
    """
    start = time.perf_counter()
    x = init.detach().clone().requires_grad_(True)
    best_loss = torch.tensor(math.inf, device=x.device)
    best_image = x.detach().clone()
    best_step = torch.tensor(0, device=x.device)
    records: list[Tensor] = []  # (1 + parts,) per evaluation: total, then the parts; synced once at the end
    parts_seen: list[str] = []
    state: dict[str, Any] = {"evals": 0, "scale": None, "first": None}
    bests: list[tuple[int, float]] = []  # (evaluation, best loss) at each check, for the convergence test
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
        value = float(total)  # the one host-device sync, every `every` evaluations
        if not math.isfinite(value) or abs(value) > 1e6 * max(state["first"], 1e-30):
            raise _Stop("diverged")
        if options.tol:
            best = float(best_loss)
            bests.append((state["evals"], best))
            before = [b for e, b in bests if e <= state["evals"] - WINDOW]
            if before and before[-1] - best <= options.tol * abs(best):
                raise _Stop("converged")
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
            parts_seen.extend(parts)
        scaled = total / state["scale"]
        scaled.backward()
        state["evals"] += 1
        detached = total.detach()
        if state["first"] is None:  # the divergence check's baseline: the first evaluation, for every optimiser
            state["first"] = abs(float(detached))
        records.append(torch.stack([detached, *(parts[k].detach() for k in parts_seen)]))
        improved = detached < best_loss  # no sync: False for NaN
        best_loss = torch.where(improved, detached, best_loss)
        best_image = torch.where(improved, x.detach(), best_image)
        # full_like launches a fill kernel; torch.tensor(n, device="cuda") would copy from the host and sync
        best_step = torch.where(improved, torch.full_like(best_step, state["evals"]), best_step)
        bar.update(1)
        report = state["evals"] % options.every == 0 or state["evals"] == options.steps
        if lbfgs or report:  # L-BFGS syncs on every evaluation anyway: check for NaN (and convergence) each time
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
                "Use a smaller size (e.g. size=256), fewer style layers, or network=load_vgg19(device='cpu')."
            ) from err
        stopped = "out of memory"
    finally:
        bar.close()
    if stopped not in ("done", "converged", "stopped"):
        warnings.warn(
            f"Optimisation {stopped} after {state['evals']} of {options.steps} steps; "
            "returning the best image so far", RuntimeWarning, stacklevel=_outside_the_package(),
        )
    history: dict[str, list[float]] = {"total": [], **{k: [] for k in parts_seen}}
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
