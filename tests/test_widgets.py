"""Tests for nst_helpers.widgets: the lab's logic, headless (no browser; test_browser.py drives a real one).

Runs are tiny (32 px, seeded random weights) so each takes a second or so on a CPU.
"""

from __future__ import annotations

import datetime
import io
import time

import pytest
import torch
from PIL import Image

from nst_helpers import STYLE_LAYERS
from nst_helpers import lab as lab_module
from nst_helpers.balance import QUICK_FACTOR, balanced_ratio
from nst_helpers.images import to_pil
from nst_helpers.widgets import StyleLab


def _png_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def _upload(name: str, content: bytes) -> tuple[dict, ...]:
    """What ipywidgets' FileUpload holds after the browser sent one file."""
    return ({"name": name, "type": "", "size": len(content), "content": memoryview(content),
             "last_modified": datetime.datetime(2024, 1, 1)},)


def _wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the lab")
        time.sleep(0.02)


@pytest.fixture
def lab(data_dir, tmp_path):
    lab = StyleLab(size=32, steps=4, weights="random", device="cpu", save_dir=tmp_path / "saved", measure=False,
                   refresh_s=0.0)
    yield lab
    lab.stop()
    assert lab.wait(60), "a run was still going at the end of the test"


def test_smoothness_defaults_to_the_engine_and_unticks_to_the_papers_loss(lab, tmp_path):
    from nst_helpers.balance import DEFAULT_TV_WEIGHT

    caffe = StyleLab(size=32, steps=4, weights="caffe", device="cpu", save_dir=tmp_path, measure=False)
    assert caffe.tv_on.value and caffe.settings().tv_weight == pytest.approx(DEFAULT_TV_WEIGHT)
    caffe.tv_on.value = False
    assert caffe.tv_weight.disabled and caffe.settings().tv_weight == 0
    # random (torchvision-style) weights: the smoothing was not measured there, so the lab starts without it
    assert not lab.tv_on.value and lab.tv_weight.disabled and lab.settings().tv_weight == 0
    lab.tv_on.value = True
    lab.tv_weight.value = 1e3
    assert not lab.tv_weight.disabled and lab.settings().tv_weight == pytest.approx(1e3)


def test_controls_start_from_the_paper(lab):
    settings = lab.settings()
    assert settings.style_layers == STYLE_LAYERS and settings.content_layer == "relu4_2"
    assert (settings.pooling, settings.optimizer, settings.statistic) == ("avg", "lbfgs", "gram")
    # on a CPU the lab's runs are quick (100 steps): the quick recipe, from the photo (balance.RECIPES); else noise
    quick = lab.preset.recipe == "quick"
    assert quick == (lab.preset.name in ("cpu", "smoke"))
    assert settings.init == ("content" if quick else "noise") == lab.preset.init
    assert [t.description for t in lab.layer_toggles.values()] == ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
    assert lab.ratio.min == -6 and lab.ratio.max == 0  # a log slider over 1e-6 .. 1e0
    assert lab.ratio.value == pytest.approx((QUICK_FACTOR if quick else 1) * balanced_ratio(32))
    assert "known after the first run" in lab.estimate.value


def test_a_run_updates_image_progress_and_history(lab):
    placeholder = lab.image.value
    lab.ratio.value = 1e-3
    lab.layer_toggles["relu5_1"].value = False
    lab.layer_weights["relu1_1"].value = 2.0
    lab.pooling.value, lab.init.value, lab.optimizer.value = "max", "content", "adam"
    lab.statistic.value = "mean_std"  # notebook 06's statistic control
    assert lab.run()
    assert lab.wait(120)
    assert not lab.running and not lab.run_button.disabled and lab.stop_button.disabled
    assert lab.image.value != placeholder
    assert lab.progress.value == 4 and lab.progress.bar_style == "success"
    assert "Finished" in lab.message.value
    assert "<polyline" in lab.plot.value  # the loss plot has curves
    assert "about" in lab.estimate.value  # the run's own speed now predicts the next
    (run,) = lab.history
    assert run.result.steps == 4 and run.result.stopped == "done"
    assert run.settings.ratio == pytest.approx(1e-3)
    assert run.settings.style_layers == STYLE_LAYERS[:4]
    assert (run.settings.pooling, run.settings.init, run.settings.optimizer) == ("max", "content", "adam")
    assert run.result.settings["alpha"] == pytest.approx(1e-3) and run.result.settings["pooling"] == "max"
    assert run.settings.statistic == run.result.settings["style_statistic"] == "mean_std"
    assert any("mean_std" in line for line in run.settings.describe())
    assert len(lab.history_box.children) == 1
    card = lab.history_box.children[0]
    save_button, saved = card.children[2], card.children[3]
    save_button.click()
    assert run.saved is not None and run.saved.exists() and str(run.saved) in saved.value
    assert Image.open(run.saved).size == (32, 24)


def test_stop_ends_the_run_early_and_keeps_the_image(lab):
    lab.steps.value = 1000
    assert lab.run()
    _wait_for(lambda: lab.progress.value >= 2)
    lab.stop()
    assert lab.wait(60)
    (run,) = lab.history
    assert run.result.stopped == "stopped" and 2 <= run.result.steps < 1000
    assert "Stop" in lab.message.value
    torch.testing.assert_close(run.result.image.shape, torch.Size([1, 3, 24, 32]))
    shown = io.BytesIO()
    to_pil(run.result.image).save(shown, format="PNG")
    assert lab.image.value == shown.getvalue()  # the image reached is what is shown


