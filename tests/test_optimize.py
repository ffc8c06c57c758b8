"""Tests for nst_helpers.optimize: the loop (L-BFGS or Adam on the pixels), its Options and Result; nothing is lost
on failure. The tasks that drive it are tested in test_tasks.py."""

from __future__ import annotations

import math

import pytest
import torch

from nst_helpers import Options, Result, optimize_image, reconstruct_content, transfer


def test_adam_also_reduces_the_loss(smooth_image, small_run):
    result = reconstruct_content(smooth_image, "relu1_1", steps=20, optimizer="adam", lr=0.05, **small_run)
    assert result.history["total"][-1] < 0.5 * result.history["total"][0]


def test_lbfgs_is_independent_of_the_loss_scale():
    # The engine divides by the initial loss: a problem scaled by 1e-12 or 1e12 follows the same path.
    target = torch.linspace(-1, 1, 48).view(1, 3, 4, 4)

    def make(scale):
        def objective(x):
            value = scale * ((x - target) ** 4 + (x - target) ** 2).sum()
            return value, {"content": value, "style": torch.zeros(())}
        return objective

    init = torch.zeros(1, 3, 4, 4)
    runs = [optimize_image(make(s), init, Options(steps=30, progress=False)) for s in (1e-12, 1.0, 1e12)]
    for run in runs:
        assert run.stopped == "done" and run.steps == 30
        torch.testing.assert_close(run.image, runs[1].image, atol=1e-4, rtol=0)
    assert runs[1].loss < 1e-6 * runs[1].history["total"][0]


def test_keyboard_interrupt_returns_the_best_image(smooth_image, small_run):
    seen = {}

    def callback(progress):
        seen["step"] = progress.step
        if progress.step >= 6:
            raise KeyboardInterrupt

    with pytest.warns(RuntimeWarning, match="interrupted after 6 of 50 steps"):
        result = reconstruct_content(smooth_image, "relu1_1", steps=50, callback=callback, every=3, **small_run)
    assert result.stopped == "interrupted" and result.steps == 6
    assert result.loss == min(result.history["total"]) < result.history["total"][0]


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_callback_sees_progress_and_can_stop(smooth_image, small_run, optimizer):
    calls = []

    def callback(progress):
        calls.append((progress.step, progress.losses["total"], progress.image.shape))
        return progress.step >= 4

    result = reconstruct_content(smooth_image, "relu1_1", steps=40, callback=callback, every=2,
                                 optimizer=optimizer, **small_run)
    assert result.stopped == "stopped" and result.steps == 4
    assert [c[0] for c in calls] == [2, 4] and calls[0][2] == smooth_image.shape


def test_nan_loss_stops_with_the_best_image_and_a_warning():
    target = torch.full((1, 3, 4, 4), 0.5)
    count = {"n": 0}

    def objective(x):
        count["n"] += 1
        value = ((x - target) ** 2).sum()
        if count["n"] >= 5:
            value = value * float("nan")
        return value, {"content": value, "style": torch.zeros(())}

    init = torch.zeros(1, 3, 4, 4)
    with pytest.warns(RuntimeWarning, match="diverged"):
        result = optimize_image(objective, init, Options(steps=50, optimizer="adam", lr=0.1, every=1, progress=False))
    assert result.stopped == "diverged"
    assert math.isfinite(result.loss) and result.best_step == 4
    assert (result.image - target).abs().max() < 0.5  # moved towards the target, not NaN
    assert torch.isfinite(result.image).all()


def test_out_of_memory_suggests_a_smaller_size(smooth_image):
    def objective(x):
        # torch.cuda.OutOfMemoryError: torch 2.2 has no torch.OutOfMemoryError (later, the same class)
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(MemoryError, match="Use a smaller size"):
        optimize_image(objective, smooth_image, Options(steps=3, progress=False))


def test_a_bound_method_holding_a_lock_can_be_the_callback(smooth_image, small_run):
    import threading

    class Watcher:
        def __init__(self):
            self.lock = threading.Lock()
            self.steps = []

        def __call__(self, progress):
            with self.lock:
                self.steps.append(progress.step)

        def on_progress(self, progress):
            self(progress)

    watcher = Watcher()
    result = reconstruct_content(smooth_image, "relu1_1", steps=4, every=2, callback=watcher.on_progress, **small_run)
    assert watcher.steps == [2, 4] and result.settings["steps"] == 4


def test_progress_bar_is_off_with_nst_progress_0(monkeypatch):
    from nst_helpers.optimize import progress_bar

    monkeypatch.delenv("NST_PROGRESS", raising=False)
    assert not progress_bar(3, "run").disable
    assert progress_bar(3, "run", enabled=False).disable
    monkeypatch.setenv("NST_PROGRESS", "0")  # what `make book` sets: no live bars in a page read later
    assert progress_bar(3, "run").disable


def test_divergence_is_measured_from_the_first_evaluation_with_adam():
    """Adam checks every ``every`` evaluations, but against the first loss, as L-BFGS (bug: against evaluation 10)."""
    calls = []

    def objective(x):  # 1 at the first evaluation, then 1e7: a millionfold growth
        calls.append(1)
        value = 1.0 if len(calls) == 1 else 1e7
        total = (x * 0).sum() + value
        return total, {"content": total, "style": torch.zeros(())}

    with pytest.warns(RuntimeWarning, match="diverged"):
        result = optimize_image(objective, torch.zeros(1, 3, 4, 4), Options(steps=30, optimizer="adam", progress=False))
    assert result.stopped == "diverged" and result.steps == 10  # caught at the first check


