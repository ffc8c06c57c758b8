"""A notebook cell that reaches the per-cell time limit fails the run, naming the cell; no stall passes silently.

nbclient waits for each cell's reply at most ``timeout`` seconds (``execute.timeout`` in ``book/_config.yml``).
When no reply comes, it raises ``CellTimeoutError``. But a reply can also arrive and lie unread: nbclient
mirrors Output widgets by sending messages on the shell socket it is waiting on, and such a send can clear
the socket's wake-up after the reply has landed (jupyter/nbclient#312). The wait then ends at the timeout
with the reply in hand, and the notebook passes after a stall as long as the timeout (``make book`` once sat
1,200 s in notebook 07 and exited 0). ``timed`` wraps the cell runner so that a cell that took the whole
timeout raises ``CellTimeoutError`` as well; jupyter-cache reports it and myst-nb fails the build, naming
the notebook. The tests' notebook runner uses the same wrapper (``tests/conftest.py``).

As a Sphinx extension it wraps ``nbclient.NotebookClient.async_execute_cell`` for the build's process (the
only process-wide change it makes): jupyter-cache builds its own client, so there is no instance to reach.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError

ExecuteCell = Callable[..., Awaitable[Any]]


def timed(execute_cell: ExecuteCell) -> ExecuteCell:
    """``NotebookClient.async_execute_cell``, raising ``CellTimeoutError`` for a cell that took the client's timeout."""
    if getattr(execute_cell, "timed", False):
        return execute_cell

    @functools.wraps(execute_cell)
    async def run(self: NotebookClient, cell: Any, cell_index: int, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        result = await execute_cell(self, cell, cell_index, *args, **kwargs)
        took = time.monotonic() - started
        if self.timeout and took >= self.timeout:
            raise CellTimeoutError.error_from_timeout_and_cell(
                f"Cell {cell_index} took {took:.0f} s, the whole per-cell limit: a stall (its reply came only when "
                "the wait timed out), or a preset too large for this machine. "
                "benchmarks/notebook_stall.py reproduces stalls", self.timeout, cell)
        return result

    run.timed = True  # type: ignore[attr-defined]
    return run


def setup(app: Any) -> dict[str, Any]:
    NotebookClient.async_execute_cell = timed(NotebookClient.async_execute_cell)  # type: ignore[method-assign]
    return {"parallel_read_safe": True, "parallel_write_safe": True}
