"""The interactive lab of notebook 05: every knob of the paper's method on one screen.

>>> from nst_helpers.widgets import StyleLab     # doctest: +SKIP
>>> lab = StyleLab(); lab                       # doctest: +SKIP

The controls map onto ``optimize.transfer``: content and style image, the
ratio alpha/beta of eq. 7 (only the ratio matters, so the lab passes
``alpha=ratio, beta=1``), the content layer, the style layers with their
weights w_l (eq. 5), pooling, initialisation, optimiser, size, steps and seed.
Every finished run is kept in a history strip with its settings.

This module is the screen: the widgets, their layout and what they show. The
runs themselves (settings, the background thread, Stop, the history) are in
``lab``, whose ``LabRunner`` calls back the ``StyleLab`` as its view.
"""
from __future__ import annotations

import html
import io
import re
import tempfile
import threading
import time
from pathlib import Path

import ipywidgets as w
import torch
from torch import Tensor

from .balance import DEFAULT_TV_WEIGHT, default_tv_weight
from .features import LAYER_NAMES, STYLE_LAYERS, paper_name, pick_device
from .images import SAMPLES, load_image, save_image, to_pil
from .lab import LabError, LabRun, LabRunner, LabSettings, lab_preset
from .memory import available, estimate
from .optimize import Progress
from .plotting import loss_svg
from .speed import cached_network
from .tasks import transfer

