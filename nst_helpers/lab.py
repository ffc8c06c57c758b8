"""The lab's runs without its widgets: settings, the run in a background thread, stop, history.

``StyleLab`` (``widgets``) is the screen; this module is what it runs. A
``LabRunner`` takes ``LabSettings`` (one run's settings, checked with a
``LabError`` that says what to change), runs ``tasks.transfer`` and keeps
every finished run as a ``LabRun``. It reports to a view through five methods
(``started``, ``progressed``, ``finished``, ``failed``, ``idle``), so it can be
driven and tested without a browser.

Why a background thread: the optimisation runs in a ``threading.Thread``, while
the kernel's main thread stays free. The kernel processes the browser's widget
messages (the Stop button's click, a slider moved) on its main loop, so a run
on the main thread would only see the Stop click after it had finished. The
engine calls the runner's callback at every evaluation from the worker thread;
the callback hands the progress to the view (widget updates sent from a thread
reach the browser, checked in JupyterLab 4 with ipywidgets 8) and returns True
once Stop was pressed, which makes the engine stop and return the best image so
far. An asyncio loop would need the engine to yield between steps, which
L-BFGS's closure does not.

Only one run at a time: ``LabRunner.start`` refuses a second run under a lock,
whatever calls it.
"""

from __future__ import annotations

import os
import re
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor

from .balance import DEFAULT_TV_WEIGHT, Preset, balanced_ratio
from .color import KeepColors
from .control import Blend, Guided
from .features import LAYER_NAMES, STYLE_LAYERS, min_size, paper_name, pick_device
from .images import load_image
from .objective import Extra, Style
from .optimize import Progress, Result
from .smoothing import Smoothing
from .speed import cached_network
from .style_statistics import Statistic
from .tasks import transfer

__all__ = ["LabError", "LabRun", "LabRunner", "LabSettings", "LabView", "lab_preset"]


def lab_preset(device: str | torch.device | None = None, smoke: bool | None = None) -> Preset:
    """The lab's default size and steps for ``device`` (None: the best available).

    ``smoke`` (default: ``NST_SMOKE=1`` in the environment) gives a tiny run for tests.
    """
    device = pick_device(device)
    if smoke is None:
        smoke = os.environ.get("NST_SMOKE") == "1"
    if smoke:
        return Preset(32, 3, "smoke", "quick")  # relu5_1 needs >= 16 px per side: 32x24 is enough
    if device.type == "cuda":
        return Preset(512, 300, "gpu")  # the paper's 512 px; 300 evaluations (Options.steps), fewer than the notebooks' 500: many short runs
    if device.type == "mps":
        return Preset(256, 150, "mps")
    # the quick recipe (from the photo, balance.RECIPES): 192 px, 60 evaluations, ~6 s on 2 cores (bf16, measured)
    return Preset(192, 60, "cpu", "quick")


