"""How many threads PyTorch uses: the CPUs this process may use, not the CPUs the machine has.

PyTorch sizes its pool of compute threads from the CPUs it sees: the CPU affinity
(``taskset``), or the physical cores. A container's CPU limit is neither: Kubernetes,
Docker and Binder enforce it with a CFS quota (so many microseconds of CPU time per
period), which PyTorch does not read. A student's kernel with a 1-CPU limit on a 64-core
node then runs dozens of threads that the quota stops and starts, and a class of such
kernels slows down together (``benchmarks/CLASSROOM.md``).

The rule, applied once when ``nst_helpers`` is imported (``follow_cpu_limit``)::

    threads = min(torch's own count, CPUs in the affinity, ceil(quota / period))

where the quota is the smallest along this process's cgroup and its ancestors, read from
cgroup v2's ``cpu.max`` or cgroup v1's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``;
no quota ("max", -1) leaves the affinity. The count is rounded up, as Java and Go
round a container's CPU limit (0.5 CPU: 1 thread, 1.5 CPUs: 2), and never raised
above torch's own choice.

Where ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` is set, the user has chosen: nothing
changes. ``torch.set_num_threads(n)`` after the import also wins. Only the intra-op
pool is set (the one that runs convolutions and matrix products); the inter-op pool,
which this package does not use, is left alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import torch

__all__ = ["cpu_cgroups", "cpu_quota", "follow_cpu_limit", "thread_count", "usable_cpus"]

#: Variables through which a user chooses the thread count (torch reads both).
USER_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _unescape(field: str) -> str:
    """A path from /proc/self/mountinfo, where space, tab, newline and backslash are octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def cpu_cgroups(proc: Path = Path("/proc/self")) -> list[tuple[Path, Path, str]]:
    """This process's CPU cgroups as ``(directory, mount point, version)``, version "v1" or "v2".

    A cgroup's path in ``proc/cgroup`` is relative to the root of its hierarchy; ``proc/mountinfo``
    says where that hierarchy is mounted and which part of it (a container sees only its own).
    """
    paths: dict[str, str] = {}
    for line in (proc / "cgroup").read_text().splitlines():
        number, controllers, path = line.split(":", 2)
        if number == "0" and controllers == "":
            paths["v2"] = path
        elif "cpu" in controllers.split(","):
            paths["v1"] = path
    found = []
    for line in (proc / "mountinfo").read_text().splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        dash = fields.index("-")
        kind, options = fields[dash + 1], fields[dash + 3].split(",") if len(fields) > dash + 3 else []
        version = "v2" if kind == "cgroup2" else "v1" if kind == "cgroup" and "cpu" in options else None
        if version is None or version not in paths or any(v == version for _, _, v in found):
            continue
        root, mount = _unescape(fields[3]), Path(_unescape(fields[4]))
        path = paths[version]
        if root == "/":
            relative = path
        elif path == root or path.startswith(root + "/"):
            relative = path[len(root):]
        else:  # outside the mounted part: in a container, the mount point is the container's own cgroup
            relative = ""
        found.append((mount / relative.lstrip("/"), mount, version))
    return found


def _quota_at(directory: Path, version: str) -> float | None:
    """The quota set at one cgroup directory, in CPUs; None where there is none (or no file)."""
    try:
        if version == "v2":
            quota, period = (directory / "cpu.max").read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota_us = int((directory / "cpu.cfs_quota_us").read_text())
        period_us = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us < 0 or period_us <= 0 else quota_us / period_us


def cpu_quota(proc: Path = Path("/proc/self")) -> float | None:
    """The CPU time this process's cgroups allow, in CPUs (1.5: one and a half CPUs' worth); None if unlimited.

    The smallest quota along the process's cgroup and its ancestors up to the mount point, for cgroup v2
    (``cpu.max``: ``"max 100000"`` or ``"150000 100000"``) and v1 (``cpu.cfs_quota_us``, -1 for none, over
    ``cpu.cfs_period_us``). ``proc`` is ``/proc/self``, or a stand-in for tests. Any file that cannot be read
    counts as no limit: outside Linux, and without cgroups, this is None.
    """
    try:
        places = cpu_cgroups(proc)
    except (OSError, ValueError):
        return None
    quotas = []
    for directory, mount, version in places:
        while True:
            quota = _quota_at(directory, version)
            if quota is not None:
                quotas.append(quota)
            if directory == mount or mount not in directory.parents:
                break
            directory = directory.parent
    return min(quotas, default=None)


def thread_count(torch_threads: int, affinity: int, quota: float | None) -> int:
    """The rule of this module: ``min(torch_threads, affinity, ceil(quota))``, at least 1.

    >>> thread_count(64, 64, 1.0), thread_count(2, 2, 0.5), thread_count(2, 2, 1.5), thread_count(2, 2, None)
    (1, 1, 2, 2)
    """
    count = min(torch_threads, affinity)
    if quota is not None:
        count = min(count, math.ceil(round(quota, 6)))  # 100000/100000 is exactly 1; round() guards 1.0000000001
    return max(1, count)


def usable_cpus() -> int:
    """CPUs this process may use: its CPU affinity, and in a container its CPU quota rounded up."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return thread_count(affinity, affinity, cpu_quota())


def follow_cpu_limit(environ: Mapping[str, str] = os.environ) -> int | None:
    """Lower torch's thread count to ``usable_cpus()`` (called once, when ``nst_helpers`` is imported).

    Returns the count set, or None where ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` is set (the user's choice,
    which torch follows by itself). Process-wide: every thread of the process, and any other library's
    torch work, uses the new count (``speed``'s docstring lists what the package changes).
    """
    if any(environ.get(name) for name in USER_VARIABLES):
        return None
    count = min(torch.get_num_threads(), usable_cpus())
    if count != torch.get_num_threads():
        torch.set_num_threads(count)
    return count
