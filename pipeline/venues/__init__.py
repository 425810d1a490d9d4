"""Venue adapters: one protocol (:mod:`pipeline.venues.base`), one module per venue.

``jupiter`` speaks Jupiter's Swap API v1 (the real aggregator, and the local market,
which serves the same shape). Venue knowledge (labels, error codes, how a venue enforces
the minimum output) stays inside its module; program error codes go to
``pipeline.errors.PROGRAM_ERRORS``.
"""

from pipeline.venues.base import SwapTransaction, Venues
from pipeline.venues.jupiter import (
    DEX_LABELS,
    JupiterVenues,
    check_enforced_min_out,
    parse_quote,
)

__all__ = ["DEX_LABELS", "JupiterVenues", "SwapTransaction", "Venues", "check_enforced_min_out",
           "parse_quote"]
