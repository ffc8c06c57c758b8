"""The command line end to end on small images, and its errors."""

from __future__ import annotations

import subprocess
import sys

import torch
from PIL import Image

from nst_helpers import load_image, save_image
from nst_helpers.cli import main


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


def test_transfer_coarse_to_fine(tmp_path, capsys):
    content, style = _images(tmp_path)
    out = tmp_path / "c2f.png"
    assert main(["transfer", str(content), str(style), "-o", str(out), "--scales", "24,32", "--steps", "4",
                 "--device", "cpu"]) == 0
    assert Image.open(out).size == (32, 24)  # the last scale's size
    assert "after 4 steps" in capsys.readouterr().out
    assert main(["transfer", str(content), str(style), "-o", str(out), "--scales", "24,32", "--size", "64"]) == 2
    assert "disagree" in capsys.readouterr().err
    assert main(["transfer", str(content), str(style), "-o", str(out), "--scales", "24,big"]) == 2
    assert "e.g. 256,512" in capsys.readouterr().err


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
    assert "+ tv 0\n" in capsys.readouterr().out  # the paper's loss: no smoothness term
    assert main(["transfer", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "2",
                 "--device", "cpu"]) == 0
    assert "+ tv 0\n" not in capsys.readouterr().out  # the default adds it


def test_small_images_start_from_the_photo_unless_told(tmp_path, capsys, monkeypatch):
    """Below 256 px white noise leaves the photo unreadable: the command starts from it, and says so."""
    import nst_helpers.optimize as optimize

    seen = []
    real = optimize.transfer
    monkeypatch.setattr(optimize, "transfer", lambda c, s, **kw: seen.append(kw) or real(c, s, **kw))
    content, style = _images(tmp_path)
    args = ["transfer", str(content), str(style), "-o", str(tmp_path / "x.png"), "--size", "32", "--steps", "2",
            "--weights", "random", "--device", "cpu"]
    assert main(args) == 0
    assert seen[-1]["init"] == "content" and seen[-1]["beta"] is None  # beta: balance.default_beta for that start
    assert "starting from the photo" in capsys.readouterr().err
    assert main([*args, "--init", "noise"]) == 0  # the paper's start, when asked
    assert seen[-1]["init"] == "noise" and "starting from the photo" not in capsys.readouterr().err
