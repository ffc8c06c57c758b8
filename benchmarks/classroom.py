"""What a class needs: each notebook's memory and time per student, and many kernels on one machine.

Two measurements (results and the commands that made them: ``benchmarks/CLASSROOM.md``):

* ``sizing``: each notebook executed top to bottom at its CPU preset in a fresh kernel, as a
  student runs it, with the kernel given ``--cpus`` CPUs: the wall time (kernel start included)
  and the kernel's peak resident memory (``ru_maxrss`` = VmHWM, read by a cell appended at the end;
  also VmRSS there, what an idle kernel keeps after the notebook).
  Notebook 05 shows the lab; one default run of it is appended (a student's first click on Run).
* ``load``: N processes start at once, each limited to its share of the machine (a CFS quota of
  cores/N CPUs, which is how Kubernetes enforces ``singleuser.cpu.limit``), and each runs the lab's
  default run (``lab_preset`` on a CPU: 192 px, 60 steps). Prints the time per run, its ratio to one
  process alone, and the throughput.

CPU limits are cgroup quotas (v1 ``cpu`` controller or v2 ``cpu.max``), which needs root and a writable
cgroup; elsewhere a whole number of CPUs is given as a CPU affinity (``taskset``), and the output says which.
Run with nothing else busy on the machine. Examples::

    python benchmarks/classroom.py sizing --cpus 2 notebooks/0*.ipynb
    python benchmarks/classroom.py load --kernels 1 2 4 --repeat 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEAK_CELL = ("import resource, torch, nst_helpers\n"
             "rss = next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmRSS'))\n"
             "print('NST_PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, rss, torch.get_num_threads(), "
             "nst_helpers.__file__)")
LAB_RUN_CELL = "lab.wait()\nassert lab.run()\nlab.wait()\nassert lab.history, lab.last_error"


# ---------------------------------------------------------------------------------------- CPU limits

def _cgroup_base() -> tuple[Path, str] | None:
    """Where to make child cgroups with a CPU quota: (this process's cpu cgroup, "v1" or "v2"), or None."""
    from nst_helpers.threads import cpu_cgroups

    for directory, _mount, version in cpu_cgroups():
        quota_file = "cpu.cfs_quota_us" if version == "v1" else "cpu.max"
        if (directory / quota_file).exists() and os.access(directory, os.W_OK):
            return directory, version
    return None


@contextlib.contextmanager
def cpu_limit(cpus: float, name: str) -> Iterator[tuple[str, list[str]]]:
    """A way to start a process limited to ``cpus`` CPUs: (how, a command prefix that does it).

    With a writable cgroup, a child cgroup with a quota of ``cpus`` (removed afterwards); the prefix
    moves the process into it before it starts Python. Otherwise ``taskset`` to the first CPUs.
    """
    base = _cgroup_base()
    if base is None:
        if cpus != int(cpus):
            raise SystemExit(f"{cpus} CPUs needs a cgroup quota, and no writable cgroup is here (run as root)")
        yield f"affinity {int(cpus)} CPU(s)", ["taskset", "-c", f"0-{int(cpus) - 1}"]
        return
    directory, version = base
    group = directory / f"nst-{name}-{os.getpid()}"
    group.mkdir()
    try:
        period = 100_000
        if version == "v1":
            (group / "cpu.cfs_period_us").write_text(str(period))
            (group / "cpu.cfs_quota_us").write_text(str(round(cpus * period)))
        else:
            (group / "cpu.max").write_text(f"{round(cpus * period)} {period}")
        join = f'echo $$ > "{group / "cgroup.procs"}" && exec "$0" "$@"'
        yield f"cgroup {version} quota {cpus:g} CPU(s)", ["sh", "-c", join]
    finally:
        for _ in range(50):  # the processes have exited; the kernel may take a moment to empty the group
            with contextlib.suppress(OSError):
                group.rmdir()
                break
            time.sleep(0.1)


def machine() -> str:
    """One line: cores, CPU model, torch version."""
    import torch

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return f"nproc {os.cpu_count()}, {model}, torch {torch.__version__}, Python {platform.python_version()}"


def cpu_seconds() -> tuple[float, float]:
    """(CPU time the whole machine has been busy, CPU time of this process and its finished children), in s.

    Their difference over a measurement is what other programs used meanwhile: a check that it ran alone.
    """
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    ours = sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))
    return busy, ours


# ---------------------------------------------------------------------------------------- sizing

