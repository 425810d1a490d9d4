"""The local market's ``GET /swap/v1/pools``: every pool's full book state, read as exact
curves for the trigger engine (``pipeline/trigger_curves.py``).

The market publishes what its own quotes are computed from (CP-Swap reserves and fee rate;
DLMM bins, fee parameters, volatility state and the cluster time), so the curve built here
pays, for any amount, exactly what ``/quote`` would answer on that state. Only the local
market serves this endpoint; Jupiter does not (on-chain pools are read from the chain).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dexmath import cpmm, dlmm
from pipeline.model import Venue
from pipeline.trigger_curves import CpmmCurve, Curve, DlmmCurve


@dataclass(frozen=True, slots=True)
class MarketPool:
    """One listed pool: its key, the vault accounts that hold its reserves, its curve and
    a fingerprint of the state the curve was read from (equal fingerprints, equal quotes
    at the same cluster time); its venue, reserves (of ``curve.mint_a``, ``mint_b``) and
    the slot it was launched in (0: listed from the start)."""

    amm_key: str
    vaults: tuple[str, str]
    curve: Curve
    fingerprint: tuple[Any, ...]
    venue: Venue = Venue.RAYDIUM
    reserves: tuple[int, int] = (0, 0)
    created_slot: int = 0

    def reserve_of(self, mint: str) -> int:
        return self.reserves[0] if mint == self.curve.mint_a else self.reserves[1]


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    pools: tuple[MarketPool, ...]
    slot: int
    unix_timestamp: int


def _cpmm(doc: dict[str, Any]) -> CpmmCurve:
    rate = int(doc["cpmm"]["tradeFeeRate"])
    return CpmmCurve(doc["mintX"], doc["mintY"], int(doc["reserveX"]), int(doc["reserveY"]),
                     cpmm.FeeRates(rate))


def _dlmm(doc: dict[str, Any], now: int) -> DlmmCurve:
    d = doc["dlmm"]
    params = dlmm.FeeParams(
        base_factor=int(d["baseFactor"]), filter_period=int(d["filterPeriod"]),
        decay_period=int(d["decayPeriod"]), reduction_factor=int(d["reductionFactor"]),
        variable_fee_control=int(d["variableFeeControl"]),
        max_volatility_accumulator=int(d["maxVolatilityAccumulator"]),
        protocol_share=int(d["protocolShare"]),
        base_fee_power_factor=int(d["baseFeePowerFactor"]))
    vol = dlmm.VolatilityState(
        volatility_accumulator=int(d["volatilityAccumulator"]),
        volatility_reference=int(d["volatilityReference"]),
        index_reference=int(d["indexReference"]),
        last_update_timestamp=int(d["lastUpdateTimestamp"]))
    bins = {int(b["binId"]): dlmm.Bin(int(b["amountX"]), int(b["amountY"])) for b in d["bins"]}
    state = dlmm.DlmmState(int(d["binStep"]), int(d["activeId"]), bins, params, vol,
                           int(d["feeX"]), int(d["feeY"]))
    return DlmmCurve(doc["mintX"], doc["mintY"], state, now)


def _fingerprint(doc: dict[str, Any]) -> tuple[Any, ...]:
    """What the quote depends on, cheap to compare (not the bins themselves: a swap moves
    reserves, and bins move only with the totals and the active id)."""
    d = doc.get("dlmm") or {}
    return (doc["reserveX"], doc["reserveY"], d.get("activeId"), d.get("feeX"), d.get("feeY"),
            d.get("volatilityAccumulator"), d.get("lastUpdateTimestamp"))


def parse_pools(doc: dict[str, Any]) -> MarketSnapshot:
    """The ``/pools`` answer as curves; a pool of a kind this engine does not know is
    skipped (the market may list more than it can quote exactly)."""
    now = int(doc["unixTimestamp"])
    pools: list[MarketPool] = []
    for p in doc["pools"]:
        curve: Curve
        if "cpmm" in p:
            curve, venue = _cpmm(p), Venue.RAYDIUM
        elif "dlmm" in p:
            curve, venue = _dlmm(p, now), Venue.METEORA
        else:
            continue
        pools.append(MarketPool(p["ammKey"], (p["vaultX"], p["vaultY"]), curve,
                                _fingerprint(p), venue,
                                (int(p["reserveX"]), int(p["reserveY"])),
                                int(p.get("createdSlot", 0))))
    return MarketSnapshot(tuple(pools), int(doc["contextSlot"]), now)
