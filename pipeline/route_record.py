"""The route an order took, as the status events record it (``data.route``).

An addition to ``order-status`` v1, backwards compatible: an optional object on the
``building`` event (what the executor chose, before anything is sent) and the
``confirmed`` event (what the landed transaction did), with its own ``version`` so it
can grow without touching the event's ``schemaVersion``; a consumer that does not know
it ignores it, and every field v1 had keeps its meaning (``venue`` is the venue of the
larger leg). The shape is ``$defs/route`` in ``pipeline/contracts/order-status.v1.schema.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.model import RouteLeg

ROUTE_VERSION = 1


def route_to_json(legs: Sequence[RouteLeg]) -> dict[str, Any]:
    """``{"version": 1, "split": bool, "legs": [{venue, pool, amountIn, expectedOut,
    minOut, fractionBps}]}``: amounts in base units, ``fractionBps`` of the order's input
    (the legs' sum to 10000; their ``amountIn`` to the order's)."""
    return {
        "version": ROUTE_VERSION,
        "split": len(legs) > 1,
        "legs": [{"venue": leg.venue.value, "pool": leg.pool, "amountIn": leg.amount_in,
                  "expectedOut": leg.expected_out, "minOut": leg.min_out,
                  "fractionBps": leg.fraction_bps} for leg in legs],
    }
