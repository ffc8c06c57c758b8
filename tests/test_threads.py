"""threads: the CPU quota read from cgroup files made in a temporary folder, the rule, and a real cgroup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nst_helpers import threads
from nst_helpers.threads import cpu_cgroups, cpu_quota, follow_cpu_limit, thread_count

ROOT = Path(__file__).resolve().parents[1]


def fake_proc(tmp_path: Path, v1: dict[str, tuple[int, int]] | None = None, v2: dict[str, str] | None = None,
              v1_path: str = "/", v2_path: str = "/", v1_root: str = "/", mount_name: str = "cpu") -> Path:
    """A stand-in for /proc/self and the cgroup mounts: ``v1`` maps a cgroup (relative to the mount) to
    (cpu.cfs_quota_us, cpu.cfs_period_us), ``v2`` to cpu.max's text; ``*_path`` is the process's cgroup."""
    proc = tmp_path / "proc"
    proc.mkdir(parents=True)
    mounts, groups = [], []
    if v1 is not None:
        mount = tmp_path / mount_name
        for group, (quota, period) in v1.items():
            (mount / group).mkdir(parents=True, exist_ok=True)
            (mount / group / "cpu.cfs_quota_us").write_text(f"{quota}\n")
            (mount / group / "cpu.cfs_period_us").write_text(f"{period}\n")
        escaped = str(mount).replace(" ", "\\040")
        mounts.append(f"35 25 0:30 {v1_root} {escaped} rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup "
                      "rw,cpu,cpuacct")
        groups.append(f"4:cpu,cpuacct:{v1_path}")
    if v2 is not None:
        mount = tmp_path / "unified"
        for group, text in v2.items():
            (mount / group).mkdir(parents=True, exist_ok=True)
            (mount / group / "cpu.max").write_text(text + "\n")
        mounts.append(f"30 25 0:26 / {mount} rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate")
        groups.append(f"0::{v2_path}")
    mounts.insert(0, "24 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw")
    mounts.append("40 25 0:33 / /sys/fs/cgroup/memory rw shared:15 - cgroup cgroup rw,memory")
    groups.append("5:memory:/elsewhere")
    (proc / "mountinfo").write_text("\n".join(mounts) + "\n")
    (proc / "cgroup").write_text("\n".join(groups) + "\n")
    return proc


# ---------------------------------------------------------------------------------------- cpu_quota

def test_v1_quota_in_cpus_fractional_too(tmp_path):
    assert cpu_quota(fake_proc(tmp_path, v1={".": (150_000, 100_000)})) == 1.5
    assert cpu_quota(fake_proc(tmp_path / "b", v1={".": (25_000, 50_000)})) == 0.5  # the period is not always 100 ms


def test_v1_without_quota_is_unlimited(tmp_path):
    assert cpu_quota(fake_proc(tmp_path, v1={".": (-1, 100_000)})) is None


@pytest.mark.parametrize("text, cpus", [("max 100000", None), ("100000 100000", 1.0), ("50000 100000", 0.5),
                                         ("250000 100000", 2.5)])
def test_v2_cpu_max(tmp_path, text, cpus):
    assert cpu_quota(fake_proc(tmp_path, v2={"student": text}, v2_path="/student")) == cpus


def test_a_parents_quota_limits_its_children(tmp_path):
    # the limit is on the pod, the process sits in a child without one (Kubernetes: pod > container)
    proc = fake_proc(tmp_path, v2={"pod": "100000 100000", "pod/kernel": "max 100000"}, v2_path="/pod/kernel")
    assert cpu_quota(proc) == 1.0
    proc = fake_proc(tmp_path / "b", v1={"pod": (300_000, 100_000), "pod/kernel": (50_000, 100_000)},
                     v1_path="/pod/kernel")
    assert cpu_quota(proc) == 0.5  # the smallest along the way


def test_a_container_sees_its_own_cgroup_at_the_mount_point(tmp_path):
    # cgroup v1 without a cgroup namespace (Docker, Kubernetes): /proc/self/cgroup gives the host's path, and
    # the mount holds only that cgroup, whose path is mountinfo's root field; the host above is not visible
    path = "/kubepods/burstable/pod1/abc"
    proc = fake_proc(tmp_path, v1={".": (100_000, 100_000)}, v1_path=path, v1_root=path)
    assert cpu_cgroups(proc) == [(tmp_path / "cpu", tmp_path / "cpu", "v1")]
    assert cpu_quota(proc) == 1.0


def test_mount_points_with_spaces_and_both_versions(tmp_path):
    proc = fake_proc(tmp_path, v1={".": (200_000, 100_000)}, v2={".": "max 100000"}, mount_name="cgroup cpu")
    assert [version for _, _, version in cpu_cgroups(proc)] == ["v1", "v2"]
    assert cpu_quota(proc) == 2.0


def test_no_cgroups_or_unreadable_files_mean_no_limit(tmp_path):
    assert cpu_quota(tmp_path / "absent") is None
    proc = fake_proc(tmp_path, v1={".": (100_000, 100_000)})
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("garbage\n")
    assert cpu_quota(proc) is None
    assert cpu_quota(fake_proc(tmp_path / "b")) is None  # only a memory controller is mounted


# ---------------------------------------------------------------------------------------- the rule

@pytest.mark.parametrize("torch_threads, affinity, quota, expected", [
    (64, 64, 1.0, 1),            # a 1-CPU limit on a 64-core node: the case
    (2, 2, 0.5, 1),              # 4 students on 2 cores: never 0
    (2, 2, 1.5, 2),              # rounded up, as Java and Go do
    (2, 2, 1.0000000001, 1),     # a quota that is 1 CPU up to rounding is 1
    (2, 2, None, 2),             # no quota: the affinity
    (2, 1, None, 1),             # taskset -c 0
    (32, 64, 48.0, 32),          # never above torch's own choice (MKL: physical cores)
    (4, 8, 6.0, 4),
])
def test_thread_count(torch_threads, affinity, quota, expected):
    assert thread_count(torch_threads, affinity, quota) == expected


@pytest.fixture
def keep_threads():
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


def test_follow_cpu_limit_lowers_torch_to_the_quota(monkeypatch, keep_threads):
    if keep_threads < 2:
        pytest.skip("needs torch to start with 2 threads or more, so that lowering them shows")
    monkeypatch.setattr(threads, "cpu_quota", lambda: 1.0)
    assert follow_cpu_limit({}) == 1
    assert torch.get_num_threads() == 1
    monkeypatch.setattr(threads, "cpu_quota", lambda: None)
    torch.set_num_threads(keep_threads)
    assert follow_cpu_limit({}) == min(keep_threads, len(os.sched_getaffinity(0)))  # never raised


@pytest.mark.parametrize("variable", ["OMP_NUM_THREADS", "MKL_NUM_THREADS"])
def test_the_users_choice_wins(monkeypatch, keep_threads, variable):
    monkeypatch.setattr(threads, "cpu_quota", lambda: 1.0)
    assert follow_cpu_limit({variable: str(keep_threads)}) is None
    assert torch.get_num_threads() == keep_threads


# ---------------------------------------------------------------------------------------- a real cgroup

def v1_cpu_cgroup() -> Path:
    """This process's cgroup v1 cpu directory where a child with a quota can be made; skips otherwise."""
    if os.geteuid() != 0:
        pytest.skip("making a cgroup needs root")
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPUs or more: with 1, torch runs 1 thread with or without the quota")
    found = [d for d, _, version in cpu_cgroups() if version == "v1" and (d / "cpu.cfs_quota_us").exists()]
    if not found or not os.access(found[0], os.W_OK):
        pytest.skip("no writable cgroup v1 cpu controller here")
    return found[0]


