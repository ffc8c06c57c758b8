"""The rendered book (``make book``) in headless Chromium: pages load, links work, maths renders, every figure shows.

With ``NST_BOOK_HTML`` pointing at a built book (``.ci/run`` builds the full one with
``make book`` first), that book is checked. Otherwise a smoke book (``NST_SMOKE=1``:
32 px, a few steps) is built into the test's temporary folder with the project's own
config, its execution cache moved there so that it never mixes with ``make book``'s.

The pages are served on a loopback port and every request that leaves the machine is
refused and recorded: the book must render offline (MathJax from the book itself,
no widget JavaScript from a CDN).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(path.stem for path in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
#: The book's markdown pages (no code), as the table of contents lists them after the notebooks: "book/teachers".
PAGES = re.findall(r"^\s*- file: (book/\S+)\s*$", (ROOT / "book" / "_toc.yml").read_text(), flags=re.M)
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")


def _book_config(out: Path, **execute) -> Path:
    """The project's book config written to ``out``, its cache there too, with ``execute`` settings changed."""
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())
    config["execute"].update(cache=str(out / "jupyter_cache"), **execute)
    extensions = config["sphinx"]["local_extensions"]
    for name, folder in extensions.items():  # relative to the config file, which moves
        extensions[name] = str(ROOT / "book" / folder)
    (out / "_config.yml").write_text(yaml.safe_dump(config))
    return out / "_config.yml"


def _jupyter_book() -> str:
    try:
        import jupyter_book  # noqa: F401
    except ImportError:
        message = "Jupyter Book is not installed: `pip install -e '.[book]'` (make book installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI must not skip this)")
        pytest.skip(message)
    return str(Path(sys.executable).parent / "jupyter-book")


def _build_smoke_book(out: Path, data_dir: Path) -> Path:
    _book_config(out)
    env = {**os.environ, "NST_SMOKE": "1", "NST_PROGRESS": "0", "NST_DATA_DIR": str(data_dir),
           "NST_CACHE_DIR": str(out / "nst-cache")}
    env.pop("MPLBACKEND", None)  # as `make book`: Agg would drop inline figures
    command = [_jupyter_book(), "build", str(ROOT), "--config",
               str(out / "_config.yml"), "--toc", str(ROOT / "book" / "_toc.yml"), "--path-output", str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return out / "_build" / "html"


@pytest.fixture(scope="module")
def book(tmp_path_factory, data_dir) -> Path:
    """The built book's html folder: NST_BOOK_HTML's, or a smoke build made here."""
    given = os.environ.get("NST_BOOK_HTML")
    if given:
        html = Path(given).resolve()
        assert (html / "index.html").exists(), f"NST_BOOK_HTML={given} holds no built book: run `make book` first"
        return html
    _jupyter_book()
    return _build_smoke_book(tmp_path_factory.mktemp("book"), data_dir)


def test_a_hanging_cell_fails_the_book_build_and_names_the_notebook_and_the_cell(tmp_path):
    """`make book`'s config with its per-cell timeout cut to 5 s, on a one-page book whose second cell hangs."""
    import nbformat

    source = tmp_path / "source"
    source.mkdir()
    cells = [nbformat.v4.new_markdown_cell("# A page that hangs"), nbformat.v4.new_code_cell("x = 1"),
             nbformat.v4.new_code_cell("import time\ntime.sleep(3600)  # a stall")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), source / "hang.ipynb")
    (source / "_toc.yml").write_text("format: jb-book\nroot: hang\n")
    config = _book_config(tmp_path, timeout=5)
    command = [_jupyter_book(), "build", str(source), "--config", str(config), "--toc", str(source / "_toc.yml"),
               "--path-output", str(tmp_path)]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    printed = done.stdout + done.stderr
    assert done.returncode != 0, "the build passed over a hanging cell:\n" + printed[-3000:]
    assert time.monotonic() - started < 300, "the build waited on the hanging cell"
    assert "hang.ipynb" in printed and "time.sleep(3600)" in printed and "timed out" in printed, printed[-3000:]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass


@contextlib.contextmanager
def serve(folder: Path):
    """Serve ``folder`` on a free loopback port; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def site(book, chromium):
    """(base URL, a page, the requests it tried to send off the machine: refused and recorded)."""
    with serve(book) as url:
        page = chromium.new_page(viewport={"width": 1400, "height": 1000})
        outside: list[str] = []

        def route(request_route):
            address = request_route.request.url
            if urlparse(address).hostname in ("127.0.0.1", None) or address.startswith("data:"):
                request_route.continue_()
            else:
                outside.append(address)
                request_route.abort()

        page.route("**/*", route)
        try:
            yield url, page, outside
        finally:
            page.close()


def _figures_made(book: Path, name: str) -> int:
    """How many images the executed notebook's outputs hold (what the page must show)."""
    executed = json.loads((book.parent / "jupyter_execute" / "notebooks" / f"{name}.ipynb").read_text())
    count = 0
    for cell in executed["cells"]:
        if "remove-output" in cell.get("metadata", {}).get("tags", []):
            continue
        for output in cell.get("outputs", []):
            count += any(kind in output.get("data", {}) for kind in IMAGE_TYPES)
    return count


