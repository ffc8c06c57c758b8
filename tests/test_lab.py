"""Tests for nst_helpers.lab: presets, settings and the runner, without any widget."""

from __future__ import annotations

import threading

import pytest
import torch

from nst_helpers.balance import QUICK_FACTOR, Preset, balanced_ratio
from nst_helpers.color import KeepColors
from nst_helpers.control import Blend, Guided
from nst_helpers.lab import LabError, LabRunner, LabSettings, lab_preset
from nst_helpers.smoothing import Smoothing
from nst_helpers.style_statistics import Statistic


def test_presets_follow_the_device():
    assert lab_preset("cpu", smoke=False) == Preset(192, 60, "cpu", "quick")
    assert lab_preset("cuda", smoke=False).size == 512  # the paper's size
    assert lab_preset("cuda", smoke=False).recipe == "paper"
    assert lab_preset("cuda", smoke=True) == Preset(32, 3, "smoke", "quick")


def test_quick_presets_start_from_the_photo_with_more_content():
    cpu, gpu = lab_preset("cpu", smoke=False), lab_preset("cuda", smoke=False)
    assert (cpu.init, gpu.init) == ("content", "noise")  # the paper's noise where runs converge
    assert cpu.ratio == pytest.approx(QUICK_FACTOR * balanced_ratio(cpu.size))
    assert gpu.ratio == pytest.approx(balanced_ratio(gpu.size))


def test_settings_become_transfer_arguments():
    settings = LabSettings(ratio=1e-3, style_layers=("relu1_1", "relu3_1"), layer_weights=(1.0, 3.0), steps=7)
    kwargs = settings.transfer_kwargs()
    assert kwargs["alpha"] == 1e-3 and kwargs["beta"] == 1.0  # only the ratio matters
    assert kwargs["layer_weights"] == {"relu1_1": 0.25, "relu3_1": 0.75}  # relative weights, summing to 1
    assert kwargs["style_layers"] == ["relu1_1", "relu3_1"] and kwargs["steps"] == 7
    lines = settings.describe()
    assert lines[0] == "α/β = 1.0e-03"
    assert "conv1_1, conv3_1" in lines[3] and "1:3" in lines[3]  # the paper's names, unequal weights shown
    assert "conv1_1 … conv5_1" in LabSettings().describe()[3]
    assert LabSettings(tv_weight=0).describe()[-1] == "the paper's loss (no TV)"
    assert LabSettings(tv_weight=0).transfer_kwargs()["extras"] == []  # the paper's eq. 7
    assert LabSettings(tv_weight=3e4).transfer_kwargs()["extras"] == [Smoothing(3e4)]
    assert LabSettings(preserve_color="histogram").transfer_kwargs()["extras"][-1] == KeepColors("histogram")


class RecordingView:
    """A LabView that writes down what it is told."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.done = threading.Event()

    def started(self, settings):
        self.events.append(("started", settings.steps))

    def progressed(self, progress, live, seconds, draw):
        self.events.append(("progressed", progress.step, len(live["step"]), draw))

    def finished(self, run):
        self.events.append(("finished", run.number, run.result.steps))

    def failed(self, message, kind):
        self.events.append(("failed", kind, message))

    def idle(self):
        self.events.append(("idle",))
        self.done.set()


def test_the_runner_runs_in_the_background_and_keeps_a_history(data_dir):
    view = RecordingView()
    runner = LabRunner(view, weights="random", device="cpu", refresh_s=0.0)
    settings = LabSettings(size=32, steps=3, optimizer="adam")
    runner.start(settings)
    with pytest.raises(LabError, match="already going"):  # one run at a time
        runner.start(settings)
    assert runner.wait(60) and view.done.wait(5)
    kinds = [event[0] for event in view.events]
    assert kinds[0] == "started" and kinds[-2:] == ["finished", "idle"]
    assert [e[1] for e in view.events if e[0] == "progressed"] == [1, 2, 3]  # every evaluation, drawn (refresh 0)
    assert len(runner.history) == 1 and runner.history[0].result.steps == 3 and not runner.running
    assert runner.stop() is False  # nothing to stop any more


def test_the_runner_says_what_to_change_and_never_dies_silently(data_dir, monkeypatch):
    view = RecordingView()
    runner = LabRunner(view, weights="random", device="cpu")
    with pytest.raises(LabError, match="No style layer"):
        runner.start(LabSettings(style_layers=(), layer_weights=()))
    runner.start(LabSettings(size=20, steps=2))  # the photo at 20x15 px: relu5_1 needs 16 px a side (4 poolings)
    assert runner.wait(60) and view.done.wait(5)
    assert view.events[-2][:2] == ("failed", "warning") and "too small" in view.events[-2][2]
    assert not runner.history

    import nst_helpers.lab as lab_module

    def broken(*args, **kwargs):
        raise RuntimeError("the engine broke")

    monkeypatch.setattr(lab_module, "transfer", broken)
    view.done.clear()
    runner.start(LabSettings(size=32, steps=2))
    assert runner.wait(60) and view.done.wait(5)
    assert view.events[-2][:2] == ("failed", "error") and "the engine broke" in view.events[-2][2]
    assert "Traceback" in runner.last_error and not runner.running


def test_a_second_painting_is_blended_by_its_share_or_placed_below():
    first, second = torch.rand(1, 3, 8, 6), torch.rand(1, 3, 8, 6)
    assert LabSettings().style_term(first, None, (8, 6)) is first  # one painting: the paper's Gram term
    assert isinstance(LabSettings(statistic="mean_std").style_term(first, None, (8, 6)), Statistic)
    blend = LabSettings(second_style="the_scream", second_share=0.25).style_term(first, second, (8, 6))
    assert isinstance(blend, Blend) and list(blend.weights) == [0.75, 0.25]
    halves = LabSettings(second_style="the_scream", second_where="halves").style_term(first, second, (8, 6))
    assert isinstance(halves, Guided)
    top, bottom = halves.masks
    assert float(top[:4].min()) == 1 and float(top[4:].max()) == 0 and bool(((top + bottom) == 1).all())
    with pytest.raises(LabError, match="between 0 and 1"):
        LabSettings(second_style="the_scream", second_share=1.5).style_term(first, second, (8, 6))
    with pytest.raises(LabError, match="Gram matrix only"):
        LabSettings(second_style="the_scream", statistic="mean_std").style_term(first, second, (8, 6))


def test_a_failure_while_starting_a_run_does_not_refuse_every_later_run(data_dir):
    """The view's ``started`` (or the thread's start) failing leaves the runner idle, not 'running' for good."""

    class BrokenOnce(RecordingView):
        def started(self, settings):
            if not self.events:
                self.events.append(("broken",))
                raise RuntimeError("the view broke")
            super().started(settings)

    view = BrokenOnce()
    runner = LabRunner(view, weights="random", device="cpu")
    with pytest.raises(RuntimeError, match="the view broke"):
        runner.start(LabSettings(size=32, steps=2, optimizer="adam"))
    assert not runner.running
    runner.start(LabSettings(size=32, steps=2, optimizer="adam"))  # not "A run is already going"
    assert runner.wait(60) and view.done.wait(5)
    assert len(runner.history) == 1


def test_a_weight_per_style_layer_or_a_clear_error():
    with pytest.raises(LabError, match="2 layer weights for 3 style layers"):
        LabSettings(style_layers=("relu1_1", "relu2_1", "relu3_1"), layer_weights=(1.0, 1.0)).check()