def threads_in_cgroup(group: Path, code: str, **env: str) -> int:
    """torch's thread count in a fresh Python that moves itself into ``group`` before anything else."""
    join = f"import os; open({str(group / 'cgroup.procs')!r}, 'w').write(str(os.getpid()))\n"
    environ = {k: v for k, v in os.environ.items() if k not in threads.USER_VARIABLES}
    environ.update(PYTHONPATH=str(ROOT), **env)
    out = subprocess.run([sys.executable, "-c", join + code + "\nimport torch; print(torch.get_num_threads())"],
                         env=environ, capture_output=True, text=True, check=True, timeout=120)
    return int(out.stdout.split()[-1])


def test_a_process_with_a_one_cpu_quota_runs_one_thread():
    group = v1_cpu_cgroup() / f"nst-test-threads-{os.getpid()}"
    group.mkdir()
    try:
        (group / "cpu.cfs_period_us").write_text("100000")
        (group / "cpu.cfs_quota_us").write_text("100000")  # one CPU, as Kubernetes' cpu limit 1
        assert threads_in_cgroup(group, "import torch") > 1  # torch alone does not see the quota
        assert threads_in_cgroup(group, "import nst_helpers") == 1
        assert threads_in_cgroup(group, "import nst_helpers", OMP_NUM_THREADS="2") == 2  # the user's choice
    finally:
        group.rmdir()
