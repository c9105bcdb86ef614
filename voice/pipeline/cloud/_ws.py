"""Closing WebSockets without making the caller wait for the closing handshake.

A clean close costs a round trip to the provider (and up to ``close_timeout``
when it does not answer); nobody on a call should wait for that after the
transcript or the last audio chunk is in hand.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_closer: ThreadPoolExecutor | None = None
_pending: set[asyncio.Future[Any]] = set()


def close_in_background(ws: Any) -> None:
    """Close a ``websockets.sync`` connection on a helper thread."""
    global _closer
    if _closer is None:
        _closer = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ws-close")
    _closer.submit(close_quietly, ws)


def close_quietly(ws: Any) -> None:
    with contextlib.suppress(Exception):
        ws.close()


def aclose_in_background(ws: Any) -> None:
    """Close a ``websockets.asyncio`` connection in a task nobody awaits."""
    task = asyncio.ensure_future(_aclose(ws))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def _aclose(ws: Any) -> None:
    with contextlib.suppress(Exception):
        await ws.close()