def execute(path: Path, keep: Path | None = None) -> None:
    """Run one notebook in a fresh kernel (this process's child) and print one JSON line of results; ``keep``: a
    folder for the executed notebook, to look at its pictures."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    if path.name.startswith("05_"):
        nb.cells.append(nbformat.v4.new_code_cell(LAB_RUN_CELL))
    nb.cells.append(nbformat.v4.new_code_cell(PEAK_CELL))
    with tempfile.TemporaryDirectory() as work:  # files a notebook writes go here, not into the checkout
        client = NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": work}})
        start, (busy, ours) = time.perf_counter(), cpu_seconds()
        client.execute()
        seconds = time.perf_counter() - start
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, keep / path.name)
    other = (cpu_seconds()[0] - busy) - (cpu_seconds()[1] - ours)
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    peak_kib, end_kib, threads, package = text.split("NST_PEAK", 1)[1].split()
    print(json.dumps({"notebook": path.stem, "seconds": round(seconds, 1), "peak_mib": round(int(peak_kib) / 1024),
                      "end_mib": round(int(end_kib) / 1024), "threads": int(threads), "package": package,
                      "other_cpu_s": round(other, 1)}))


def sizing(notebooks: list[Path], cpus: float, keep: Path | None = None) -> None:
    print(f"# {machine()}; each notebook in a fresh kernel")
    for path in notebooks:
        with cpu_limit(cpus, "sizing") as (how, prefix):
            env = {**os.environ, "NST_PROGRESS": "0"}
            env.pop("NST_SMOKE", None)  # the CPU preset
            out = subprocess.run([*prefix, sys.executable, __file__, "_execute", str(path),
                                  *(["--keep", str(keep)] if keep else [])], env=env,
                                 capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"{path.name} failed:\n{out.stderr[-3000:]}")
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps({**row, "cpus": cpus, "limit": how}), flush=True)


# ---------------------------------------------------------------------------------------- load

def lab_run() -> None:
    """One process of the load check: the lab's default run, timed after a 1-step warm-up.

    Called the way the lab calls the package (``lab.LabRunner``: ``load_image`` at the preset's size, then
    ``transfer``), with the stable keywords only; the lab's default tv_weight and pooling are transfer's own.
    """
    import torch

    import nst_helpers as nst
    from nst_helpers.lab import lab_preset

    preset = lab_preset("cpu")
    photo, painting = nst.load_image("tubingen", preset.size), nst.load_image("starry_night", preset.size)
    kwargs = {"alpha": preset.ratio, "beta": 1.0, "init": preset.init, "seed": 0, "recipe": "paper", "progress": False}
    nst.transfer(photo, painting, steps=1, **kwargs)  # loads the network (cached for the run that follows)
    print("ready", flush=True)
    sys.stdin.readline()  # every process starts its timed run together
    start = time.perf_counter()
    nst.transfer(photo, painting, steps=preset.steps, **kwargs)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "threads": torch.get_num_threads(), "peak_mib": round(peak_mib)}))


def load(kernels: list[int], repeat: int, cores: float, package: Path | None) -> None:
    from nst_helpers.lab import lab_preset

    preset = lab_preset("cpu", smoke=False)
    print(f"# {machine()}; each process a CFS quota of {cores}/N CPUs; the lab's default run ({preset.size} px, "
          f"{preset.steps} steps)")
    print("| processes | CPU each | threads each | time per run, s (mean, slowest) | x one alone | runs per minute "
          "| other programs, CPU s |")
    print("|---|---|---|---|---|---|---|")
    alone = None
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NST_SMOKE")}
    if package is not None:  # the runs import nst_helpers from there (an earlier commit's checkout, to compare)
        env["PYTHONPATH"] = str(package.resolve())
    for n in kernels:
        times, walls, threads = [], [], set()
        busy, ours = cpu_seconds()
        for _ in range(repeat):
            with contextlib.ExitStack() as stack:
                procs = []
                for k in range(n):
                    how, prefix = stack.enter_context(cpu_limit(cores / n, f"load{k}"))
                    procs.append(subprocess.Popen([*prefix, sys.executable, __file__, "_lab_run"], env=env,
                                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
                for p in procs:
                    if p.stdout.readline().strip() != "ready":
                        raise SystemExit(f"a process failed before its run (exit {p.wait()})")
                start = time.perf_counter()
                for p in procs:
                    p.stdin.write("go\n")
                    p.stdin.flush()
                rows = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
                walls.append(time.perf_counter() - start)
            times += [r["seconds"] for r in rows]
            threads |= {r["threads"] for r in rows}
        mean = sum(times) / len(times)
        other = (cpu_seconds()[0] - busy) - (cpu_seconds()[1] - ours)
        alone = alone or mean
        print(f"| {n} | {cores / n:g} ({how.split(' ')[0]}) | {'/'.join(map(str, sorted(threads)))} | "
              f"{mean:.1f}, {max(times):.1f} | {mean / alone:.2f} | {60 * n * repeat / sum(walls):.1f} | {other:.0f} |",
              flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sizing", help="each notebook's time and kernel peak memory at --cpus CPUs")
    s.add_argument("notebooks", nargs="+", type=Path)
    s.add_argument("--cpus", type=float, default=float(len(os.sched_getaffinity(0))))
    s.add_argument("--keep", type=Path, help="a folder for the executed notebooks (their pictures)")
    ld = sub.add_parser("load", help="N processes at once, each cores/N CPUs, the lab's default run")
    ld.add_argument("--kernels", type=int, nargs="+", default=[1, 2, 4])
    ld.add_argument("--repeat", type=int, default=3)
    ld.add_argument("--cores", type=float, default=float(len(os.sched_getaffinity(0))),
                    help="CPUs shared by the N processes (default: all this process may use)")
    ld.add_argument("--package", type=Path, help="import nst_helpers from this checkout in the runs")
    ex = sub.add_parser("_execute")
    ex.add_argument("notebook", type=Path)
    ex.add_argument("--keep", type=Path)
    sub.add_parser("_lab_run")
    args = parser.parse_args(argv)
    if args.command == "sizing":
        sizing(args.notebooks, args.cpus, args.keep)
    elif args.command == "load":
        load(args.kernels, args.repeat, args.cores, args.package)
    elif args.command == "_execute":
        execute(args.notebook, args.keep)
    else:
        lab_run()


if __name__ == "__main__":
    main()