def test_a_second_run_cannot_start_while_one_runs(lab):
    lab.steps.value = 1000
    assert lab.run()
    _wait_for(lambda: lab.progress.value >= 1)
    assert lab.run_button.disabled and not lab.stop_button.disabled
    assert lab.ratio.disabled  # the settings are frozen while they are used
    assert not lab.run()
    lab.run_button.click()  # the button's handler goes through the same guard
    assert "already" in lab.message.value
    lab.stop()
    assert lab.wait(60)
    assert len(lab.history) == 1


def test_no_style_layer_gives_a_message_not_a_traceback(lab):
    for toggle in lab.layer_toggles.values():
        toggle.value = False
    assert not lab.run()
    assert "No style layer" in lab.message.value
    assert not lab.history and not lab.running and not lab.progress.value


def test_zero_weights_give_a_message(lab):
    for weight in lab.layer_weights.values():
        weight.value = 0.0
    assert not lab.run()
    assert "weight 0" in lab.message.value


def test_an_image_too_small_for_the_deepest_layer_gives_a_message(lab):
    lab.content_upload.value = _upload("panorama.png", _png_bytes(400, 20))  # 32 px wide -> 32x2 px
    assert lab.content.value == "upload:panorama.png"
    assert lab.run()
    assert lab.wait(60)
    assert "too small" in lab.message.value and "conv5_1" in lab.message.value
    assert not lab.history and not lab.running and not lab.run_button.disabled


def test_uploads_become_choices_and_non_images_are_refused(lab):
    before = lab.content.value
    lab.content_upload.value = _upload("notes.txt", b"not an image at all")
    assert lab.content.value == before
    assert "notes.txt" in lab.message.value and "not an image" in lab.message.value
    lab.style_upload.value = _upload("my painting.png", _png_bytes(60, 40))
    assert lab.style.value == "upload:my_painting.png"
    assert "upload:my_painting.png" in [value for _, value in lab.content.options]  # usable as content too
    assert lab.run() and lab.wait(60)
    assert lab.history[0].settings.style == "upload:my_painting.png"


def test_an_error_in_the_thread_is_shown(lab, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the engine broke")

    monkeypatch.setattr(lab_module, "transfer", broken)
    assert lab.run()
    assert lab.wait(60)
    assert "the engine broke" in lab.message.value and "RuntimeError" in lab.message.value
    assert "Traceback" in lab.last_error
    assert not lab.running and not lab.run_button.disabled and lab.progress.bar_style == "danger"


def test_speed_is_measured_in_the_background(data_dir, tmp_path):
    lab = StyleLab(size=32, steps=10, weights="random", device="cpu", save_dir=tmp_path)
    assert lab.wait(60)
    assert "about" in lab.estimate.value and "warm-up" in lab.estimate.value
    assert "memory about" in lab.estimate.value  # nst_helpers.memory's estimate beside the time
    lab.size.value = 64
    assert "at 64 px" in lab.estimate.value




def test_a_second_painting_on_the_bottom_half_with_the_photos_colours(lab):
    """The 2017 controls (notebook 07): colour kept, a second painting under masks; shown in the history."""
    lab.colors.value = "luminance"
    lab.second_style.value = "the_scream"
    lab.second_where.value = "halves"
    assert lab.run()
    assert lab.wait(120)
    run = lab.history[-1]
    assert run.result.settings["preserve_color"] == "luminance" and run.result.settings["masks"] is True
    assert run.settings.second_style == "the_scream"
    caption = " ".join(run.settings.describe())
    assert "the_scream below" in caption and "photo's colours kept (luminance)" in caption


def test_uploads_live_in_a_temporary_folder_that_goes_with_the_lab(data_dir, tmp_path):
    """No folder until the first upload, and none left behind when Python exits (they used to pile up in /tmp)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import datetime, io, pathlib, tempfile
        from PIL import Image
        from nst_helpers.widgets import StyleLab
        tempfile.tempdir = {str(tmp_path)!r}
        root = pathlib.Path(tempfile.tempdir)
        lab = StyleLab(size=32, steps=4, weights="random", device="cpu", save_dir={str(tmp_path / "saved")!r},
                       measure=False)
        print(len(list(root.glob("nst-lab-uploads-*"))))
        buffer = io.BytesIO()
        Image.new("RGB", (40, 30), (200, 80, 40)).save(buffer, format="PNG")
        lab.content_upload.value = ({{"name": "a.png", "type": "", "size": buffer.tell(),
                                     "content": memoryview(buffer.getvalue()),
                                     "last_modified": datetime.datetime(2024, 1, 1)}},)
        print(lab.content.value, *sorted(p.name for p in root.glob("nst-lab-uploads-*/*")))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "upload:a.png", "a.png"]  # no folder before, the file in one after
    assert not list(tmp_path.glob("nst-lab-uploads-*")), "the upload folder outlived the lab's Python"
