#!/usr/bin/env bash
# Does the package work on the lowest torch and torchvision that pyproject.toml allows?
# Builds a virtual environment with those releases (the newest patch of each floor) and runs the
# fast tests there (no slow, no browser). Not part of `make test`: torch 2.2 for Linux brings its
# CUDA libraries from PyPI, about 2.5 GB.
#
#   scripts/check_floor.sh [pytest arguments]      e.g. scripts/check_floor.sh -x
#
# FLOOR_VENV: where the environment goes (default .venv-floor; kept, so a second run installs nothing).
# PYTHON: the interpreter that makes it (default python3; pyproject.toml asks for 3.11 or later).
# PIP_EXTRA_INDEX_URL etc. are pip's own, e.g. an index of CPU-only torch wheels to avoid the CUDA libraries.
# Works as root and as a normal user: everything is written inside FLOOR_VENV and the clone.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${FLOOR_VENV:-.venv-floor}"
PYTHON="${PYTHON:-python3}"
export NST_DATA_DIR="${NST_DATA_DIR:-$(cd .. && pwd)/shared/images}"
export MPLBACKEND=Agg

# "torch>=2.2" in pyproject.toml -> "torch==2.2.*" (and the same for torchvision).
mapfile -t FLOOR < <("$PYTHON" - <<'EOF'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
for name in ("torch", "torchvision"):
    (floor,) = [m.group(1) for d in deps if (m := re.fullmatch(rf"{name}\s*>=\s*([\d.]+)", d.split(";")[0].strip()))]
    print(f"{name}=={floor}.*")
EOF
)
[ "${#FLOOR[@]}" = 2 ] || { echo "check_floor.sh: no torch/torchvision floor (>=) in pyproject.toml" >&2; exit 1; }
# torch before 2.3 was built against NumPy 1 and cannot import NumPy 2's C API.
NUMPY="numpy<2"

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q -e ".[dev]" "${FLOOR[@]}" "$NUMPY"
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (nst-notebooks)" >/dev/null
"$VENV/bin/python" -c 'import numpy, torch, torchvision; print("floor:", "torch", torch.__version__,
    "torchvision", torchvision.__version__, "numpy", numpy.__version__)'
"$VENV/bin/python" -m pytest -q -m "not slow and not browser" "$@"
