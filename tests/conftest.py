"""Shared fixtures. Tests never reach the network, and run on the CPU.

On a CUDA host the GPUs are hidden from the tests and every kernel or command they start
(``CUDA_VISIBLE_DEVICES=""``), so that their figures are the CPU's everywhere; the CUDA paths
are tested by their rules (``tests/test_speed.py``, ``tests/test_memory.py``) and timed by
``make bench``. ``NST_TEST_GPU=1`` leaves the GPUs visible.

The paper's images come from $NST_DATA_DIR (.ci/run points it at ../shared/images).
Where it is missing, tests that need them skip, except under CI (CI=true), where
they fail: CI must exercise them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from pathlib import Path

if os.environ.get("NST_TEST_GPU") != "1":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch looks for a GPU

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def _data_dir() -> Path | None:
    value = os.environ.get("NST_DATA_DIR")
    if value and (Path(value) / "tubingen.jpg").exists():
        return Path(value)
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding the paper's images; skip (fail under CI) without it."""
    found = _data_dir()
    if found is None:
        message = "the paper's images are not available: set NST_DATA_DIR to a folder holding them"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI must not skip this)")
        pytest.skip(message)
    return found


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Any attempt to download fails loudly instead of reaching the network."""
    import pooch

    def refuse(*args, **kwargs):
        raise ConnectionError("tests never reach the network")

    monkeypatch.setattr(pooch, "retrieve", refuse)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Downloads would go to a private cache, never the user's."""
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path_factory.mktemp("nst-cache")))


@pytest.fixture(scope="session")
def caffe_vgg():
    from nst_helpers import load_vgg19

    return load_vgg19("caffe", pooling="avg", device="cpu")


@pytest.fixture(scope="session")
def random_vgg():
    from nst_helpers import load_vgg19

    return load_vgg19("random", pooling="avg", device="cpu")


@pytest.fixture
def small_run(caffe_vgg) -> dict:
    """Options for a short run on the raw Caffe VGG-19 (the reference network: ``term_scales`` is (1, 1), so
    the defaults are the balance's own numbers), without a progress bar."""
    return {"network": caffe_vgg, "progress": False}


@pytest.fixture
def pair(smooth_image) -> tuple[torch.Tensor, torch.Tensor]:
    """A 40x48 'photo' (``smooth_image``) and a 32x32 'painting' with different statistics."""
    g = torch.Generator().manual_seed(1)
    style = (torch.rand(1, 3, 32, 32, generator=g) * 0.6 + smooth_image[..., :32, :32] * 0.4).clamp(0, 1)
    return smooth_image, style


@pytest.fixture
def smooth_image() -> torch.Tensor:
    """A deterministic, smooth synthetic RGB image (1, 3, 40, 48) in [0, 1]."""
    y = torch.linspace(0, 1, 40).view(40, 1)
    x = torch.linspace(0, 1, 48).view(1, 48)
    r = 0.5 + 0.5 * torch.sin(6 * x + 3 * y)
    g = 0.5 + 0.5 * torch.cos(5 * y - 2 * x)
    b = (x + y) / 2
    return torch.stack([r, g, b]).unsqueeze(0)


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def chromium():
    """Headless Chromium driven by Playwright, launched from Debian's binary (``playwright install`` cannot
    download browsers offline); skips without it."""
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("Chromium is not installed, so this cannot be tested in a real browser: "
                    "install Debian's package with `apt-get install chromium` (.ci/run does this as root)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


#: The paper's images a smoke run of the notebooks (and their solutions) reads.
SMOKE_IMAGES = ("tubingen", "starry_night", "shipwreck", "the_scream", "composition_vii")


def is_appendix(path: Path) -> bool:
    """A notebook whose title says "Appendix" (``# 08. Appendix: ...``): framed like a lesson, with no exercises,
    self-checks or worked solution."""
    cells = json.loads(path.read_text())["cells"]
    return re.match(r"# \d\d\. Appendix\b", "".join(cells[0]["source"])) is not None


def book_extension(name: str):
    """A module of ``book/_ext`` (the book's Sphinx extensions), imported by path."""
    path = Path(__file__).resolve().parents[1] / "book" / "_ext" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"book_ext_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: Seconds a notebook cell may run at the smoke preset (its cells take seconds): a cell that reaches it is a stall.
SMOKE_CELL_TIMEOUT = 120


def run_notebook(nb, cwd: Path, name: str, cell_timeout: float = SMOKE_CELL_TIMEOUT) -> None:
    """Execute ``nb`` top to bottom in a fresh kernel, in ``cwd``; fails the test on an error, and on a cell that
    runs ``cell_timeout`` seconds, naming the notebook and the cell (the book's rule, ``book/_ext/cell_time_limit.py``)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError

    class Client(NotebookClient):
        async_execute_cell = book_extension("cell_time_limit").timed(NotebookClient.async_execute_cell)

    client = Client(nb, timeout=cell_timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    running = {}
    client.on_cell_execute = lambda cell, cell_index: running.update(cell=cell, index=cell_index)
    try:
        client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    except CellTimeoutError as err:
        first_line = running["cell"].source.strip().splitlines()[0]
        pytest.fail(f"{name}, cell {running['index']} ({first_line!r}) ran {cell_timeout:g} s, its limit: {err}",
                    pytrace=False)


@pytest.fixture
def smoke_environment(monkeypatch):
    """Environment of the kernel: smoke preset, local images only, inline figures."""
    if "NST_DATA_DIR" not in os.environ:
        shared = Path(__file__).resolve().parents[2] / "shared" / "images"
        if shared.is_dir():
            monkeypatch.setenv("NST_DATA_DIR", str(shared))
    from nst_helpers import sample_image

    for name in SMOKE_IMAGES:
        try:
            sample_image(name, download=False)  # tests never reach the network
        except FileNotFoundError as err:
            pytest.skip(f"the paper's images are not available locally: {err}")
    monkeypatch.setenv("NST_SMOKE", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # figures as a user sees them