@dataclass(frozen=True)
class LabSettings:
    """One run's settings, as read from the controls."""

    content: str = "tubingen"  # a sample name or "upload:NAME"
    style: str = "starry_night"
    ratio: float = balanced_ratio(256)  # alpha/beta balanced at 256 px (measured; nst_helpers.balance)
    content_layer: str = "relu4_2"  # the paper's conv4_2 (rectified)
    style_layers: tuple[str, ...] = STYLE_LAYERS  # the paper's conv1_1 .. conv5_1
    layer_weights: tuple[float, ...] = (1.0,) * 5  # relative w_l, one per style layer; normalised to sum 1
    pooling: str = "avg"  # the paper's choice for synthesis
    init: str = "noise"  # the paper starts from white noise
    optimizer: str = "lbfgs"  # the paper's L-BFGS
    size: int = 256
    steps: int = 300  # as optimize.Options
    seed: int = 0
    tv_weight: float = DEFAULT_TV_WEIGHT  # smoothness term against grain (not in the paper; 0: the paper's loss)
    statistic: str = "gram"  # what the style layers match: the paper's Gram (eq. 4) or another (notebook 06)
    preserve_color: str | None = None  # keep the photo's colours: "luminance" or "histogram" (Gatys et al. 2017)
    second_style: str | None = None  # a second painting (notebook 07), blended in or on the bottom half
    second_share: float = 0.5  # the second painting's share of the style term when blended
    second_where: str = "blend"  # "blend": both everywhere; "halves": the first above, the second below

    def transfer_kwargs(self) -> dict:
        """Keyword arguments for ``tasks.transfer``, but the painting and the network (``style_term``, the runner).

        Note: the weights are normalised to sum 1, so the default (all equal)
        is the paper's w_l = 1/N and the overall style weight does not change
        when layers are switched on or off.
        """
        total = sum(self.layer_weights)
        extras: list[Extra] = [Smoothing(self.tv_weight)] if self.tv_weight else []
        extras += [KeepColors(self.preserve_color)] if self.preserve_color else []
        return {
            "alpha": self.ratio, "beta": 1.0, "content_layer": self.content_layer,
            "style_layers": list(self.style_layers),
            "layer_weights": {k: v / total for k, v in zip(self.style_layers, self.layer_weights, strict=True)},
            "extras": extras, "init": self.init, "optimizer": self.optimizer, "steps": self.steps, "seed": self.seed,
            "recipe": "paper",  # one pass at the chosen size; the start and the balance are the controls'
        }

    def style_term(self, first: Tensor, second: Tensor | None, hw: tuple[int, int]) -> Tensor | Style:
        """What ``transfer`` takes for the painting(s) of a result of ``hw`` pixels: one painting, another statistic
        of it, or two paintings blended or one on each half (``control``)."""
        if second is None:
            return first if self.statistic == "gram" else Statistic(first, self.statistic)
        if self.statistic != "gram":
            raise LabError("A second painting works with the Gram matrix only: set the statistic back to gram, "
                           "or remove the second painting.")
        if not 0 <= self.second_share <= 1:
            raise LabError(f"The second painting's share must be between 0 and 1, not {self.second_share}.")
        if self.second_where == "halves":
            top = torch.zeros(hw)
            top[: hw[0] // 2] = 1
            return Guided([first, second], [top, 1 - top])
        return Blend([first, second], [1 - self.second_share, self.second_share])

    def check(self) -> None:
        """A ``LabError`` saying what to change if these settings cannot run."""
        if not self.style_layers:
            raise LabError("No style layer is selected, but β > 0 asks for a style loss: switch on at least "
                           "one of conv1_1 … conv5_1 under Layers.")
        if len(self.layer_weights) != len(self.style_layers):
            raise LabError(f"{len(self.layer_weights)} layer weights for {len(self.style_layers)} style layers: "
                           "give one weight per selected layer.")
        if sum(self.layer_weights) <= 0:
            raise LabError("All selected style layers have weight 0: give at least one a positive weight.")

    def check_sizes(self, content: Tensor, style: Tensor) -> None:
        """A ``LabError`` if an image is too small for the deepest layer used."""
        for name, image, layers in (("content", content, [self.content_layer, *self.style_layers]),
                                    ("style", style, self.style_layers)):
            deepest = max(layers, key=LAYER_NAMES.index)
            need = min_size(deepest)
            h, w_ = image.shape[-2:]
            if min(h, w_) < need:
                raise LabError(f"At {self.size} px the {name} image is {w_}x{h} px, too small for "
                               f"{paper_name(deepest)} ({deepest}), which needs at least {need} px on each "
                               "side: choose a larger size or switch off the deepest layers.")

    def describe(self) -> list[str]:
        """Short lines for a history caption."""
        k = len(self.style_layers)
        layers = (f"conv1_1 … conv{k}_1" if k > 1 and self.style_layers == STYLE_LAYERS[:k]
                  else ", ".join(map(paper_name, self.style_layers)))
        weights = "" if len(set(self.layer_weights)) <= 1 else " w " + ":".join(f"{v:g}" for v in self.layer_weights)
        pre = " (pre-ReLU)" if self.content_layer.startswith("conv") else ""
        return [
            f"α/β = {self.ratio:.1e}",
            f"{_short(self.content)} in the style of {_short(self.style)}",
            f"content {paper_name(self.content_layer)}{pre}",
            f"style {layers}{weights}" + ("" if self.statistic == "gram" else f" · {self.statistic}"),
            *([] if self.second_style is None else [
                f"+ {_short(self.second_style)} " + ("below" if self.second_where == "halves" else f"{self.second_share:.0%}")]),
            *([] if self.preserve_color is None else [f"photo's colours kept ({self.preserve_color})"]),
            f"{self.pooling} pool · {self.init} init · {'L-BFGS' if self.optimizer == 'lbfgs' else 'Adam'}",
            f"{self.size} px · {self.steps} steps · seed {self.seed}",
            "the paper's loss (no TV)" if self.tv_weight == 0 else f"smoothness (TV) {self.tv_weight:.1e}",
        ]


def _short(source: str) -> str:
    return source.removeprefix("upload:")


@dataclass
class LabRun:
    """One finished run in the history strip."""

    number: int
    settings: LabSettings
    result: Result
    saved: Path | None = field(default=None)

    @property
    def filename(self) -> str:
        stem = f"lab{self.number:02d}_{_short(self.settings.content)}_{_short(self.settings.style)}"
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{stem}_ratio{self.settings.ratio:.0e}") + ".png"


class LabError(ValueError):
    """A combination of settings the lab cannot run; the message says what to change."""


class LabView(Protocol):
    """What a ``LabRunner`` tells its screen; each is called from the worker thread except ``started``."""

    def started(self, settings: LabSettings) -> None: ...  # on the caller's thread, before the run starts
    def progressed(self, progress: Progress, live: dict[str, list], seconds: float, draw: bool) -> None: ...
    def finished(self, run: LabRun) -> None: ...
    def failed(self, message: str, kind: str) -> None: ...  # kind: "warning" (settings) or "error" (a fault)
    def idle(self) -> None: ...  # the run is over, whatever happened


class LabRunner:
    """The lab's transfers, one at a time, each in a background thread; no widgets.

    Args:
        view: told about each run (``LabView``).
        weights, device: the network's (``load_vgg19``); "random" makes tests fast.
        refresh_s: least time between two redraws the view is asked for (``draw``).
        source: turns a settings' image name into what ``load_image`` takes (uploads).
    """

    def __init__(self, view: LabView, weights: str = "caffe", device: str | torch.device | None = None,
                 refresh_s: float = 0.5, source: Callable[[str], str | Path] = lambda key: key) -> None:
        self.view = view
        self.weights = weights
        self.device = pick_device(device)
        self.refresh_s = refresh_s
        self.source = source
        self.history: list[LabRun] = []
        self.last_error: str | None = None  # the traceback of the last failed run, for debugging
        self.waits_for: threading.Thread | None = None  # e.g. a warm-up loading the network: runs start after it
        self._lock = threading.Lock()
        self._running = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: dict[str, list] = {}
        self._started = self._last_draw = 0.0

    @property
    def running(self) -> bool:
        """True while a run is going."""
        return self._running

    def start(self, settings: LabSettings) -> None:
        """Start a run in a background thread; a ``LabError`` if one is going or the settings cannot work."""
        settings.check()
        with self._lock:
            if self._running:
                raise LabError("A run is already going: wait for it to finish or press Stop.")
            self._running = True
        try:
            self._stop.clear()
            self.view.started(settings)
            self._thread = threading.Thread(target=self._work, args=(settings,), daemon=True, name="nst-lab-run")
            self._thread.start()
        except BaseException:  # no thread will clear the flag: clear it here, or every later run is refused
            with self._lock:
                self._running = False
            raise

    def stop(self) -> bool:
        """Ask the running optimisation to stop (it keeps the best image reached); False if none is running."""
        if self._running:
            self._stop.set()
        return self._running

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current run (and what it waits for) ends; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in (self.waits_for, self._thread):
            if thread is not None:
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    return False
        return True

    def _work(self, settings: LabSettings) -> None:
        """The worker thread: never lets an exception escape silently."""
        try:
            if self.waits_for is not None:
                self.waits_for.join()
            content = load_image(self.source(settings.content), settings.size)
            style = load_image(self.source(settings.style), settings.size)
            settings.check_sizes(content, style)
            second = None if settings.second_style is None else load_image(self.source(settings.second_style),
                                                                            settings.size)
            painting = settings.style_term(style, second, tuple(content.shape[-2:]))
            network = cached_network(self.weights, settings.pooling, str(self.device), False)
            self._live = {"step": [], "content": [], "style": []}
            self._started, self._last_draw = time.perf_counter(), 0.0
            result = transfer(content, painting, **settings.transfer_kwargs(), network=network,
                              callback=self._callback, every=max(1, settings.steps // 100), progress=False)
            run = LabRun(len(self.history) + 1, settings, result)
            self.history.append(run)
            self.view.finished(run)
        except LabError as err:
            self.view.failed(str(err), "warning")
        except Exception as err:  # shown, never a silent dead thread
            self.last_error = traceback.format_exc()
            self.view.failed(f"The run failed ({type(err).__name__}): {err}", "error")
        finally:
            with self._lock:
                self._running = False
            self.view.idle()

    def _callback(self, progress: Progress) -> bool:
        """Called by the engine from the worker thread; True stops the run."""
        for key, value in (("step", progress.step), ("content", progress.losses["content"]),
                           ("style", progress.losses["style"])):
            self._live[key].append(value)
        now = time.perf_counter()
        draw = now - self._last_draw >= self.refresh_s
        if draw:
            self._last_draw = now
        self.view.progressed(progress, self._live, now - self._started, draw)
        return self._stop.is_set()
