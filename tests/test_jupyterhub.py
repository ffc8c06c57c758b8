"""jupyterhub/config.yaml: it parses, and its limits are those of the measured table in README's "For a class".

The configuration cannot be deployed here (no cluster): what is checked is that it is valid YAML in the
shape Zero to JupyterHub reads, that its per-student limits cover what the table measured, and that the
README's students-per-node figures follow from it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "jupyterhub" / "config.yaml").read_text())
SINGLEUSER = CONFIG["singleuser"]


def section(title: str) -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index(f"## {title}\n")
    end = readme.find("\n## ", start + 1)
    return readme[start:end if end > 0 else None]


def table_rows(text: str, first_column: str) -> list[list[str]]:
    """The rows of the markdown table whose header starts with ``first_column``, as lists of cells."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_column} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def mib(cell: str) -> float:
    match = re.fullmatch(r"([\d,]+) MiB", cell)
    assert match, f"expected 'N MiB', got {cell!r}"
    return float(match[1].replace(",", ""))


def kubespawner_bytes(value: str | int) -> float:
    """A memory size as KubeSpawner reads it: K, M, G, T are powers of 1024."""
    match = re.fullmatch(r"([\d.]+)([KMGT]?)", str(value))
    assert match, f"memory size {value!r}: write it as KubeSpawner reads it, e.g. 3G"
    return float(match[1]) * 1024 ** " KMGT".index(match[2] or " ")


SIZING = table_rows(section("For a class"), "notebook")
KERNELS = {row[0].strip("`"): row for row in SIZING if row[0].startswith("`")}
SERVER = next(row for row in SIZING if "server" in row[0])


def test_the_table_has_every_notebook():
    assert sorted(KERNELS) == sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_the_memory_limit_covers_the_measured_peak_an_idle_kernel_and_the_server():
    peaks = {name: mib(row[2]) for name, row in KERNELS.items()}
    idle = {name: mib(row[3]) for name, row in KERNELS.items()}
    heaviest = max(peaks, key=peaks.get)
    other_idle = max(v for k, v in idle.items() if k != heaviest)
    need = (peaks[heaviest] + other_idle + mib(SERVER[2])) * 2**20
    limit = kubespawner_bytes(SINGLEUSER["memory"]["limit"])
    assert limit >= need, f"memory.limit {SINGLEUSER['memory']['limit']} is below the {need / 2**30:.2f} GiB measured"
    assert limit <= 2 * need, "memory.limit is more than twice what the table measured: keep to the table"
    guarantee = kubespawner_bytes(SINGLEUSER["memory"]["guarantee"])
    assert (peaks[heaviest] + mib(SERVER[2])) * 2**20 <= guarantee <= limit  # one kernel at its peak and the server


def test_the_cpu_limit_is_one_the_table_measured():
    measured = {int(m[1]) for m in re.finditer(r"time, (\d) CPUs?", "|".join(section("For a class").splitlines()))}
    assert measured == {1, 2}
    assert SINGLEUSER["cpu"]["limit"] in measured
    assert 0 < SINGLEUSER["cpu"]["guarantee"] <= SINGLEUSER["cpu"]["limit"]


def test_threads_are_left_to_the_package():
    # nst_helpers reads the CPU quota (nst_helpers/threads.py); a fixed OMP_NUM_THREADS would not follow cpu.limit
    assert "OMP_NUM_THREADS" not in SINGLEUSER.get("extraEnv", {})


def test_the_start_page_is_a_notebook_of_the_copied_repository():
    command = " ".join(SINGLEUSER["lifecycleHooks"]["postStart"]["exec"]["command"])
    source, copy = re.search(r"cp -r (\S+) \"\$HOME/([^\"]+)\"", command).groups()
    header = (ROOT / "jupyterhub" / "config.yaml").read_text()
    assert f"--target-repo-dir {source} " in header  # where repo2docker puts the repository in the image
    assert (ROOT / "environment.yml").exists()  # what repo2docker builds the image from
    page = SINGLEUSER["defaultUrl"].removeprefix(f"/lab/tree/{copy}/")
    assert (ROOT / page).is_file(), f"defaultUrl {SINGLEUSER['defaultUrl']} is not a file of the repository"


def test_idle_kernels_are_shut_down():
    kernels = SINGLEUSER["extraFiles"]["jupyter_server_config"]
    assert kernels["mountPath"].endswith("jupyter_server_config.json")
    assert kernels["data"]["MappingKernelManager"]["cull_idle_timeout"] > 0


@pytest.mark.parametrize("row", table_rows(section("For a class"), "node"), ids=lambda row: row[0])
def test_students_per_node_follow_from_the_guarantees(row):
    cpus, memory_gib = (float(x) for x in re.fullmatch(r"(\d+) CPUs, (\d+) GiB", row[0]).groups())
    reserved_gib = float(re.fullmatch(r"([\d.]+) GiB", row[1])[1])  # left to Kubernetes and the hub's own pods
    by_cpu = math.floor(cpus / SINGLEUSER["cpu"]["guarantee"])
    by_memory = math.floor((memory_gib - reserved_gib) * 2**30 / kubespawner_bytes(SINGLEUSER["memory"]["guarantee"]))
    assert int(row[2]) == min(by_cpu, by_memory)