def test_home_page_lists_the_series_and_its_links_work(site, tmp_path):
    url, page, outside = site
    outside.clear()
    page.goto(f"{url}/index.html")
    page.wait_for_url("**/notebooks/00_contents.html")  # index.html redirects to the contents page
    assert "Neural style transfer" in page.title(), page.title()
    page.screenshot(path=tmp_path / "home.png", full_page=False)
    sidebar = page.locator("nav.bd-docs-nav a.reference.internal")
    titles = [sidebar.nth(i).inner_text() for i in range(sidebar.count())]
    assert len(titles) == len(NOTEBOOKS) + len(PAGES), titles  # the home page first, every notebook, the pages
    for name in NOTEBOOKS:  # every page answers
        response = page.request.get(f"{url}/notebooks/{name}.html")
        assert response.ok, (name, response.status)
    page.locator("a.right-next").first.click()  # "next" goes to notebook 01
    page.wait_for_load_state("load")
    assert page.url.endswith(f"notebooks/{NOTEBOOKS[1]}.html"), page.url
    assert outside == [], f"the page asked the network for {outside}"


def test_the_page_for_teachers_is_in_the_book_and_the_contents_link_to_it(site, book, tmp_path):
    """book/teachers.md: listed in the toc, rendered, in the sidebar and linked from the contents page; its links work,
    and its table of times has a row for every notebook."""
    assert "book/teachers" in PAGES, "book/_toc.yml does not list book/teachers"
    url, page, outside = site
    outside.clear()
    page.goto(f"{url}/notebooks/00_contents.html")
    page.wait_for_load_state("load")
    link = page.locator("article a[href$='book/teachers.html']")
    assert link.count() == 1, "the contents page has no link to the page for teachers"
    sidebar = page.locator("nav.bd-docs-nav a.reference.internal[href$='book/teachers.html']")
    assert sidebar.count() == 1, "the page for teachers is not in the sidebar"
    link.click()
    page.wait_for_load_state("load")
    assert page.url.endswith("book/teachers.html"), page.url
    assert page.locator("article h1").first.inner_text().startswith("For teachers")
    page.screenshot(path=tmp_path / "teachers.png", full_page=False)
    text = page.locator("article").inner_text()
    missing = [name for name in NOTEBOOKS if name not in text]  # the table of times: a row per notebook, by name
    assert not missing, f"the page for teachers has no time for {missing}"
    targets = page.eval_on_selector_all("article a.reference.internal", "links => links.map(a => a.href)")
    assert any(target.split("#")[0].endswith("notebooks/04_style_transfer.html") for target in targets), targets
    for target in targets:  # every link to another page of the book answers
        response = page.request.get(target.split("#")[0])
        assert response.ok, (target, response.status)
    page.wait_for_function(  # its maths (alpha/beta) typeset, as on the notebooks' pages
        "() => [...document.querySelectorAll('article .math')].every(m => m.querySelector('mjx-container'))",
        timeout=60_000)
    assert page.locator("article mjx-merror").count() == 0, "MathJax could not typeset some maths"
    assert outside == [], f"the page for teachers asked the network for {outside}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_page_renders_its_maths_and_every_figure(site, book, name, tmp_path):
    url, page, outside = site
    outside.clear()
    page.goto(f"{url}/notebooks/{name}.html")
    page.wait_for_load_state("load")
    maths = page.locator("article .math")
    if maths.count():
        page.wait_for_function(  # MathJax typesets after load
            "() => [...document.querySelectorAll('article .math')].every(m => m.querySelector('mjx-container'))",
            timeout=60_000)
        assert page.locator("article mjx-merror").count() == 0, "MathJax could not typeset some maths"
    images = page.locator("article .cell_output img")
    expected = _figures_made(book, name)
    assert images.count() == expected, f"{name}: {images.count()} images on the page, {expected} in the outputs"
    for i in range(images.count()):
        images.nth(i).scroll_into_view_if_needed()
        loaded = images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
        assert loaded, f"{name}: image {i} ({images.nth(i).get_attribute('src')}) did not load"
    assert page.locator("article .output.traceback, article .output.error").count() == 0, f"{name}: an error output"
    page.screenshot(path=tmp_path / f"{name}.png", full_page=False)
    assert outside == [], f"{name}: the page asked the network for {outside}"


def test_notebooks_with_equations_have_rendered_maths(site):
    """The series' maths lives in 01-04: a book where none rendered would pass the test above vacuously."""
    url, page, outside = site
    outside.clear()
    counts = {}
    for name in NOTEBOOKS[1:5]:
        page.goto(f"{url}/notebooks/{name}.html")
        page.wait_for_load_state("load")
        page.wait_for_function("() => document.querySelectorAll('article mjx-container').length > 0", timeout=60_000)
        counts[name] = page.locator("article mjx-container").count()
    assert all(count >= 3 for count in counts.values()), counts