def test_a_stopped_run_warns_at_the_users_call(smooth_image, random_vgg):
    """The warning names the line that called the package, not a line inside it (tasks -> optimize)."""
    def interrupt(callback_progress):
        raise KeyboardInterrupt

    with pytest.warns(RuntimeWarning, match="interrupted") as record:
        transfer(smooth_image, smooth_image.flip(-1), steps=3, network=random_vgg, callback=interrupt, every=1,
                 progress=False)
    assert record[0].filename == __file__




def test_a_run_stops_when_the_loss_no_longer_falls_and_says_so():
    """Options.tol: stop once the best loss fell by less than tol of itself over the last WINDOW evaluations."""
    from nst_helpers.optimize import WINDOW

    def loss(x):
        total = ((x - 0.3) ** 2).sum() + 1.0
        return total, {"content": total, "style": torch.zeros(())}

    start = torch.zeros(1, 3, 4, 4)
    common = dict(steps=3000, optimizer="adam", lr=0.01, every=1, progress=False)
    full = optimize_image(loss, start, Options(**common))
    early = optimize_image(loss, start, Options(**common, tol=1e-4))
    assert full.stopped == "done" and full.steps == 3000
    assert early.stopped == "converged" and WINDOW < early.steps < 3000
    best = [min(early.history["total"][: i + 1]) for i in range(early.steps)]
    assert best[-1 - WINDOW] - best[-1] <= 1e-4 * best[-1]  # the test that stopped it
    assert best[-2 - WINDOW] - best[-2] > 1e-4 * best[-2]  # and it was not met one evaluation before
    assert early.history["total"] == full.history["total"][: early.steps]  # the same path until then
    with pytest.raises(ValueError, match="tol must be in"):
        Options(tol=1.5)


def test_options_are_the_settings_every_task_shares():
    import dataclasses

    assert [f.name for f in dataclasses.fields(Options)] == [
        "steps", "tol", "optimizer", "lr", "init", "seed", "network", "precision", "callback", "every", "progress"]
    assert not hasattr(Options, "run_device")  # speed.device_of(options.vgg())
    with pytest.raises(TypeError, match="Unknown option.*pooling; the options are callback, every"):
        Options.from_kwargs({"steps": 3, "pooling": "max"})
    assert Options.from_kwargs({"steps": 3}) == Options(steps=3)


@pytest.mark.parametrize("bad, message", [({"steps": 0}, "steps must be at least 1"), ({"lr": 0}, "lr must be positive"),
                                          ({"optimizer": "sgd"}, "Unknown optimizer 'sgd'"),
                                          ({"precision": "fp16"}, "Unknown precision 'fp16'"),
                                          ({"init": "photo"}, "Unknown init 'photo'"),
                                          ({"every": 0}, "every must be at least 1")])
def test_options_that_cannot_work_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        Options(**bad)


def test_the_network_is_the_given_one_or_the_cached_papers(random_vgg):
    from nst_helpers.speed import cached_network

    assert Options(network=random_vgg).vgg() is random_vgg
    default = Options().vgg()  # the raw Caffe VGG-19, average pooling (2015, Methods), loaded once per process
    assert default is cached_network("caffe", "avg", "cpu", False) and default is Options().vgg()
    assert (default.weights, default.pooling, default.normalized) == ("caffe", "avg", False)
    summary = Options(network=random_vgg, init=torch.zeros(1, 3, 4, 4)).summary()
    assert (summary["weights"], summary["pooling"], summary["normalize"], summary["device"]) == (
        "random", "avg", False, "cpu")
    assert summary["init"] == "tensor" and "network" not in summary and "callback" not in summary


def test_one_result_for_a_batch_of_images():
    """The loop optimises one set of pixels, whatever its batch size: one Result, one loss per evaluation."""
    target = torch.full((2, 3, 8, 8), 0.3)

    def objective(x):
        value = 0.5 * (x - target).pow(2).sum()
        return value, {"content": value, "style": torch.zeros(())}

    result = optimize_image(objective, torch.zeros(2, 3, 8, 8), Options(steps=5, optimizer="adam", progress=False))
    assert isinstance(result, Result) and result.image.shape == (2, 3, 8, 8)
    assert len(result.history["total"]) == 5 and result.history["total"][0] == pytest.approx(0.5 * 0.09 * 384)
    assert result.settings == Options(steps=5, optimizer="adam", progress=False).summary()


def test_the_history_has_the_objectives_parts_in_its_order():
    """Whatever parts the objective returns (an extra term's name) become the history's lists, after "total"."""
    def objective(x):
        a, b = x.pow(2).sum(), (x - 1).pow(2).sum()
        return a + b, {"content": a, "style": torch.zeros(()), "mine": b}

    result = optimize_image(objective, torch.full((1, 3, 2, 2), 2.0), Options(steps=1, progress=False))
    assert list(result.history) == ["total", "content", "style", "mine"]
    assert result.history == {"total": [60.0], "content": [48.0], "style": [0.0], "mine": [12.0]}
