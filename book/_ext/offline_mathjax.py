"""Serve MathJax from the book itself, so its maths renders without a network.

Sphinx loads MathJax 3 from a CDN by default; a classroom behind a proxy, a laptop on
a train or this machine (no internet) would then show raw ``$\\mathcal{L}$`` source.
The ``[book]`` extra installs ``django-static-mathjax``, a wheel that only carries
MathJax 3's files (its Python package ``mathjax`` has no Django dependency). This
extension points ``mathjax_path`` at ``_static/mathjax/tex-mml-chtml.js`` (the same
component Sphinx uses from the CDN) and copies it there once the HTML is written, with
what it loads on demand: its fonts, the TeX extensions it autoloads, the menu and the
accessibility helpers (about 5 MB; the other components and the 20 MB speech-rule
engine, which these pages never load, are left out).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)
COMPONENT = "tex-mml-chtml.js"
LOADED_ON_DEMAND = ("output/chtml", "input/tex", "ui", "a11y", "adaptors")


def _es5_dir() -> Path | None:
    try:
        import mathjax
    except ImportError:
        return None
    path = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    return path if (path / COMPONENT).exists() else None


def _use_local_copy(app: Sphinx, config) -> None:
    if _es5_dir() is None:
        logger.warning("MathJax is not installed, so the book loads it from a CDN and its maths needs a network: "
                       "install the book's dependencies with `pip install -e '.[book]'` (make book does this)")
        return
    config.mathjax_path = f"mathjax/{COMPONENT}"  # relative paths are relative to _static


def _copy(app: Sphinx, exception: Exception | None) -> None:
    source = _es5_dir()
    if exception is not None or source is None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / COMPONENT, target / COMPONENT)
    for folder in LOADED_ON_DEMAND:
        shutil.copytree(source / folder, target / folder, dirs_exist_ok=True)


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _use_local_copy)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
