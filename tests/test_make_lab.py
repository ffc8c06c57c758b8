"""`make lab`, the README's first command, started exactly as a user types it.

JupyterLab refuses to run as root without ``--allow-root``, and root is the
usual user in Docker images and cloud notebooks. These tests run the
Makefile's own ``lab`` target (browser off, a free port, no token) with a
fresh home, Jupyter config, data and runtime folders, and check that the
server answers and serves the series' notebooks. On a root CI machine the
Makefile's plan for an unprivileged user (``nobody``) is checked too: no
``--allow-root`` there.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SERIES = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def _run_make_lab(home: Path, prefix: list[str]) -> None:
    if shutil.which("make") is None:
        pytest.skip("`make` is not installed; the README's commands need it")
    if not (ROOT / ".venv" / ".installed").exists():
        pytest.skip("run through `make test`, which installs .venv first (this test starts `make lab` from it)")
    port = _free_port()
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(HOME=str(home), JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), XDG_CACHE_HOME=str(home / "cache"))
    lab_args = f"--no-browser --port={port} --port-retries=0 --ServerApp.ip=127.0.0.1 --IdentityProvider.token="
    log = home / "lab.log"
    with log.open("wb") as out:
        process = subprocess.Popen([*prefix, "make", "-C", str(ROOT), "lab", f"LAB_ARGS={lab_args}"], env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"`make lab` exited with code {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                status, _ = _get(f"{url}/api/status")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"`make lab` did not answer on {url} within 90 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        status, body = _get(f"{url}/api/contents")
        served = sorted(item["name"] for item in json.loads(body)["content"] if item["type"] == "notebook")
        assert served == SERIES, f"`make lab` serves {served}, not the series {SERIES}"
        status, page = _get(f"{url}/lab/tree/00_contents.ipynb")
        assert status == 200 and b"JupyterLab" in page
        status, body = _get(f"{url}/api/kernelspecs")
        assert "python3" in json.loads(body)["kernelspecs"], "the series' kernel is not installed"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_make_lab_serves_the_series_as_the_current_user(tmp_path):
    _run_make_lab(tmp_path / "home", [])


def _planned_lab_command(prefix: list[str]) -> str:
    plan = subprocess.run([*prefix, "make", "-n", "-C", str(ROOT), "lab"], capture_output=True, text=True, check=True)
    return next(line for line in plan.stdout.splitlines() if "jupyter lab" in line)


@pytest.mark.skipif(os.geteuid() != 0, reason="runs only as root: it compares root with the unprivileged `nobody`")
def test_make_lab_allows_root_only_for_root():
    """A normal user's command has no --allow-root (Jupyter's warning stays meaningful for them)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or shutil.which("make") is None:
        pytest.skip("needs make and setpriv (util-linux) to drop root")
    assert "--allow-root" in _planned_lab_command([])
    as_nobody = _planned_lab_command([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"])
    assert "jupyter lab" in as_nobody and "--allow-root" not in as_nobody
