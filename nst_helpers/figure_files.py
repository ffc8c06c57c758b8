"""Making the paper's figures as files: ``make_figures`` and the ``figures`` command (``make figures``).

``make_figures`` runs the figures of ``figures`` with one network and preset and writes, for each,
a PNG, a caption (.txt), and one ``stats.json`` with the numbers behind the paper's claims.
While it runs it holds a SIGINT handler (``_interrupts``), so that Ctrl-C ends all runs.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from .balance import paper_ratio
from .figures import FIGURES, MAKERS, PRESETS, FigureContext, default_preset, figure_network
from .optimize import progress_bar
from .speed import device_of

__all__ = ["add_cli", "make_figures"]


def make_figures(
    out: str | Path = "figures",
    only: Sequence[str] = FIGURES,
    size: int | None = None,
    steps: int | None = None,
    preset: str | None = None,
    device: str | torch.device | None = None,
    pooling: str = "avg",
    optimizer: str = "lbfgs",
    init: str = "noise",
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Make the paper's figures: ``out/<name>.png``, ``out/<name>.txt`` and ``out/stats.json``.

    Args:
        out: output folder (created).
        only: which of ``FIGURES`` to make.
        size, steps: override the preset's image size (long edge, px) and evaluations per run.
        preset: ``"gpu"``, ``"cpu"`` or ``"smoke"`` (see ``PRESETS``); default ``default_preset(device)``.
        device: where to run; ``None`` picks CUDA, MPS, then CPU.
        pooling: the paper's ``"avg"`` (after normalising with max pooling), or ``"max"``.
        optimizer: ``"lbfgs"`` (the paper) or ``"adam"``.
        init: where the transfers of Fig. 2, 3 and the layer figure start (the paper: noise).
        seed: white-noise seed.
        progress: show progress bars (one over runs, one per run).

    Returns:
        The statistics written to ``stats.json`` (existing entries for figures
        not made this time are kept).
    """
    import matplotlib.pyplot as plt

    unknown = [name for name in only if name not in MAKERS]
    if unknown:
        raise ValueError(f"Unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    preset = preset or default_preset(device)
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    size = size or PRESETS[preset].size
    steps = steps or PRESETS[preset].steps
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    vgg = figure_network(device, pooling=pooling)
    stats_path = out / "stats.json"
    stats: dict[str, Any] = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    bar = progress_bar(sum(MAKERS[name][1] for name in only), "figures (runs)", progress, unit="run")
    options = {"steps": steps, "network": vgg, "optimizer": optimizer, "seed": seed, "progress": progress}
    interrupted = _interrupts()

    def tick(runs: int) -> None:
        bar.update(runs)
        if interrupted.seen:  # the engine ended that run at Ctrl-C and kept its picture; end the figures too
            raise KeyboardInterrupt

    ctx = FigureContext(size=size, steps=steps, vgg=vgg, options=options, init=init, tick=tick)
    try:
        for name in only:
            bar.set_postfix_str(name)
            start = time.perf_counter()
            made = MAKERS[name][0](ctx)
            made.figure.savefig(out / f"{name}.png", dpi=100, bbox_inches="tight")
            plt.close(made.figure)
            (out / f"{name}.txt").write_text(made.caption + "\n")
            stats[name] = {**made.stats, "settings": {
                "size": size, "steps": steps, "device": str(device_of(vgg)), "pooling": pooling,
                "optimizer": optimizer, "init": init, "seed": seed, "normalized": True,
                "ratio_factor": paper_ratio(1.0, size), "seconds": round(time.perf_counter() - start, 1)}}
            stats_path.write_text(json.dumps(stats, indent=1, default=float) + "\n")
    finally:
        bar.close()
        interrupted.restore()
    return stats


class _interrupts:
    """Notes Ctrl-C while the figures run (main thread only), then raises as Python does.

    The engine catches the ``KeyboardInterrupt`` to return its best image; ``make_figures`` checks
    ``seen`` after each run so that Ctrl-C ends all 37 runs, not one. ``restore`` puts back the
    previous SIGINT handler (process-wide, for the duration of ``make_figures`` only; ``speed`` lists the others).
    """

    def __init__(self) -> None:
        self.seen = False
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._note)

    def _note(self, signum: int, frame: Any) -> None:
        self.seen = True
        signal.default_int_handler(signum, frame)

    def restore(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


# ------------------------------------------------------------------ command line


def _cli(args: Any) -> int:
    import matplotlib

    matplotlib.use("Agg")  # this process only writes files
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    if args.weights != "caffe":
        raise ValueError("The figures use the paper's normalised Caffe VGG-19; leave --weights at caffe")
    stats = make_figures(args.out, only=only, size=args.size, steps=args.steps, preset=args.preset,
                         device=args.device, pooling=args.pooling, optimizer=args.optimizer, init=args.init or "noise",
                         seed=args.seed)
    for name in only:
        for check, value in stats[name].get("checks", {}).items():
            shown = f"{value:.1f}" if isinstance(value, float) else ("yes" if value else "NO")
            print(f"{name}: {check}: {shown}")
    print(f"wrote {', '.join(f'{n}.png' for n in only)}, captions and stats.json to {args.out}")
    return 0


def add_cli(subparsers: Any, add_common: Callable[..., None]) -> None:
    """Add ``figures`` to the command line (``cli.build_parser`` calls this)."""
    p = subparsers.add_parser(
        "figures", help="make the paper's figures (PNG + caption + stats.json)",
        description="Make the figures of Gatys et al. with the paper's normalised network and average pooling. "
                    "Size and steps follow the device unless given: " +
                    ", ".join(f"{k}: {v.size} px, {v.steps} steps" for k, v in PRESETS.items()) +
                    ". --init sets the start of the transfers (Fig. 2, 3, layers); --normalize is implied.",
    )
    p.add_argument("--out", default="figures", help="output folder (default figures/)")
    p.add_argument("--only", default=",".join(FIGURES), help=f"comma-separated subset of {','.join(FIGURES)}")
    p.add_argument("--preset", choices=list(PRESETS), default=None, help="default: gpu on CUDA, else cpu")
    add_common(p, size=None, steps=None, size_help="long edge in px (default: the preset's)",
               steps_help="evaluations per run (default: the preset's)")
    p.set_defaults(run=_cli)
