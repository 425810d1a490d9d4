"""Which asyncio event loop the processes run on.

uvloop (libuv) by default: measured on the worker, the event loop and its selector were
the largest single share of CPU per order (see docs/benchmarks.md), and every process
here is an I/O multiplexer. ``ORDERFLOW_EVENT_LOOP=asyncio`` keeps the standard loop,
e.g. to rule uvloop out when chasing a bug.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


def install(name: str) -> None:
    """Make ``name`` the loop of every later ``asyncio.run`` / faust worker in this process."""
    if name == "asyncio":
        return
    import uvloop

    # A policy (not uvloop.run) because faust/mode create their loop through it too.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    log.debug("event loop: uvloop")
