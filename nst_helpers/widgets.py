"""The interactive lab of notebook 05: every knob of the paper's method on one screen.

>>> from nst_helpers.widgets import StyleLab     # doctest: +SKIP
>>> lab = StyleLab(); lab                       # doctest: +SKIP

The controls map onto ``optimize.transfer``: content and style image, the
ratio alpha/beta of eq. 7 (only the ratio matters, so the lab passes
``alpha=ratio, beta=1``), the content layer, the style layers with their
weights w_l (eq. 5), pooling, initialisation, optimiser, size, steps and seed.
Every finished run is kept in a history strip with its settings.

Why a background thread: the optimisation runs in a ``threading.Thread``
started by the Run button, while the kernel's main thread stays free. The
kernel processes the browser's widget messages (the Stop button's click, a
slider moved) on its main loop, so a run on the main thread would only see the
Stop click after it had finished. The engine calls our callback at every step
from the worker thread; the callback updates the progress bar, the image and
the loss plot (widget updates sent from a thread reach the browser, checked in
JupyterLab 4 with ipywidgets 8) and returns True once Stop was pressed, which
makes the engine stop and return the best image so far. An asyncio loop would
need the engine to yield between steps, which L-BFGS's closure does not.

Only one run at a time: the Run button is disabled while a run is going, and
``StyleLab.run`` refuses a second run under a lock, whatever calls it.
"""

from __future__ import annotations

import html
import io
import os
import re
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import ipywidgets as w
import torch
from torch import Tensor

from .balance import DEFAULT_TV_WEIGHT, Preset, balanced_ratio, default_tv_weight
from .features import LAYER_NAMES, STYLE_LAYERS, min_size, paper_name, pick_device
from .images import SAMPLES, load_image, save_image, to_pil
from .optimize import Progress, Result, transfer
from .plotting import loss_svg

__all__ = ["lab_preset", "LabError", "LabRun", "LabSettings", "StyleLab"]


def lab_preset(device: str | torch.device | None = None, smoke: bool | None = None) -> Preset:
    """The lab's default size and steps for ``device`` (None: the best available).

    ``smoke`` (default: ``NST_SMOKE=1`` in the environment) gives a tiny run for tests.
    """
    device = pick_device(device)
    if smoke is None:
        smoke = os.environ.get("NST_SMOKE") == "1"
    if smoke:
        return Preset(32, 3, "smoke")  # relu5_1 needs >= 16 px per side: 32x24 is enough
    if device.type == "cuda":
        return Preset(512, 300, "gpu")  # the paper's 512 px; 300 L-BFGS evaluations converge (optimize.Options)
    if device.type == "mps":
        return Preset(256, 150, "mps")
    return Preset(128, 100, "cpu")  # from the photo (balance.QUICK_BELOW); 0.1-0.5 s per step on a laptop CPU (measured): a run in under a minute


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

    def transfer_kwargs(self) -> dict:
        """Keyword arguments for ``optimize.transfer``.

        Note: the weights are normalised to sum 1, so the default (all equal)
        is the paper's w_l = 1/N and the overall style weight does not change
        when layers are switched on or off.
        """
        total = sum(self.layer_weights)
        return {
            "alpha": self.ratio, "beta": 1.0, "content_layer": self.content_layer,
            "style_layers": list(self.style_layers),
            "layer_weights": {k: v / total for k, v in zip(self.style_layers, self.layer_weights)},
            "pooling": self.pooling, "init": self.init, "optimizer": self.optimizer,
            "steps": self.steps, "seed": self.seed, "tv_weight": self.tv_weight,
        }

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
            f"style {layers}{weights}",
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


