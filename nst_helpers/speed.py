"""How the engine runs fast: nothing here changes what is computed, only how quickly.

The engine (``optimize``) calls this module in one place. What it does, and what is global:

* ``autocast``: bf16 features on CUDA (``precision="auto"``), fp32 elsewhere; the losses
  are always computed in fp32 (``objective``).
* ``prepare_network``: cuDNN autotuning on CUDA (a process-wide switch,
  ``torch.backends.cudnn.benchmark``), and the memory layout. ``load_vgg19`` already
  gives NHWC (channels_last) weights on CUDA and CPU; asked for another layout
  (``channels_last=``), the engine switches a network it cached in place, while **a
  network you pass in (``extractor=``) is never changed**: only its input images are.
* ``cached_network``: the VGG-19s the tasks load, kept (four at most) and shared by every
  run in the process, so a notebook loads its network once.
* ``keep_cpu_memory``: glibc's allocator settings during a CPU run. **Process-wide**: in a
  Jupyter kernel it affects everything else running in that kernel, and after a run the
  thresholds stay where a torch process ends up anyway (see its docstring).

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

__all__ = ["autocast", "cached_network", "device_of", "keep_cpu_memory", "prepare_network"]


def device_of(module: torch.nn.Module) -> torch.device:
    """The device a network's buffers (and so its computations) live on."""
    return next(module.buffers()).device


def autocast(device: torch.device, precision: str):
    """A context computing the network in bf16 where asked (``"bf16"``, or ``"auto"`` on CUDA), else fp32."""
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)


@functools.lru_cache(maxsize=4)
def cached_network(weights: str, pooling: str, device: str, normalize: bool) -> VGG19Features:
    """``load_vgg19(...)``, loaded once per process and shared by every run that asks for the same one."""
    return load_vgg19(weights=weights, pooling=pooling, device=device, normalize=normalize)


def prepare_network(vgg: VGG19Features, channels_last: bool | None, owned: bool) -> bool:
    """Switch on the device's fast paths for a run; return whether to feed ``vgg`` NHWC images.

    On CUDA, cuDNN autotuning (the image size is fixed for a whole run, so the search
    pays for itself within a few steps). The layout is the network's own
    (``load_vgg19`` picks the fast one for its device) unless ``channels_last`` says
    otherwise: then a network the engine ``owned`` (cached) is switched to it in place,
    and a caller's network is left as it is and only its input images change layout.
    The features agree to rounding either way (``tests/test_speed.py``).
    """
    if device_of(vgg).type == "cuda":
        torch.backends.cudnn.benchmark = True
    nhwc = vgg.conv("conv1_2").weight.is_contiguous(memory_format=torch.channels_last)
    if channels_last is None:
        return nhwc
    if owned and channels_last != nhwc:
        vgg.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    return channels_last


# glibc's mallopt parameters (malloc.h), and what keep_cpu_memory sets during and after a run.
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
