"""Venue adapters: one protocol (:mod:`pipeline.venues.base`), one module per venue.

``jupiter`` speaks Jupiter's Swap API (v1 ``/quote`` + ``/swap-instructions``, or v2
``/build``; the local market serves the v1 shape) and builds the transaction itself.
Venue knowledge (labels, error codes, how a venue enforces
the minimum output) stays inside its module; program error codes go to
``pipeline.errors.PROGRAM_ERRORS``.
"""

from pipeline.venues.base import SwapTransaction, Venues
from pipeline.venues.jupiter import (
    DEX_LABELS,
    JupiterConfig,
    JupiterVenues,
    check_enforced_min_out,
    parse_quote,
)

__all__ = ["DEX_LABELS", "JupiterConfig", "JupiterVenues", "SwapTransaction", "Venues",
           "check_enforced_min_out", "parse_quote"]
