"""Run a notebook (or some of its cells) under nbclient again and again, and count the stalls.

A cell that runs past ``--limit`` seconds is *slow*. When one is, the script dumps the stacks of both processes
(the kernel with ``py-spy dump`` where py-spy is installed, the client with ``sys._current_frames``), then lets the
run go on until nbclient's own ``--timeout`` ends it. Afterwards it compares, for every cell, the client's wait
with the time the kernel took to send its reply (the kernel's own timestamps): a cell the client waited on more
than 10 s longer than the kernel worked is a *stall* (the reply lay unread), however long the cell.

    python benchmarks/notebook_stall.py --runs 10                         # 07's set-up, blend and slider cells, CPU preset
    python benchmarks/notebook_stall.py --runs 5 --cells all              # the whole of 07
    python benchmarks/notebook_stall.py --runs 40 --cells 1,2,3,16,18 --smoke  # many quick runs
    python benchmarks/notebook_stall.py --runs 1 --cells all --times --notebook notebooks/04_style_transfer.ipynb

It prints one line per run and a summary; the stack dumps go to ``--dumps`` (default
``benchmarks/stall_dumps/``, git-ignored). Results: ``benchmarks/STALL.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
LOST_AFTER = 10.0  # s the client may wait on a cell beyond the kernel's own time before it counts as a stall


def client_stacks() -> str:
    frames = sys._current_frames()
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    return "\n".join(f"--- client thread {names.get(ident, ident)}\n" + "".join(traceback.format_stack(frame))
                     for ident, frame in frames.items())


def kernel_stacks(pid: int) -> str:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return "(py-spy is not installed: pip install py-spy)"
    done = subprocess.run([spy, "dump", "--pid", str(pid), "--locals"], capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


def one_run(nb_path: Path, cells: list[int] | None, limit: float, timeout: int, dumps: Path, run: int) -> dict:
    nb = nbformat.read(nb_path, as_version=4)
    if cells is not None:
        nb.cells = [nb.cells[i] for i in cells]
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(nb_path.parent)}})
    state = {"cell": None, "since": None, "stalled": [], "times": {}}
    original = cells or list(range(len(nb.cells)))

    def on_start(cell, cell_index):
        state["cell"], state["since"] = original[cell_index], time.monotonic()

    def on_executed(cell, cell_index, execute_reply):
        state["times"][original[cell_index]] = time.monotonic() - state["since"]
        state["cell"] = None

    client.on_cell_start = on_start
    client.on_cell_executed = on_executed
    stop = threading.Event()

    def watchdog():
        dumped = None
        while not stop.wait(1.0):
            cell, since = state["cell"], state["since"]
            if cell is None or dumped == (cell, since) or time.monotonic() - since < limit:
                continue
            dumped = (cell, since)
            state["stalled"].append(cell)
            pid = client.km.provisioner.process.pid if client.km and client.km.provisioner else None
            text = f"run {run}, cell {cell}, {time.monotonic() - since:.0f} s\n\n{client_stacks()}\n\n"
            text += f"=== kernel (pid {pid})\n{kernel_stacks(pid) if pid else '(no kernel pid)'}\n"
            dumps.mkdir(parents=True, exist_ok=True)
            (dumps / f"run{run:03d}_cell{cell}.txt").write_text(text)

    thread = threading.Thread(target=watchdog, daemon=True)
    thread.start()
    started = time.monotonic()
    error = None
    try:
        client.execute()
    except Exception as err:  # a timeout or an error: recorded, the loop goes on
        error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    finally:
        stop.set()
    # When the kernel sent each reply (its own clock, nbclient's record_timing): a stalled cell whose reply was
    # sent long before the client read it was a lost wake-up in the client, not a busy kernel.
    replied = {}
    for index, cell in zip(original, nb.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            replied[index] = (datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
                              - datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))).total_seconds()
    return {"total": time.monotonic() - started, "times": state["times"], "stalled": state["stalled"], "error": error,
            "replied": replied}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebook", default=str(ROOT / "notebooks" / "07_controls.ipynb"))
    parser.add_argument("--cells", default="1,2,3,16,18", help="cell indices, or 'all' (18, the slider, uses 16's blends)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="NST_SMOKE=1 (tiny images, a few steps)")
    parser.add_argument("--limit", type=float, default=120, help="seconds after which a cell counts as stalled")
    parser.add_argument("--timeout", type=int, default=600, help="nbclient's per-cell timeout")
    parser.add_argument("--times", action="store_true", help="print every cell's time")
    parser.add_argument("--dumps", default=str(ROOT / "benchmarks" / "stall_dumps"))
    args = parser.parse_args(argv)
    os.environ["NST_PROGRESS"] = "0"  # as `make book`
    os.environ.pop("MPLBACKEND", None)
    if args.smoke:
        os.environ["NST_SMOKE"] = "1"
    cells = None if args.cells == "all" else [int(c) for c in args.cells.split(",")]
    stalls = 0
    for run in range(1, args.runs + 1):
        result = one_run(Path(args.notebook), cells, args.limit, args.timeout, Path(args.dumps), run)
        lost = [cell for cell, waited in result["times"].items()
                if waited - result["replied"].get(cell, waited) > LOST_AFTER]
        stalls += bool(lost)
        slowest = max(result["times"].items(), key=lambda kv: kv[1], default=(None, 0))
        print(f"run {run:3d}: {result['total']:6.1f} s, slowest cell {slowest[0]} {slowest[1]:.1f} s, "
              f"slow {result['stalled'] or '-'}, stalled {lost or '-'}"
              + "".join(f" (cell {cell}: waited {result['times'][cell]:.1f} s, the kernel replied after "
                        f"{result['replied'][cell]:.1f} s)" for cell in lost)
              + f", {result['error'] or 'ok'}", flush=True)
        if args.times:
            print("  cell times (s): " + ", ".join(f"{i}: {t:.1f}" for i, t in sorted(result["times"].items())))
    print(f"{stalls} stalled runs of {args.runs} ({Path(args.notebook).name}, cells {args.cells}, "
          f"{'smoke' if args.smoke else 'CPU'} preset, limit {args.limit:g} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