__all__ = ["StyleLab"]


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
        self.runner = LabRunner(self, weights, device, refresh_s, source=self._source)
        self.device = self.runner.device
        self.preset = lab_preset(self.device)
        self.weights = weights
        self.save_dir = Path(save_dir)
        self._uploads: dict[str, Path] = {}
        self._upload_dir: tempfile.TemporaryDirectory[str] | None = None  # made at the first upload, removed with the lab
        self._aspect = 0.75  # height / width of the content image, for the time estimate
        self._step_seconds_per_pixel: float | None = None
        self._timing_note = "measuring this machine's speed…" if measure else "known after the first run"
        size = size or self.preset.size
        self._ratio = ratio or self.preset.ratio_at(size)
        self._build(size, steps or self.preset.steps, content, style)
        self._preview("content")
        self._preview("style")
        self._update_estimate()
        if measure:
            self.runner.waits_for = threading.Thread(target=self._measure, daemon=True, name="nst-lab-warmup")
            self.runner.waits_for.start()

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
        # The raw Caffe network's smoothing (balance.default_tv_weight); off for other weights, whose measured
        # default depends on the images (objective.term_scales): transfer's Smoothing() gives it outside the lab.
        tv = default_tv_weight() if self.weights == "caffe" else 0.0
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
        self.statistic = w.Dropdown(options=[("Gram matrix (eq. 4, the paper)", "gram"),
                                             ("mean and std per channel (AdaIN)", "mean_std"),
                                             ("means only (linear MMD)", "mmd_linear"),
                                             ("sliced Wasserstein (transport)", "sliced_w2")],
                                    value="gram", description="statistic", style=_LABEL,
                                    layout=w.Layout(width="330px"))
        self.colors = w.ToggleButtons(options=[("painting's", None), ("photo's: luminance", "luminance"),
                                               ("photo's: histogram", "histogram")], value=None,
                                      style={"button_width": "130px"},
                                      tooltips=["the paper: the painting's palette",
                                                "style on the luminance only, the photo's colours kept",
                                                "the painting's colours first matched to the photo's"])
        self.second_style = w.Dropdown(options=[("none", None), *samples], value=None, description="2nd painting",
                                       style=_LABEL, layout=w.Layout(width="330px"))
        self.second_share = w.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="its share",
                                          style=_LABEL, layout=w.Layout(width="270px"), continuous_update=False)
        self.second_where = w.ToggleButtons(options=[("blended", "blend"), ("top / bottom", "halves")],
                                            value="blend", style={"button_width": "100px"},
                                            tooltips=["both paintings everywhere, mixed by the share",
                                                      "the first painting above, the second below (masks)"])
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
        for control in (self.size, self.steps, self.optimizer):
            control.observe(lambda _: self._update_estimate(), "value")
        self._controls = [self.content, self.style, self.content_upload, self.style_upload, self.ratio,
                          self.tv_on, self.tv_weight,
                          self.content_layer, *self.layer_toggles.values(), *self.layer_weights.values(),
                          self.statistic, self.colors, self.second_style, self.second_share, self.second_where,
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
            self.statistic,
            heading("Colour and a second painting", "Gatys et al. 2017, notebook 07"),
            w.HBox([_label("colours"), self.colors]),
            self.second_style,
            w.HBox([self.second_share, self.second_where]),
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
            tv_weight=float(self.tv_weight.value) if self.tv_on.value else 0.0, statistic=self.statistic.value,
            preserve_color=self.colors.value, second_style=self.second_style.value,
            second_share=float(self.second_share.value), second_where=self.second_where.value,
        )

    def _source(self, key: str) -> str | Path:
        return self._uploads[key] if key.startswith("upload:") else key

    # ------------------------------------------------------------------ running (``lab.LabRunner``)

    @property
    def history(self) -> list[LabRun]:
        """Every finished run, first to last."""
        return self.runner.history

    @property
    def last_error(self) -> str | None:
        """The traceback of the last failed run, for debugging."""
        return self.runner.last_error

    @property
    def running(self) -> bool:
        """True while a run is going."""
        return self.runner.running

    def run(self) -> bool:
        """Start a run with the controls' settings in a background thread.

        Returns False (and says why under the controls) when a run is already
        going or the settings cannot work; True when the run started.
        """
        try:
            self.runner.start(self.settings())
        except LabError as err:
            self._say(str(err), "warning")
            return False
        return True

    def stop(self) -> None:
        """Ask the running optimisation to stop; it keeps the best image reached."""
        if self.runner.stop():
            self._say("Stopping after the current step…", "info")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current run (and the speed measurement) ends; False on timeout."""
        return self.runner.wait(timeout)

    def _set_busy(self, busy: bool) -> None:
        for control in self._controls:
            control.disabled = busy
        self.tv_weight.disabled = busy or not self.tv_on.value  # off: the paper's loss, the slider greyed
        self.run_button.disabled = busy
        self.stop_button.disabled = not busy

    # ------------------------------------------------------------------ what the runner tells the screen

    def started(self, settings: LabSettings) -> None:
        self._set_busy(True)
        self._ratio = settings.ratio
        self.progress.value, self.progress.max, self.progress.bar_style = 0, settings.steps, "info"
        self.status.value = "loading the images and the network…"
        self.plot.value = loss_svg([], [], [], settings.ratio, settings.steps)
        self._say("Running… the image below updates as the optimisation goes; Stop keeps it.", "info")

    def progressed(self, progress: Progress, live: dict[str, list], seconds: float, draw: bool) -> None:
        self.progress.value = progress.step
        if draw:
            self.image.value = _png(progress.image)
            self.plot.value = loss_svg(live["step"], live["content"], live["style"], self._ratio, progress.steps)
            self.status.value = f"step {progress.step} of {progress.steps} · {seconds:.1f} s"

    def failed(self, message: str, kind: str) -> None:
        self.progress.bar_style = "warning" if kind == "warning" else "danger"
        self.status.value = "not run" if kind == "warning" else "failed"
        self._say(message, kind)

    def idle(self) -> None:
        self._set_busy(False)

    def finished(self, run: LabRun) -> None:
        settings, result = run.settings, run.result
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
        if self._upload_dir is None:
            self._upload_dir = tempfile.TemporaryDirectory(prefix="nst-lab-uploads-")
        path = Path(self._upload_dir.name) / name
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
            network = cached_network(self.weights, "avg", str(pick_device(self.device)), False)
            transfer(noise, noise, alpha=1e-2, beta=1.0, steps=3, network=network,
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
        need = estimate(round(size * self._aspect), size, optimizer=self.optimizer.value).total
        free = available(self.device)
        warn = "" if need < free else f" <b style='color:#c62828'>more than the {free / 2**30:.1f} GiB free</b>"
        text += f"; memory about {need / 2**30:.2f} GiB (nst_helpers.memory){warn}"
        self.estimate.value = f"<div style='color:#444;margin:6px 0 0 0;font-size:13px'>Expected time: {text}</div>"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 0.1):.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"
