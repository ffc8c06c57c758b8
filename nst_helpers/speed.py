"""How the engine runs fast: nothing here changes what is computed, only how quickly.

The engine (``optimize``) calls this module in one place. What it does:

* ``autocast``: bf16 features where the device computes bf16 natively (``precision="auto"``:
  CUDA devices of compute capability 8.0 and up, CPUs with AVX512-BF16 or AMX, Arm CPUs with
  BF16), fp32 elsewhere; the losses are always computed in fp32 (``objective``).
* ``prepare_network``: the memory layout. ``load_vgg19`` gives NHWC (channels_last) weights
  on CUDA and CPU, where it measured faster (``load_vgg19(channels_last=False)`` for NCHW);
  the engine feeds the images in the network's layout and **never changes a network**, its
  own cached ones included (the lab's thread may be using one).
* ``cached_network``: the VGG-19s the tasks load, kept (four at most) and shared by every
  run in the process, so a notebook loads its network once.
* ``run_settings``: the process-wide settings a run changes, **the only ones the package
  changes** besides the thread count below (``figure_files.make_figures`` adds a SIGINT handler
  while it runs), each restored when the run ends: on CUDA cuDNN's autotuning
  (``torch.backends.cudnn.benchmark``), on a CPU glibc's allocator thresholds (after the run
  they stay where a torch process ends up anyway: see its docstring). In a Jupyter kernel
  they affect whatever else runs meanwhile.
* The thread count, set once when ``nst_helpers`` is imported and not restored: torch's
  intra-op threads are lowered to the CPUs the process may use, its CPU affinity and a
  container's CPU quota (``threads.follow_cpu_limit``; ``OMP_NUM_THREADS`` opts out).

Measured effects are in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import platform
import threading
from typing import Any

import torch

from .features import VGG19Features, load_vgg19

__all__ = ["BF16_CPU_FLAGS", "autocast", "autocast_off", "cached_network", "cpu_flags", "device_of", "native_bf16", "prepare_network",
           "run_settings"]


def device_of(module: torch.nn.Module) -> torch.device:
    """The device a network's buffers (and so its computations) live on."""
    return next(module.buffers()).device


#: CPU feature flags (``/proc/cpuinfo``) that mean bf16 matrix products in hardware: x86's AVX512-BF16 and AMX,
#: Arm's BF16. Without them oneDNN emulates bf16, slower than fp32.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


@functools.lru_cache(maxsize=1)
def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (x86 ``flags``, Arm ``Features``) from ``/proc/cpuinfo``; empty where it is absent."""
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 in hardware: CUDA from compute capability 8.0 (Ampere) up, a CPU with
    one of ``BF16_CPU_FLAGS``.

    ``torch.cuda.is_bf16_supported()`` also counts emulation, which is slower than fp32 (Colab's T4: 7.5).
    """
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= (8, 0)
    return device.type == "cpu" and bool(cpu_flags() & BF16_CPU_FLAGS)


def autocast(device: torch.device, precision: str):
    """A context computing the network in bf16 where asked (``"bf16"``, or ``"auto"`` where native), else fp32."""
    use_bf16 = precision == "bf16" or (precision == "auto" and native_bf16(device))
    if not use_bf16:
        return autocast_off(device.type)
    return torch.autocast(device.type, dtype=torch.bfloat16)


def autocast_off(device_type: str):
    """``torch.autocast(device_type, enabled=False)``: fp32 inside, even within a bf16 region.

    Where this torch has no autocast for the device type at all (torch 2.2 has none for MPS, and
    refuses even to switch it off there), nothing can be on, so there is nothing to switch off.
    """
    try:
        return torch.autocast(device_type, enabled=False)
    except RuntimeError:
        return contextlib.nullcontext()


@functools.lru_cache(maxsize=4)
def cached_network(weights: str, pooling: str, device: str, normalize: bool) -> VGG19Features:
    """``load_vgg19(...)``, loaded once per process and shared by every run that asks for the same one."""
    return load_vgg19(weights=weights, pooling=pooling, device=device, normalize=normalize)


def prepare_network(vgg: VGG19Features) -> bool:
    """Whether to feed ``vgg`` NHWC images: in the network's own layout (``load_vgg19`` picks the fast one for its
    device). The features agree to rounding either way (``tests/test_speed.py``)."""
    return vgg.conv("conv1_2").weight.is_contiguous(memory_format=torch.channels_last)


# glibc's mallopt parameters (malloc.h), and what run_settings sets during and after a CPU run.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_DURING_RUN = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))
_AFTER_RUN = ((_M_MMAP_MAX, 65536), (_M_MMAP_THRESHOLD, 32 * 2**20), (_M_TRIM_THRESHOLD, 64 * 2**20))
_memory_lock = threading.Lock()
_memory_users = 0


@functools.cache
def _glibc() -> Any:
    """The C library if it is glibc and the user has not tuned its malloc, else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None  # macOS, Windows, musl: their allocators are left alone
    if any(k.startswith("MALLOC_") for k in os.environ) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return None  # the user's own malloc settings win (and are the way to opt out)
    try:
        libc = ctypes.CDLL("libc.so.6")  # glibc's soname; find_library would run ldconfig
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


@contextlib.contextmanager
def run_settings(device: torch.device):
    """The process-wide settings of a run on ``device``, restored after it.

    On CUDA: cuDNN autotuning (the image size is fixed for a whole run, so the search pays for
    itself within a few steps); the previous value comes back at the end. The autotuner may pick
    different kernels in two runs, so on CUDA the same seed gives the same picture only to
    rounding; on a CPU it gives the same picture.

    On a CPU: ``keep_cpu_memory``.
    """
    if device.type != "cuda":
        with keep_cpu_memory(device.type == "cpu"):
            yield
        return
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


@contextlib.contextmanager
def keep_cpu_memory(active: bool = True):
    """While a CPU run lasts, let glibc reuse freed memory instead of returning it to the system.

    Every step allocates and frees the same large buffers (at 512 px an early
    layer's responses are 50 MB). glibc serves blocks over 32 MB with mmap and
    unmaps them when freed, so each step the kernel maps and zero-fills fresh
    pages: 10 % of a 512 px step on the development machine, and most of its
    step-to-step noise (``benchmarks/RESULTS.md``). For the run, large blocks
    come from the heap (``M_MMAP_MAX = 0``) and freed memory stays there
    (``M_TRIM_THRESHOLD`` = 2 GiB, the largest mallopt takes). At the end
    ``malloc_trim`` hands the memory back.

    Note:
        This changes the allocator of the whole process, and not only while
        the run lasts: any mallopt call switches off glibc's sliding mmap and
        trim thresholds for good. After a run they are therefore set to where
        the sliding takes them in a torch process (mmap above 32 MiB, trim
        above 64 MiB) rather than to glibc's starting values (128 KiB), which
        would unmap every tensor over 128 KiB. Nested and concurrent runs (the
        lab's thread) share one setting; the last to finish restores it. Off
        glibc, or when ``MALLOC_*`` variables or ``GLIBC_TUNABLES=glibc.malloc...``
        are set (the way to opt out), nothing happens.
    """
    global _memory_users
    libc = _glibc() if active else None
    if libc is None:
        yield
        return
    with _memory_lock:
        if _memory_users == 0:
            for param, value in _DURING_RUN:
                libc.mallopt(param, value)
        _memory_users += 1
    try:
        yield
    finally:
        with _memory_lock:
            _memory_users -= 1
            if _memory_users == 0:
                for param, value in _AFTER_RUN:
                    libc.mallopt(param, value)
                libc.malloc_trim(0)
