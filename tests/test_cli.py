"""The command line end to end on small images, and its errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from PIL import Image

from nst_helpers import load_image, save_image
from nst_helpers.cli import main


@pytest.fixture
def transfer_calls(monkeypatch):
    """Every call the command makes to ``tasks.transfer``, as (style, keyword arguments); the run still happens."""
    import nst_helpers.tasks as tasks

    calls = []
    real = tasks.transfer
    monkeypatch.setattr(tasks, "transfer", lambda c, s, **kw: calls.append((s, kw)) or real(c, s, **kw))
    return calls


def _images(tmp_path):
    g = torch.Generator().manual_seed(0)
    content = save_image(torch.rand(1, 3, 24, 32, generator=g), tmp_path / "content.png")
    style = save_image(torch.rand(1, 3, 30, 30, generator=g), tmp_path / "style.jpg")
    return content, style


def test_transfer_end_to_end(tmp_path, capsys):
    content, style = _images(tmp_path)
    out = tmp_path / "out" / "result.png"
    code = main(["transfer", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "3",
                 "--device", "cpu", "--beta", "100"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "saved" in printed and "loss" in printed and "s/step" in printed
    assert Image.open(out).size == (32, 24)


def test_transfer_with_sample_names(tmp_path, data_dir, capsys):
    out = tmp_path / "t.png"
    assert main(["transfer", "tubingen", "starry_night", "-o", str(out), "--size", "32", "--steps", "2",
                 "--device", "cpu"]) == 0
    assert load_image(out).shape == (1, 3, 24, 32)


def test_transfer_recipes_and_their_steps(tmp_path, capsys):
    content, style = _images(tmp_path)
    out = tmp_path / "c2f.png"
    assert main(["transfer", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "4",
                 "--device", "cpu"]) == 0
    assert Image.open(out).size == (32, 24)
    assert "after 4 steps" in capsys.readouterr().out  # 2 at half size + 2 at full size
    assert main(["transfer", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "3",
                 "--recipe", "paper", "--device", "cpu"]) == 0
    assert "after 3 steps" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # the recipe carries the passes
        main(["transfer", str(content), str(style), "-o", str(out), "--scales", "24,32"])


def test_errors_are_one_clear_line(tmp_path, capsys):
    content, _ = _images(tmp_path)
    assert main(["transfer", str(content), str(tmp_path / "missing.png"), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: No image at") and "Traceback" not in err
    assert main(["transfer", str(content), str(content), "-o", str(tmp_path / "x.png"), "--style-layers",
                 "relu1_1,conv9_9", "--size", "32", "--steps", "1"]) == 2
    assert "Unknown layer 'conv9_9'" in capsys.readouterr().err


def test_python_dash_m_runs(tmp_path):
    done = subprocess.run([sys.executable, "-m", "nst_helpers", "transfer", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--content-layer" in done.stdout


def test_tv_weight_option_reaches_the_engine(tmp_path, capsys):
    content, style = _images(tmp_path)
    out = tmp_path / "paper.png"
    assert main(["transfer", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "2",
                 "--device", "cpu", "--tv-weight", "0"]) == 0
    assert "+ tv" not in capsys.readouterr().out  # the paper's loss: no smoothness term
    assert main(["transfer", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "2",
                 "--device", "cpu"]) == 0
    assert "+ tv" in capsys.readouterr().out  # the default adds it


def test_the_start_is_the_recipe_s_whatever_the_size(tmp_path, capsys, transfer_calls):
    """No switch on size: the paper's white noise unless --recipe quick (the photo, more content) or --init says."""
    content, style = _images(tmp_path)
    args = ["transfer", str(content), str(style), "-o", str(tmp_path / "x.png"), "--size", "32", "--steps", "2",
            "--weights", "random", "--device", "cpu"]
    assert main(args) == 0
    kwargs = transfer_calls[-1][1]
    assert kwargs["recipe"] == "coarse_to_fine" and "init" not in kwargs and kwargs["beta"] is None
    assert main([*args, "--recipe", "quick"]) == 0
    assert transfer_calls[-1][1]["recipe"] == "quick"
    assert "after 2 steps" in capsys.readouterr().out
    assert main([*args, "--recipe", "quick", "--init", "noise"]) == 0  # an explicit start wins
    assert transfer_calls[-1][1]["init"] == "noise"
    with pytest.raises(SystemExit):
        main([*args, "--recipe", "slow"])


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    """The command as a user types it, in a fresh process."""
    return subprocess.run([sys.executable, "-m", "nst_helpers", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_bad_output_and_weights_fail_at_once_in_one_line(tmp_path):
    """Each fails before any image is processed or any optimisation runs: one line, no traceback."""
    content, style = _images(tmp_path)
    (tmp_path / "some_file.jpg").write_bytes(b"a file, not a folder")
    (tmp_path / "photo.jpg").write_bytes(content.read_bytes())  # a picture, not a weights file
    cases = {
        "out.xyz": (["-o", "out.xyz"], "not a format Pillow writes"),
        "under a file": (["-o", "some_file.jpg/out.png"], "is a file, not a folder"),
        "weights": (["-o", "ok.png", "--weights", "photo.jpg"], "not a PyTorch weights file"),
        "layer": (["-o", "ok.png", "--style-layers", "relu1_1,conv6_1"], "conv6_1"),
        "too large": (["-o", "ok.png", "--size", "4000"], "use a long edge of at most"),  # ~100 GiB: refused
    }
    for name, (extra, message) in cases.items():
        done = _cli("transfer", str(content), str(style), "--size", "32", "--steps", "300", *extra, cwd=tmp_path)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (name, done.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (name, done.stderr)
        assert "Traceback" not in done.stderr and "transfer:" not in done.stderr, name  # no run was started
    assert not (tmp_path / "ok.png").exists()


def test_a_result_that_cannot_be_saved_at_the_end_is_kept(tmp_path, capsys, monkeypatch):
    from PIL import Image as PILImage

    real_save = PILImage.Image.save

    def disk_full(self, fp, *args, **kwargs):
        if str(fp).endswith("result.png"):
            raise OSError(28, "No space left on device")
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(PILImage.Image, "save", disk_full)
    content, style = _images(tmp_path)
    code = main(["transfer", str(content), str(style), "-o", str(tmp_path / "result.png"), "--size", "32",
                 "--steps", "2", "--weights", "random", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1 and "No space left on device" in err and "the result is kept in" in err
    kept = err.split("the result is kept in ")[1].split()[0]
    assert Image.open(kept).size == (32, 24)


def test_preserve_color_reaches_the_engine(tmp_path, transfer_calls):
    """--preserve-color luminance keeps the photo's chroma (Gatys et al. 2017); the flag reaches transfer."""
    content, style = _images(tmp_path)
    out = tmp_path / "kept.png"
    assert main(["transfer", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "2",
                 "--device", "cpu", "--preserve-color", "luminance"]) == 0
    extras = transfer_calls[-1][1]["extras"]
    assert [type(e).__name__ for e in extras] == ["Smoothing", "KeepColors"] and extras[1].mode == "luminance"
    assert out.exists()
    with pytest.raises(SystemExit):
        main(["transfer", str(content), str(style), "-o", str(out), "--preserve-color", "yes"])


def test_fig3s_departures_are_not_command_line_options(tmp_path):
    """The recoloured content target and the extra smoothing in flat regions serve Fig. 3 (make figures) only."""
    content, style = _images(tmp_path)
    for flag, value in (("--content-colors", "painting"), ("--flat-smoothing", "30")):
        with pytest.raises(SystemExit):
            main(["transfer", str(content), str(style), "-o", str(tmp_path / "x.png"), flag, value])


def test_several_styles_are_blended_with_their_weights(tmp_path, transfer_calls):
    content, style = _images(tmp_path)
    out = tmp_path / "blend.png"
    assert main(["transfer", str(content), str(style), str(content), "-o", str(out), "--size", "32", "--steps", "2",
                 "--device", "cpu", "--style-weights", "0.7,0.3"]) == 0
    blend, _ = transfer_calls[-1]
    assert type(blend).__name__ == "Blend" and len(blend.paintings) == 2 and list(blend.weights) == [0.7, 0.3]
    assert out.exists()
    assert main(["transfer", str(content), str(style), str(content), "-o", str(out), "--size", "32",
                 "--style-weights", "1"]) == 2  # one weight for two paintings: a clear error, exit code 2


def test_a_bug_shows_its_traceback_not_one_line(tmp_path, monkeypatch):
    """Only bad input and missing resources become one line; an engine bug must not hide behind 'error: ...'."""
    import nst_helpers.tasks as tasks

    def broken(*args, **kwargs):
        raise TypeError("unsupported operand type(s) for +: 'Tensor' and 'NoneType'")

    monkeypatch.setattr(tasks, "transfer", broken)
    content, style = _images(tmp_path)
    with pytest.raises(TypeError, match="unsupported operand"):
        main(["transfer", str(content), str(style), "-o", str(tmp_path / "x.png"), "--size", "32", "--steps", "2"])
