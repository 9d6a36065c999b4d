"""pdfium, one call at a time per process.

pdfium is not thread-safe, and pypdfium2 says so: no two of its calls may run at the same
time in one process, not even on different documents. Called from several threads at once
(`asyncio.to_thread`, eight extractions in flight) an extract worker died of SIGSEGV and of
heap corruption (#17), and a plain 2-thread loop crashed every time.

So every pdfium call holds `LOCK` (a caller on any thread is safe), and async code hands its
pdfium work to `run()`, which executes it on one dedicated thread: waiting for pdfium then
queues coroutines, not the default executor's threads (storage reads and unpacking share
those). Objects pypdfium2 would close from a garbage-collector finaliser (on whatever thread
runs the collection) are closed explicitly under the lock instead.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

LOCK = threading.RLock()
_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pdfium")


def _locked(call: Callable[[], T]) -> T:
    with LOCK:
        return call()


async def run(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)` on the pdfium thread, under the lock."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_THREAD, _locked, functools.partial(fn, *args, **kwargs))
