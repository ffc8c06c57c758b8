"""How much memory a run needs, worked out from the layer shapes before it starts, and whether it fits.

A style-transfer run holds, at its peak (float32, 4 bytes a number):

* the network's weights up to the deepest layer used (VGG-19's 16 convolutions: 80 MB in all);
* the responses kept for the backward pass: every convolution's and ReLU's output and every pooling's
  output up to the deepest layer, for the image being optimised (``ACTIVATION_COPIES`` of them: a
  response, its ReLU, and the gradient flowing back through the largest of them);
* the targets: the photo's responses at the content layer and one N x N Gram per style layer
  (the current Grams and their differences are as large again);
* the optimiser's state, in units of the image: L-BFGS keeps ``history`` pairs of steps and gradient
  differences (100 pairs in the engine, so 200 copies of the image), Adam two moments; plus the image,
  its gradient and the best image so far;
* a fixed ``RUNTIME`` for what a first run sets up (the weights' file read and dequantised, oneDNN's
  kernels and workspaces, autograd's bookkeeping).

``estimate`` adds these up; ``available`` reads what the machine has free; ``check_fits`` refuses a run
that cannot fit with the estimate, what is available, and the largest size that fits. The estimate is
checked against the measured peak resident memory of real runs in ``tests/test_memory.py`` and
``benchmarks/memory.py`` (the table in ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .features import LAYER_NAMES, STYLE_LAYERS, layer_shapes

__all__ = ["ACTIVATION_COPIES", "RUNTIME", "Estimate", "available", "check_fits", "estimate", "largest_size"]

_BYTES = 4  # float32
#: Copies of each layer's response alive at the peak of a step (forward outputs kept for the backward
#: pass, plus gradient buffers), and the fixed cost of a first run: fitted to the measured peaks of
#: 110-evaluation L-BFGS runs at 256, 384 and 512 px on the CPU (``benchmarks/memory.py``: 629, 1095
#: and 1571 MiB over the process's baseline; the fit is within 5 % of each).
ACTIVATION_COPIES = 1.7
RUNTIME = 290 * 2**20


@dataclass(frozen=True)
class Estimate:
    """A run's memory at its peak, in bytes, by part."""

    weights: int
    activations: int
    targets: int
    optimizer: int
    runtime: int = RUNTIME

    @property
    def total(self) -> int:
        return self.weights + self.activations + self.targets + self.optimizer + self.runtime

    def __str__(self) -> str:
        parts = ", ".join(f"{name} {_gib(getattr(self, name))}" for name in ("weights", "activations", "targets",
                                                                                "optimizer", "runtime"))
        return f"{_gib(self.total)} ({parts})"


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**29 else f"{n / 2**20:.0f} MiB"


def estimate(height: int, width: int, content_layer: str | None = "relu4_2",
             style_layers: Sequence[str] = STYLE_LAYERS, optimizer: str = "lbfgs", history: int = 100,
             batch: int = 1) -> Estimate:
    """The peak memory of a run that optimises a ``batch`` of ``height`` x ``width`` images.

    Note: an estimate from the shapes, not a measurement: it leaves out the Python process itself
    (torch and its libraries, a few hundred MB) and the allocator's slack.
    """
    used = [layer for layer in [content_layer, *style_layers] if layer]
    deepest = max(used, key=LAYER_NAMES.index)
    up_to = LAYER_NAMES[: LAYER_NAMES.index(deepest) + 1]
    shapes = layer_shapes(up_to, height, width)
    weights, channels = 0, 3
    for name in up_to:
        if name.startswith("conv"):
            out = shapes[name][0]
            weights += (channels * out * 9 + out) * _BYTES
            channels = out
    responses = sum(c * h * w for c, h, w in shapes.values()) * _BYTES * batch
    targets = 0
    if content_layer:
        c, h, w = shapes[content_layer]
        targets += c * h * w * _BYTES
    targets += sum(3 * shapes[layer][0] ** 2 * _BYTES for layer in style_layers)  # target, current, difference
    pixels = 3 * height * width * _BYTES * batch
    state = 2 * history + 4 if optimizer == "lbfgs" else 2 + 3  # L-BFGS pairs (+ d, t, flat grad); Adam moments
    return Estimate(weights=weights, activations=int(ACTIVATION_COPIES * responses), targets=targets,
                    optimizer=(state + 3) * pixels)  # + the image, its gradient, the best image


def available(device: str | torch.device = "cpu") -> int:
    """Bytes free for a run: on CUDA the device's free memory plus what PyTorch holds cached but unused (a
    kernel's earlier runs leave it reserved, and this run will reuse it); ``MemAvailable`` of ``/proc/meminfo``
    on Linux."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + cached)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 2**62  # unknown (macOS, Windows): do not refuse


def largest_size(limit: int, aspect: float = 0.75, **kwargs) -> int:
    """The largest long edge (px, a multiple of 16) whose ``estimate`` stays under ``limit`` bytes."""
    size = 16
    while estimate(max(1, round((size + 16) * aspect)), size + 16, **kwargs).total <= limit and size < 2**15:
        size += 16
    return size


def check_fits(height: int, width: int, device: str | torch.device = "cpu", **kwargs) -> Estimate:
    """The run's ``estimate``; a ``MemoryError`` that names the largest size that fits if it would not fit.

    ``NST_MEMORY_CHECK=0`` in the environment turns the refusal off (the estimate errs high by up to 1.45x).
    """
    need = estimate(height, width, **kwargs)
    free = available(device)
    if need.total > free and os.environ.get("NST_MEMORY_CHECK", "1") != "0":
        aspect = height / width if width >= height else width / height
        fits = largest_size(free, aspect, **kwargs)
        if estimate(max(1, round(fits * aspect)), fits, **kwargs).total > free:
            raise MemoryError(f"A {width}x{height} run needs about {need}, and only {_gib(free)} is free: not even "
                              "a 16 px run fits; close other programs or free memory first")
        raise MemoryError(
            f"A {width}x{height} run needs about {need} and {torch.device(device).type} has "
            f"{_gib(free)} free: use a long edge of at most {fits} px (or coarse-to-fine passes up to it), "
            "or Adam, which keeps 2 copies of the image where L-BFGS keeps 200; NST_MEMORY_CHECK=0 runs it anyway")
    return need