def _png(image: Tensor) -> bytes:
    buffer = io.BytesIO()
    to_pil(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _placeholder(width: int = 4, height: int = 3) -> bytes:
    return _png(torch.full((1, 3, height, width), 0.93))


def _label(text: str) -> w.HTML:
    """A row label as wide as the controls' descriptions, so rows line up."""
    return w.HTML(f"<div style='text-align:right;padding-right:8px;line-height:28px'>{text}</div>",
                  layout=w.Layout(width="96px", min_width="96px"))


def _show_toggle(toggle: w.ToggleButton) -> None:
    toggle.button_style = "info" if toggle.value else ""


_COLOURS = {"info": ("#4a6785", "#eef3f8"), "ok": ("#2e7d32", "#edf7ed"),
            "warning": ("#b26a00", "#fff4e5"), "error": ("#c62828", "#fdecea")}
_LABEL = {"description_width": "96px"}


class StyleLab:
    """Style transfer with every setting on a control, a live image, and a history of runs.

    Args:
        size, steps: the starting image size (long edge, px) and steps; None: ``lab_preset()``.
        content, style: sample names to start with.
        weights: the network's weights (``load_vgg19``); "random" makes tests fast.
        device: where to run; None picks CUDA, MPS, then CPU.
        save_dir: where the Save buttons write PNGs.
        measure: time a 3-step warm-up in the background to say how long a run takes.
        refresh_s: least time between two updates of the live image and plot.
    """

    def __init__(self, size: int | None = None, steps: int | None = None, ratio: float | None = None,
                 content: str = "tubingen", style: str = "starry_night", weights: str = "caffe",
                 device: str | torch.device | None = None, save_dir: str | Path = "lab_results",
                 measure: bool = True, refresh_s: float = 0.5) -> None:
        self.device = pick_device(device)
        self.preset = lab_preset(self.device)
        self.weights = weights
        self.save_dir = Path(save_dir)
        self.refresh_s = refresh_s
        self.history: list[LabRun] = []
        self.last_error: str | None = None  # the traceback of the last failed run, for debugging
        self._lock = threading.Lock()
        self._running = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warmup: threading.Thread | None = None
        self._uploads: dict[str, Path] = {}
        self._upload_dir = Path(tempfile.mkdtemp(prefix="nst-lab-uploads-"))
        self._aspect = 0.75  # height / width of the content image, for the time estimate
        self._step_seconds_per_pixel: float | None = None
        self._timing_note = "measuring this machine's speed…" if measure else "known after the first run"
        self._live: dict[str, list] = {"step": [], "content": [], "style": []}
        self._last_draw = self._started = 0.0
        size = size or self.preset.size
        self._ratio = ratio or self.preset.ratio_at(size)
        self._build(size, steps or self.preset.steps, content, style)
        self._preview("content")
        self._preview("style")
        self._update_estimate()
        if measure:
            self._warmup = threading.Thread(target=self._measure, daemon=True, name="nst-lab-warmup")
            self._warmup.start()

    # ------------------------------------------------------------------ layout

    def _build(self, size: int, steps: int, content: str, style: str) -> None:
        samples = [(s.title, name) for name, s in SAMPLES.items()]
        self.content = w.Dropdown(options=samples, value=content, description="content", style=_LABEL,
                                  layout=w.Layout(width="330px"))
        self.style = w.Dropdown(options=samples, value=style, description="style", style=_LABEL,
                                layout=w.Layout(width="330px"))
        self.content_upload = w.FileUpload(accept="image/*", multiple=False, description="upload",
                                           layout=w.Layout(width="100px"))
        self.style_upload = w.FileUpload(accept="image/*", multiple=False, description="upload",
                                         layout=w.Layout(width="100px"))
        self.content_preview = w.Image(value=_placeholder(), format="png",
                                       layout=w.Layout(height="90px", width="120px", object_fit="contain"))
        self.style_preview = w.Image(value=_placeholder(), format="png",
                                     layout=w.Layout(height="90px", width="120px", object_fit="contain"))
        self.ratio = w.FloatLogSlider(value=self._ratio, base=10, min=-6, max=0, step=0.1, description="α/β",
                                      readout_format=".1e", style=_LABEL, layout=w.Layout(width="460px"),
                                      continuous_update=False)
        # The smoothing measured for this network (0 for torchvision's weights: not measured there).
        tv = default_tv_weight(preprocessing="caffe" if self.weights == "caffe" else "torchvision")
        self.tv_weight = w.FloatLogSlider(value=tv or DEFAULT_TV_WEIGHT, base=10, min=0, max=7, step=0.25,
                                          description="smoothness", readout_format=".1e", style=_LABEL,
                                          layout=w.Layout(width="400px"), continuous_update=False,
                                          disabled=tv == 0)
        self.tv_on = w.Checkbox(value=tv > 0, description="", indent=False,
                                layout=w.Layout(width="30px"), tooltip="total variation on (off: the paper's loss)")
        self.tv_on.observe(lambda change: setattr(self.tv_weight, "disabled", not change["new"]), "value")
        options = [(f"{k} = paper's {paper_name(k)}" if k.startswith("relu") else f"{k} (before its ReLU)", k)
                   for k in LAYER_NAMES if not k.startswith("pool")]
        self.content_layer = w.Dropdown(options=options, value="relu4_2", description="content layer",
                                        style=_LABEL, layout=w.Layout(width="330px"))
        self.layer_toggles = {k: w.ToggleButton(value=True, description=paper_name(k),
                                                layout=w.Layout(width="72px", padding="0 4px"),
                                                tooltip=f"style layer {paper_name(k)} (our {k}, rectified)")
                              for k in STYLE_LAYERS}
        for toggle in self.layer_toggles.values():  # on: blue with a tick, off: plain grey
            toggle.observe(lambda change: _show_toggle(change["owner"]), "value")
            _show_toggle(toggle)
        self.layer_weights = {k: w.BoundedFloatText(value=1.0, min=0.0, max=100.0, step=0.5,
                                                    layout=w.Layout(width="72px"))
                              for k in STYLE_LAYERS}
        self.pooling = w.ToggleButtons(options=[("max", "max"), ("average", "avg")], value="avg",
                                       style={"button_width": "86px"}, tooltips=["the trained VGG-19", "the paper's"])
        self.init = w.ToggleButtons(options=["noise", "content", "style"], value=self.preset.init, style={"button_width": "86px"},
                                    tooltips=["white noise (the paper)", "the photo", "the painting"])
        self.optimizer = w.ToggleButtons(options=[("L-BFGS", "lbfgs"), ("Adam", "adam")], value="lbfgs",
                                         style={"button_width": "86px"}, tooltips=["the paper's", "first-order"])
        self.size = w.IntSlider(value=size, min=32, max=1024, step=16, description="size (px)", style=_LABEL,
                                layout=w.Layout(width="430px"), continuous_update=False)
        self.steps = w.IntSlider(value=steps, min=1, max=1000, description="steps", style=_LABEL,
                                 layout=w.Layout(width="430px"), continuous_update=False)
        self.seed = w.BoundedIntText(value=0, min=0, max=2**31 - 1, description="noise seed", style=_LABEL,
                                     layout=w.Layout(width="200px"))
        self.estimate = w.HTML()
        self.run_button = w.Button(description="Run", icon="play", button_style="success",
                                   layout=w.Layout(width="120px", height="36px"))
        self.stop_button = w.Button(description="Stop", icon="stop", button_style="danger", disabled=True,
                                    layout=w.Layout(width="120px", height="36px"))
        self.message = w.HTML(layout=w.Layout(width="100%"))
        self.progress = w.IntProgress(value=0, min=0, max=steps, layout=w.Layout(width="260px"))
        self.status = w.HTML("Press <b>Run</b> to start.")
        self.image = w.Image(value=_placeholder(), format="png",
                             layout=w.Layout(width="440px", height="330px", object_fit="contain",
                                             border="1px solid #ccc"))
        self.plot = w.HTML(loss_svg([], [], [], self._ratio, steps))
        self.history_box = w.HBox(layout=w.Layout(flex_flow="row wrap", width="100%"))
        for control, name in ((self.history_box, "history"), (self.image, "image"), (self.ratio, "ratio"),
                              (self.run_button, "run"), (self.stop_button, "stop"), (self.message, "message")):
            control.add_class(f"nst-lab-{name}")  # stable hooks for the browser test

        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop())
        self.content.observe(lambda _: self._preview("content"), "value")
        self.style.observe(lambda _: self._preview("style"), "value")
        self.content_upload.observe(lambda change: self._on_upload(change, self.content), "value")
        self.style_upload.observe(lambda change: self._on_upload(change, self.style), "value")
        for control in (self.size, self.steps):
            control.observe(lambda _: self._update_estimate(), "value")
        self._controls = [self.content, self.style, self.content_upload, self.style_upload, self.ratio,
                          self.tv_on, self.tv_weight,
                          self.content_layer, *self.layer_toggles.values(), *self.layer_weights.values(),
                          self.pooling, self.init, self.optimizer, self.size, self.steps, self.seed]

        def heading(text: str, note: str = "") -> w.HTML:
            small = f" <span style='color:#666;font-weight:normal;font-size:90%'>{note}</span>" if note else ""
            return w.HTML(f"<h4 style='margin:10px 0 2px 0'>{text}{small}</h4>")

        controls = w.VBox([
            heading("Images"),
            w.HBox([self.content, self.content_upload]),
            w.HBox([self.style, self.style_upload]),
            w.HBox([_label(""), self.content_preview, self.style_preview]),
            heading("Balance (eq. 7)", "small α/β: more style; the balance moves as 1 / pixel count"),
            self.ratio,
            heading("Smoothness", "total variation, against pixel grain; not in the paper: untick for its loss"),
            w.HBox([self.tv_on, self.tv_weight]),
            heading("Layers", "weights relative, normalised to sum 1"),
            self.content_layer,
            w.HBox([_label("style layers"), *self.layer_toggles.values()]),
            w.HBox([_label("weights w<sub>l</sub>"), *self.layer_weights.values()]),
            heading("Optimisation"),
            w.HBox([_label("pooling"), self.pooling]),
            w.HBox([_label("start from"), self.init]),
            w.HBox([_label("optimiser"), self.optimizer]),
            self.size, self.steps, self.seed,
            self.estimate,
            w.HBox([self.run_button, self.stop_button], layout=w.Layout(margin="8px 0 0 0")),
        ], layout=w.Layout(width="500px", min_width="500px", padding="0 12px 0 0"))
        live = w.VBox([
            heading("Result"),
            w.HBox([self.progress, self.status]),
            self.image,
            self.plot,
        ], layout=w.Layout(width="450px", min_width="450px"))
        self.widget = w.VBox([
            w.HTML("<h3 style='margin:4px 0'>Style lab: <i>A Neural Algorithm of Artistic Style</i>, "
                   "every knob on one screen</h3>"),
            w.HBox([controls, live], layout=w.Layout(flex_flow="row wrap")),  # narrow screens: result below
            self.message,
            heading("History", "every finished run, oldest first: compare, then save the one you like"),
            self.history_box,
        ])
        self.widget.add_class("nst-lab")

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------ settings

    def settings(self) -> LabSettings:
        """The settings the controls show now."""
        layers = tuple(k for k in STYLE_LAYERS if self.layer_toggles[k].value)
        return LabSettings(
            content=self.content.value, style=self.style.value, ratio=float(self.ratio.value),
            content_layer=self.content_layer.value, style_layers=layers,
            layer_weights=tuple(float(self.layer_weights[k].value) for k in layers),
            pooling=self.pooling.value, init=self.init.value, optimizer=self.optimizer.value,
            size=int(self.size.value), steps=int(self.steps.value), seed=int(self.seed.value),
            tv_weight=float(self.tv_weight.value) if self.tv_on.value else 0.0,
        )

    @staticmethod
    def _check(settings: LabSettings) -> None:
        if not settings.style_layers:
            raise LabError("No style layer is selected, but β > 0 asks for a style loss: switch on at least "
                           "one of conv1_1 … conv5_1 under Layers.")
        if sum(settings.layer_weights) <= 0:
            raise LabError("All selected style layers have weight 0: give at least one a positive weight.")

    @staticmethod
    def _check_sizes(settings: LabSettings, content: Tensor, style: Tensor) -> None:
        for name, image, layers in (("content", content, [settings.content_layer, *settings.style_layers]),
                                    ("style", style, settings.style_layers)):
            deepest = max(layers, key=LAYER_NAMES.index)
            need = min_size(deepest)
            h, w_ = image.shape[-2:]
            if min(h, w_) < need:
                raise LabError(f"At {settings.size} px the {name} image is {w_}x{h} px, too small for "
                               f"{paper_name(deepest)} ({deepest}), which needs at least {need} px on each "
                               "side: choose a larger size or switch off the deepest layers.")

    def _source(self, key: str) -> str | Path:
        return self._uploads[key] if key.startswith("upload:") else key

    # ------------------------------------------------------------------ running

    @property
    def running(self) -> bool:
        """True while a run is going."""
        return self._running

    def run(self) -> bool:
        """Start a run with the controls' settings in a background thread.

        Returns False (and says why under the controls) when a run is already
        going or the settings cannot work; True when the run started.
        """
        with self._lock:
            if self._running:
                self._say("A run is already going: wait for it to finish or press Stop.", "warning")
                return False
            settings = self.settings()
            try:
                self._check(settings)
            except LabError as err:
                self._say(str(err), "warning")
                return False
            self._running = True
        self._stop.clear()
        self._set_busy(True)
        self._thread = threading.Thread(target=self._work, args=(settings,), daemon=True, name="nst-lab-run")
        self._thread.start()
        return True

    def stop(self) -> None:
        """Ask the running optimisation to stop; it keeps the best image reached."""
        if self._running:
            self._stop.set()
            self._say("Stopping after the current step…", "info")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current run (and the speed measurement) ends; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in (self._warmup, self._thread):
            if thread is not None:
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    return False
        return True

    def _set_busy(self, busy: bool) -> None:
        for control in self._controls:
            control.disabled = busy
        self.tv_weight.disabled = busy or not self.tv_on.value  # off: the paper's loss, the slider greyed
        self.run_button.disabled = busy
        self.stop_button.disabled = not busy

    def _work(self, settings: LabSettings) -> None:
        """The worker thread: never lets an exception escape silently."""
        try:
            self.progress.value, self.progress.max, self.progress.bar_style = 0, settings.steps, "info"
            self.status.value = "loading the images and the network…"
            self.plot.value = loss_svg([], [], [], settings.ratio, settings.steps)
            self._say("Running… the image below updates as the optimisation goes; Stop keeps it.", "info")
            if self._warmup is not None:
                self._warmup.join()
            content = load_image(self._source(settings.content), settings.size)
            style = load_image(self._source(settings.style), settings.size)
            self._check_sizes(settings, content, style)
            self._live = {"step": [], "content": [], "style": []}
            self._last_draw = 0.0
            self._started = time.perf_counter()
            self._ratio = settings.ratio
            result = transfer(content, style, **settings.transfer_kwargs(), weights=self.weights, device=self.device,
                              callback=self._callback, every=max(1, settings.steps // 100), progress=False)
            self._finish(settings, result)
        except LabError as err:
            self.progress.bar_style = "warning"
            self.status.value = "not run"
            self._say(str(err), "warning")
        except Exception as err:  # shown, never a silent dead thread
            self.last_error = traceback.format_exc()
            self.progress.bar_style = "danger"
            self.status.value = "failed"
            self._say(f"The run failed ({type(err).__name__}): {err}", "error")
        finally:
            with self._lock:
                self._running = False
            self._set_busy(False)

    def _callback(self, progress: Progress) -> bool:
        """Called by the engine from the worker thread; True stops the run."""
        live = self._live
        live["step"].append(progress.step)
        live["content"].append(progress.losses["content"])
        live["style"].append(progress.losses["style"])
        self.progress.value = progress.step
        now = time.perf_counter()
        if now - self._last_draw >= self.refresh_s:
            self._last_draw = now
            self.image.value = _png(progress.image)
            self.plot.value = loss_svg(live["step"], live["content"], live["style"], self._ratio, progress.steps)
            self.status.value = f"step {progress.step} of {progress.steps} · {now - self._started:.1f} s"
        return self._stop.is_set()

    def _finish(self, settings: LabSettings, result: Result) -> None:
        steps = list(range(1, result.steps + 1))
        self.image.value = _png(result.image)
        self.plot.value = loss_svg(steps, result.history["content"], result.history["style"], settings.ratio,
                                    settings.steps)
        self.progress.value = result.steps
        per_step = result.seconds / max(result.steps, 1)
        done = f"{result.steps} steps in {result.seconds:.1f} s ({per_step:.2f} s per step)"
        self.status.value = f"{result.steps} steps, {result.seconds:.1f} s"
        if result.stopped == "done":
            self.progress.bar_style = "success"
            self._say(f"Finished: {done}. It is in the history below.", "ok")
        else:
            self.progress.bar_style = "warning"
            why = "you pressed Stop" if result.stopped == "stopped" else f"it {result.stopped}"
            self._say(f"Ended early because {why}: {done}; kept the best image (step {result.best_step}), "
                      "now in the history below.", "warning")
        if result.steps >= 3:  # the run's own speed is the best estimate for the next one
            h, w_ = result.image.shape[-2:]
            self._step_seconds_per_pixel = per_step / (h * w_)
            self._timing_note = "measured on your last run"
            self._update_estimate()
        run = LabRun(len(self.history) + 1, settings, result)
        self.history.append(run)
        self.history_box.children = (*self.history_box.children, self._card(run))

    def _card(self, run: LabRun) -> w.VBox:
        """A history entry: thumbnail, settings, and a Save button."""
        result = run.result
        lines = [f"<b>#{run.number}</b> · {html.escape(run.settings.describe()[0])}",
                 *map(html.escape, run.settings.describe()[1:]),
                 f"{result.steps} steps, {result.seconds:.1f} s" + ("" if result.stopped == "done"
                                                                   else f" ({result.stopped})")]
        caption = w.HTML("<div style='font-size:12px;line-height:1.35'>" + "<br>".join(lines) + "</div>")
        thumbnail = w.Image(value=_png(result.image), format="png",
                            layout=w.Layout(width="180px", height="135px", object_fit="contain"))
        saved = w.HTML()
        button = w.Button(description="Save as PNG", icon="save", layout=w.Layout(width="130px"))

        def save(_) -> None:
            try:
                run.saved = save_image(result.image, self.save_dir / run.filename)
                saved.value = f"<div style='font-size:11px;word-break:break-all'>saved {html.escape(str(run.saved))}</div>"
            except OSError as err:
                saved.value = f"<div style='color:#c62828;font-size:11px'>could not save: {html.escape(str(err))}</div>"

        button.on_click(save)
        card = w.VBox([thumbnail, caption, button, saved],
                      layout=w.Layout(width="196px", border="1px solid #ddd", padding="6px", margin="0 8px 8px 0"))
        card.add_class("nst-lab-card")
        return card

    # ------------------------------------------------------------------ helpers

    def _say(self, text: str, kind: str = "info") -> None:
        colour, background = _COLOURS[kind]
        self.message.value = (f"<div style='padding:6px 10px;border-left:4px solid {colour};background:{background};"
                              f"font-size:14px'>{html.escape(text)}</div>")

    def _preview(self, which: str) -> None:
        dropdown, image = (self.content, self.content_preview) if which == "content" else (self.style, self.style_preview)
        try:
            picture = load_image(self._source(dropdown.value), 160)
        except Exception as err:  # missing sample, offline: say so, keep the lab usable
            image.value = _placeholder()
            self._say(f"Cannot show the {which} image: {err}", "warning")
            return
        image.value = _png(picture)
        if which == "content":
            self._aspect = picture.shape[-2] / picture.shape[-1]
            self._update_estimate()

    def _on_upload(self, change: dict, dropdown: w.Dropdown) -> None:
        files = change["new"]
        if not files:
            return
        upload = files[-1]
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(upload["name"])).name) or "upload"
        path = self._upload_dir / name
        path.write_bytes(bytes(upload["content"]))
        try:
            load_image(path, 64)
        except (ValueError, OSError) as err:
            path.unlink(missing_ok=True)
            self._say(f"Could not use the upload {upload['name']!r}: {err}", "warning")
            return
        key = f"upload:{name}"
        self._uploads[key] = path
        for target in (self.content, self.style):
            if key not in [value for _, value in target.options]:
                target.options = [*target.options, (f"your image: {name}", key)]
        dropdown.value = key
        self._say(f"Using your image {name}.", "ok")

    def _measure(self) -> None:
        """Time a 3-step warm-up at the preset size (also loads the network for the first run)."""
        try:
            size = self.preset.size
            noise = torch.rand(1, 3, round(size * 0.75), size, generator=torch.Generator().manual_seed(0))
            times: list[float] = []
            transfer(noise, noise, alpha=1e-2, beta=1.0, steps=3, weights=self.weights, device=self.device,
                     progress=False, every=1, callback=lambda _: times.append(time.perf_counter()))
            if self._step_seconds_per_pixel is None and len(times) >= 2:
                per_step = (times[-1] - times[0]) / (len(times) - 1)
                self._step_seconds_per_pixel = per_step / noise[0, 0].numel()
                self._timing_note = f"measured with a 3-step warm-up at {size} px"
        except Exception as err:
            self._timing_note = f"could not measure the speed ({type(err).__name__})"
        self._update_estimate()

    def _update_estimate(self) -> None:
        size, steps = int(self.size.value), int(self.steps.value)
        if self._step_seconds_per_pixel is None:
            text = self._timing_note
        else:
            per_step = self._step_seconds_per_pixel * size * round(size * self._aspect)
            text = (f"<b>about {_duration(per_step * steps)} per run</b>: {steps} steps × {per_step:.2f} s at "
                    f"{size} px on {self.device.type} ({self._timing_note}, scaled by pixel count)")
        self.estimate.value = f"<div style='color:#444;margin:6px 0 0 0;font-size:13px'>Expected time: {text}</div>"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 0.1):.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"
