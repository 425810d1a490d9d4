"""Pool definitions: what the local market lists, how each pool is seeded, how it is shown.

Every pool has its own *maker* keypair that owns both vaults (ordinary SPL token accounts,
the maker's ATAs). The vault balances are the pool's reserves; ``/pools`` publishes the
full book state so a client can recompute any quote with :mod:`cpmm` / :mod:`dlmm`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from dexmath import cpmm, dlmm
from localnet.market.book import CpmmBook, DlmmBook
from localnet.market.tokens import SOL, USDC, USDT, MarketToken
from localnet.market.txbuilder import ata

RAYDIUM_CPMM = "Raydium CP"  # the real Jupiter label of Raydium CP-Swap pools
METEORA_DLMM = "Meteora DLMM"
LABELS = (RAYDIUM_CPMM, METEORA_DLMM)


@dataclass(frozen=True, slots=True)
class CpmmSpec:
    """A constant-product pool: ``depth_x`` whole X tokens at ``price`` Y per X (UI units)."""

    x: MarketToken
    y: MarketToken
    price: Fraction
    depth_x: int
    trade_fee_rate: int  # per 1e6: 2500 = 0.25%, 100 = 0.01%


@dataclass(frozen=True, slots=True)
class DlmmSpec:
    """A DLMM pool: ``x_per_bin`` X tokens (or their Y worth) in each of ``2*bins+1`` bins."""

    x: MarketToken
    y: MarketToken
    price: Fraction
    bin_step: int
    params: dlmm.FeeParams
    bins_each_side: int
    x_per_bin: Fraction


PoolSpec = CpmmSpec | DlmmSpec

# Prices differ a little between venues and CPMM/DLMM fees differ, so the best venue
# depends on pair and side (e.g. SOL->USDC pays more on the CPMM, USDC->SOL on the DLMM,
# and the other way round for SOL/USDT); drift then moves each pool on its own.
DEFAULT_POOLS: tuple[PoolSpec, ...] = (
    CpmmSpec(SOL, USDC, Fraction(150), depth_x=5_000, trade_fee_rate=2_500),
    DlmmSpec(
        SOL,
        USDC,
        Fraction(14990, 100),
        bin_step=10,
        params=dlmm.FeeParams(base_factor=20_000, variable_fee_control=40_000),
        bins_each_side=150,
        x_per_bin=Fraction(20),
    ),
    CpmmSpec(SOL, USDT, Fraction(14975, 100), depth_x=4_000, trade_fee_rate=2_500),
    DlmmSpec(
        SOL,
        USDT,
        Fraction(15005, 100),
        bin_step=10,
        params=dlmm.FeeParams(base_factor=15_000, variable_fee_control=40_000),
        bins_each_side=150,
        x_per_bin=Fraction(15),
    ),
    CpmmSpec(USDC, USDT, Fraction(10001, 10000), depth_x=2_000_000, trade_fee_rate=100),
    DlmmSpec(
        USDC,
        USDT,
        Fraction(1),
        bin_step=1,
        params=dlmm.FeeParams(
            base_factor=10_000,
            filter_period=10,
            decay_period=120,
            variable_fee_control=2_000_000,
            max_volatility_accumulator=100_000,
        ),
        bins_each_side=100,
        x_per_bin=Fraction(20_000),
    ),
)


def raw_price(price: Fraction, x: MarketToken, y: MarketToken) -> Fraction:
    """UI price (Y per X) -> raw-unit price (Y base units per X base unit)."""
    return price * Fraction(10) ** (y.decimals - x.decimals)


def ui_price(raw: Fraction, x: MarketToken, y: MarketToken) -> Fraction:
    return raw * Fraction(10) ** (x.decimals - y.decimals)


def initial_cpmm(spec: CpmmSpec) -> cpmm.CpmmState:
    reserve_x = spec.depth_x * 10**spec.x.decimals
    reserve_y = int(reserve_x * raw_price(spec.price, spec.x, spec.y))
    return cpmm.CpmmState(reserve_x, reserve_y, spec.trade_fee_rate)


def initial_dlmm(spec: DlmmSpec) -> dlmm.DlmmState:
    """Uniform liquidity: X above the active bin, Y below, both in the active bin."""
    active = dlmm.bin_id_for_price(raw_price(spec.price, spec.x, spec.y), spec.bin_step)
    per_bin_x = int(spec.x_per_bin * 10**spec.x.decimals)
    bins: dict[int, dlmm.Bin] = {}
    for offset in range(-spec.bins_each_side, spec.bins_each_side + 1):
        bin_id = active + offset
        y_worth = (per_bin_x * dlmm.price_from_id(bin_id, spec.bin_step)) >> dlmm.SCALE_OFFSET
        if offset > 0:
            bins[bin_id] = dlmm.Bin(per_bin_x, 0)
        elif offset < 0:
            bins[bin_id] = dlmm.Bin(0, y_worth)
        else:
            bins[bin_id] = dlmm.Bin(per_bin_x // 2, y_worth // 2)
    volatility = dlmm.VolatilityState(index_reference=active)
    return dlmm.DlmmState(spec.bin_step, active, bins, spec.params, volatility)


def derive(seed: int, *parts: str) -> bytes:
    """A 32-byte key seed: every market key is reproducible from the market seed."""
    return hashlib.sha256(":".join(["orderflow-localnet", str(seed), *parts]).encode()).digest()


@dataclass(eq=False)
class Pool:
    """One listed pool: identity, vaults, maker and book."""

    label: str
    amm_key: Pubkey
    x: MarketToken
    y: MarketToken
    maker: Keypair
    book: CpmmBook | DlmmBook
    created_slot: int = 0  # 0: listed at genesis; else the slot a launch funded it in
    vault_x: Pubkey = field(init=False)
    vault_y: Pubkey = field(init=False)

    def __post_init__(self) -> None:
        self.vault_x = ata(self.maker.pubkey(), self.x.mint)
        self.vault_y = ata(self.maker.pubkey(), self.y.mint)

    @classmethod
    def from_spec(cls, spec: PoolSpec, seed: int) -> Pool:
        label = RAYDIUM_CPMM if isinstance(spec, CpmmSpec) else METEORA_DLMM
        pair = f"{spec.x.symbol}/{spec.y.symbol}"
        maker = Keypair.from_seed(derive(seed, label, pair, "maker"))
        amm_key = Keypair.from_seed(derive(seed, label, pair, "amm")).pubkey()
        book: CpmmBook | DlmmBook
        if isinstance(spec, CpmmSpec):
            book = CpmmBook(initial_cpmm(spec))
        else:
            book = DlmmBook(initial_dlmm(spec))
        return cls(label, amm_key, spec.x, spec.y, maker, book)

    @property
    def name(self) -> str:
        return f"{self.label} {self.x.symbol}/{self.y.symbol}"

    def direction(self, input_mint: Pubkey, output_mint: Pubkey) -> bool | None:
        """``x_to_y`` for a mint pair this pool trades, ``None`` otherwise."""
        if (input_mint, output_mint) == (self.x.mint, self.y.mint):
            return True
        if (input_mint, output_mint) == (self.y.mint, self.x.mint):
            return False
        return None

    def tokens(self, x_to_y: bool) -> tuple[MarketToken, MarketToken]:
        return (self.x, self.y) if x_to_y else (self.y, self.x)

    def vaults(self, x_to_y: bool) -> tuple[Pubkey, Pubkey]:
        return (self.vault_x, self.vault_y) if x_to_y else (self.vault_y, self.vault_x)

    def mid_price(self) -> Fraction:
        """Current raw-unit price of X in Y on the book (no fee)."""
        state = self.book.state
        if isinstance(state, cpmm.CpmmState):
            return Fraction(state.reserve_b, state.reserve_a)
        return Fraction(state.price(), dlmm.ONE)

    def to_json(self) -> dict[str, Any]:
        """The book state, complete enough to recompute a quote with the venue math."""
        book = self.book
        state = book.state
        total_x, total_y = book.current_totals()
        settled_x, settled_y = book.settled_totals()
        doc: dict[str, Any] = {
            "label": self.label,
            "ammKey": str(self.amm_key),
            "mintX": str(self.x.mint),
            "mintY": str(self.y.mint),
            "symbolX": self.x.symbol,
            "symbolY": self.y.symbol,
            "decimalsX": self.x.decimals,
            "decimalsY": self.y.decimals,
            "vaultX": str(self.vault_x),
            "vaultY": str(self.vault_y),
            "maker": str(self.maker.pubkey()),
            "reserveX": str(total_x),
            "reserveY": str(total_y),
            "settledReserveX": str(settled_x),
            "settledReserveY": str(settled_y),
            "pendingSwaps": len(book.pending()),
            "createdSlot": self.created_slot,
            "price": decimal_string(ui_price(self.mid_price(), self.x, self.y), 12),
        }
        if isinstance(state, cpmm.CpmmState):
            doc["cpmm"] = {
                "tradeFeeRate": state.trade_fee_rate,
                "feeRateDenominator": cpmm.FEE_RATE_DENOMINATOR,
            }
        else:
            p, v = state.params, state.volatility
            doc["dlmm"] = {
                "binStep": state.bin_step,
                "activeId": state.active_id,
                "activePriceQ64": str(state.price()),
                "baseFactor": p.base_factor,
                "baseFeePowerFactor": p.base_fee_power_factor,
                "filterPeriod": p.filter_period,
                "decayPeriod": p.decay_period,
                "reductionFactor": p.reduction_factor,
                "variableFeeControl": p.variable_fee_control,
                "maxVolatilityAccumulator": p.max_volatility_accumulator,
                "protocolShare": p.protocol_share,
                "baseFeeRate": dlmm.base_fee_rate(p, state.bin_step),
                "feePrecision": dlmm.FEE_PRECISION,
                "volatilityAccumulator": v.volatility_accumulator,
                "volatilityReference": v.volatility_reference,
                "indexReference": v.index_reference,
                "lastUpdateTimestamp": v.last_update_timestamp,
                "feeX": str(state.fee_x),
                "feeY": str(state.fee_y),
                "bins": [
                    {"binId": i, "amountX": str(b.amount_x), "amountY": str(b.amount_y)}
                    for i, b in state.bins.items()
                ],
            }
        return doc


def decimal_string(value: Fraction, places: int = 18) -> str:
    """Exact-enough decimal text of a fraction (no float on the way)."""
    with localcontext() as ctx:
        ctx.prec = 40
        d = (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
            Decimal(1).scaleb(-places)
        )
    text = format(d.normalize(), "f")
    return "0" if text in ("-0", "0") else text
