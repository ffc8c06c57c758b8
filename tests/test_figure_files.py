"""Tests for nst_helpers.figure_files: the figures as files, the figures command, Ctrl-C."""

from __future__ import annotations

import json
import time

import pytest

from nst_helpers import figure_files, figures


def test_make_figures_writes_png_caption_and_stats(data_dir, tmp_path, monkeypatch):
    """Smoke size: files, captions and JSON; a missing Picasso gives a panel that says why."""
    from nst_helpers import images

    real = images.sample_image

    def no_picasso(name, download=True):
        if name == "seated_nude":
            raise images.SampleUnavailable("seated-nude.jpg is not in $NST_DATA_DIR (test)")
        return real(name, download)

    monkeypatch.setattr(images, "sample_image", no_picasso)
    stats = figure_files.make_figures(tmp_path, only=["fig2", "init"], size=48, steps=2, progress=False)
    for name in ("fig2", "init"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
        assert len((tmp_path / f"{name}.txt").read_text()) > 100
    saved = json.loads((tmp_path / "stats.json").read_text())
    assert saved.keys() == stats.keys() == {"fig2", "init"}
    assert saved["fig2"]["panels"]["E"]["missing"] is True
    assert "Panel E is empty" in (tmp_path / "fig2.txt").read_text()
    assert saved["fig2"]["settings"]["size"] == 48


def test_fig3_runs_with_its_departures_and_records_them(data_dir, tmp_path, monkeypatch):
    """Fig. 3's panels get FIG3_EXTRAS (the recoloured content target, the flat-region smoothing), and say so."""
    seen = []
    real = figures.ratio_grid
    monkeypatch.setattr(figures, "ratio_grid", lambda *a, **kw: seen.append(kw) or real(*a, **kw))
    stats = figure_files.make_figures(tmp_path, only=["fig3"], size=48, steps=1, progress=False)
    assert len(seen) == 5 and all(kw["extras"] == figures.FIG3_EXTRAS for kw in seen)
    assert stats["fig3"]["extras"] == {"content_colors": "painting", "flat_smoothing": 30.0}
    assert "figures.PaintingColors" in (tmp_path / "fig3.txt").read_text()


def test_cli_figures_arguments(tmp_path):
    from nst_helpers.cli import build_parser

    args = build_parser().parse_args(["figures", "--out", str(tmp_path), "--only", "fig1,fig3"])
    assert args.size is None and args.steps is None  # the preset decides
    assert args.only == "fig1,fig3"
    with pytest.raises(ValueError, match="Unknown figure"):
        figure_files.make_figures(tmp_path, only=["fig9"])


def test_ctrl_c_ends_all_the_figures_not_one_run(tmp_path, monkeypatch):
    """The engine turns Ctrl-C into 'keep the best image'; make_figures must still stop its loop of runs."""
    import os
    import signal

    made = []

    def interrupted_run(ctx):
        made.append("first")
        try:  # a run, as the engine does it: Ctrl-C ends the optimisation, the best image comes back
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(100):
                time.sleep(0.01)
        except KeyboardInterrupt:
            pass
        ctx.tick(1)
        raise AssertionError("the figures went on after Ctrl-C")

    monkeypatch.setattr(figure_files, "figure_network", lambda device=None, pooling="avg": None)
    monkeypatch.setitem(figures.MAKERS, "fig1", (interrupted_run, 1))
    monkeypatch.setitem(figures.MAKERS, "fig2", (lambda ctx: made.append("second"), 1))
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        figure_files.make_figures(tmp_path, only=["fig1", "fig2"], size=32, steps=1, progress=False)
    assert made == ["first"] and signal.getsignal(signal.SIGINT) is handler  # the handler is put back
