"""The notebook series: stored clean, framed alike, and runnable top to bottom.

The frame and cleanliness checks are fast. The run check executes every notebook in
``notebooks/`` at the smoke preset (``NST_SMOKE=1``: tiny images, a few steps) in a real
Jupyter kernel, with ``notebooks/`` as the working directory, and fails on any error.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import nbformat
import pytest
from conftest import book_extension, is_appendix, run_notebook

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
LESSONS = [path for path in NOTEBOOKS if not path.name.startswith("00_")]  # 00 is the contents page

NAV_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")


def ids(path: Path) -> str:
    return path.name


def read(path: Path):
    return nbformat.read(path, as_version=4)


def is_navigation(cell) -> bool:
    """A markdown cell with the series' navigation: a link to the contents and to a neighbour."""
    labels = {label.lower() for label, _ in NAV_LINK.findall(cell.source)}
    return cell.cell_type == "markdown" and "contents" in labels and any(
        "previous" in label or "next" in label for label in labels
    )


def test_the_series_exists():
    names = [path.name for path in NOTEBOOKS]
    for stem in ("01_content_reconstruction", "02_gram_matrix", "03_style_reconstruction", "04_style_transfer"):
        assert f"{stem}.ipynb" in names, f"notebooks/{stem}.ipynb is missing"


def test_appendices_come_after_the_lessons():
    appendices = [path.name for path in LESSONS if is_appendix(path)]
    assert appendices == [path.name for path in LESSONS[len(LESSONS) - len(appendices):]], appendices
    assert "08_conventions.ipynb" in appendices


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_is_stored_clean(path):
    nb = read(path)
    nbformat.validate(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}, cell {index}: has outputs; clear them before committing"
            assert cell.execution_count is None, f"{path.name}, cell {index}: has an execution count; clear it"
    assert "widgets" not in nb.metadata, f"{path.name}: stored widget state; clear it before committing"


@pytest.mark.parametrize("path", LESSONS, ids=ids)
def test_notebook_has_the_frame(path):
    nb = read(path)
    cells = nb.cells
    number = path.name[:2]
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith(f"# {number}. "), (
        f"{path.name}: the first cell must start with the title '# {number}. ...'"
    )
    top = "\n".join(cell.source for cell in cells[:3])
    assert "What you will learn" in top, f"{path.name}: no 'What you will learn' at the top"
    assert any(is_navigation(cell) for cell in cells[:3]), f"{path.name}: no navigation line at the top"
    assert is_navigation(cells[-1]), f"{path.name}: the last cell must be the navigation line"
    tagged = [cell for cell in cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code", f"{path.name}: needs one code cell tagged 'parameters'"
    assert "NST_SMOKE" in tagged[0].source, f"{path.name}: the parameters cell has no smoke preset (NST_SMOKE)"
    headings = [line.strip() for cell in cells if cell.cell_type == "markdown" for line in cell.source.splitlines()]
    for heading in ("Summary",) if is_appendix(path) else ("Summary", "Exercises"):  # an appendix has no exercises
        assert any(re.fullmatch(rf"#+ {heading}", line) for line in headings), f"{path.name}: no '{heading}' heading"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_links_point_to_notebooks_that_exist(path):
    for cell in read(path).cells:
        if cell.cell_type != "markdown":
            continue
        for label, target in NAV_LINK.findall(cell.source):
            if target.startswith(("http://", "https://", "#")):
                continue
            assert (NOTEBOOK_DIR / target.split("#")[0]).exists(), f"{path.name}: link [{label}]({target}) is broken"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_runs_at_the_smoke_preset(path, smoke_environment):
    nb = read(path)
    run_notebook(nb, NOTEBOOK_DIR, path.name)
    outputs = [output for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"], f"{path.name}: a cell raised an error"
    if any("show_images" in cell.source or "plt." in cell.source for cell in nb.cells if cell.cell_type == "code"):
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name}: draws no figure"


@pytest.mark.slow
def test_a_hanging_cell_fails_the_run_and_names_the_notebook_and_the_cell(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell("import time\ntime.sleep(3600)  # a stall")])
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception) as failure:
        run_notebook(nb, tmp_path, "hang.ipynb", cell_timeout=5)
    assert time.monotonic() - started < 60, "the run waited on the hanging cell"
    assert "hang.ipynb, cell 1 ('import time') ran 5 s, its limit" in str(failure.value), str(failure.value)


def test_a_cell_whose_reply_is_read_only_when_the_wait_times_out_fails_too():
    """nbclient passes such a cell after a stall as long as its timeout; the book's wrapper fails it."""
    from nbclient.exceptions import CellTimeoutError

    timed = book_extension("cell_time_limit").timed
    cell = nbformat.v4.new_code_cell("blend()")

    async def reply_after(client, cell, cell_index, seconds):
        await asyncio.sleep(seconds)
        return cell

    class Client:
        timeout = 0.3

    with pytest.raises(CellTimeoutError, match="Cell 18 took 0 s, the whole per-cell limit") as failure:
        asyncio.run(timed(reply_after)(Client(), cell, 18, seconds=0.35))
    assert "blend()" in str(failure.value)  # the cell's source is shown
    assert asyncio.run(timed(reply_after)(Client(), cell, 18, seconds=0.01)) is cell  # in time: no error
    wrapped = timed(reply_after)
    assert timed(wrapped) is wrapped  # the book's setup may run twice: wrapped once
