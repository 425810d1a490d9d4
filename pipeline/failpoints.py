"""Failpoints: a worker kills itself with SIGKILL at a named point, for crash tests.

Off unless ``ORDERFLOW_FAILPOINTS`` is set, e.g. ``after_broadcast:3`` (the third
time the point is reached) or ``after_build:1,while_confirming:2``. The kill is
real (no cleanup, no flush), exactly as an OOM kill or a power cut would be.
"""

from __future__ import annotations

import logging
import os
import signal

from pipeline.errors import ConfigError

log = logging.getLogger(__name__)
POINTS = frozenset({"after_build", "after_broadcast", "while_confirming", "after_trigger"})


class Failpoints:
    def __init__(self, spec: str | None) -> None:
        self._at: dict[str, int] = {}
        self._seen: dict[str, int] = {}
        for part in (spec or "").split(","):
            if not part.strip():
                continue
            name, _, count = part.strip().partition(":")
            if name not in POINTS or (count and not count.isdigit()):
                raise ConfigError(message=f"ORDERFLOW_FAILPOINTS: bad entry {part!r} "
                                  f"(points: {', '.join(sorted(POINTS))})")
            self._at[name] = int(count or 1)

    def hit(self, name: str) -> None:
        if name not in self._at:
            return
        self._seen[name] = self._seen.get(name, 0) + 1
        if self._seen[name] == self._at[name]:
            log.critical("failpoint %s reached: SIGKILL", name)
            os.kill(os.getpid(), signal.SIGKILL)
