"""Exact integer DEX math shared by the local market and the on-chain venue adapters.

One implementation of each program's swap math (Raydium CP-Swap in :mod:`.cpmm`, Meteora
DLMM in :mod:`.dlmm`), checked swap by swap against the real programs, so a quote the
engine computes for a real pool and the payout of the simulated market are the same
numbers. It imports nothing of orderflow, pipeline, ingress, sinks or localnet (an
import-linter contract), so both sides of the engine/world boundary may use it.
"""

from dexmath import cpmm, dlmm

__all__ = ["cpmm", "dlmm"]
