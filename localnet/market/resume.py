"""The local market across a localnet restart: its books saved with the chain, every slot.

The chain's vaults survive a restart (:mod:`localnet.persist`); the market's books must
match them, and a DLMM book's bins cannot be read back from two vault balances. So the
books (settled state and the swaps issued but not landed), the seed that derives every key
and the in-flight reservations are saved as one blob **in the same SQLite transaction as
the chain's accounts** (``ChainStore.register_blob``): after a crash both are at the same
slot's end, so books equal vaults and a swap issued before the crash that lands after the
restart (its blockhash is still valid) is settled, not paid twice.

Pickle: the file is the localnet's own (0600, in its data directory), never input from
elsewhere. A swap issued in the slot a crash interrupted is lost with that slot; if its
transaction is rebroadcast and lands anyway, ``Market.reconcile`` reports the mismatch.
"""

from __future__ import annotations

import copyreg
import pickle
import types
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from localnet.market.pools import Pool

if TYPE_CHECKING:
    from localnet.market.market import Market
    from localnet.persist import ChainStore

BLOB = "market"

# DLMM states keep their bins read-only (MappingProxyType), which pickle refuses by default
def _read_only(items: dict[Any, Any]) -> types.MappingProxyType[Any, Any]:
    return types.MappingProxyType(items)


copyreg.pickle(types.MappingProxyType, lambda m: (_read_only, (dict(m),)))


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    seed: int
    books: dict[str, Any]  # pool name -> its Book
    inflight: dict[bytes, str]  # transaction key -> pool name
    released: dict[bytes, tuple[str, Any]]  # transaction key -> (pool name, Record)
    cu_nonce: int
    escrows: dict[bytes, Any] = field(default_factory=dict)  # key -> its Escrow
    launched: tuple[tuple[Any, int], ...] = ()  # (PoolSpec, created slot) of launched pools

    def apply(self, market: Market) -> None:
        """Put the saved books and reservations into a market built from the same seed
        (the launched pools listed again first: their mints and vaults are on the chain)."""
        for spec, created_slot in getattr(self, "launched", None) or ():  # older saves: none
            pool = Pool.from_spec(spec, market.seed)
            pool.created_slot = created_slot
            market.list_pool(pool, spec)
        by_name = {pool.name: pool for pool in market.pools}
        for name, book in self.books.items():
            by_name[name].book = book
        market._inflight = {key: by_name[name] for key, name in self.inflight.items()}
        market._released = {key: (by_name[name], record)
                             for key, (name, record) in self.released.items()}
        market._cu_nonce = self.cu_nonce
        market.escrows = dict(getattr(self, "escrows", None) or {})  # absent in older saves


def snapshot(market: Market) -> bytes:
    return pickle.dumps(MarketSnapshot(
        seed=market.seed,
        books={pool.name: pool.book for pool in market.pools},
        inflight={key: pool.name for key, pool in market._inflight.items()},
        released={key: (pool.name, record) for key, (pool, record) in market._released.items()},
        cu_nonce=market._cu_nonce,
        escrows=dict(market.escrows),
        launched=tuple(market.launched),
    ), protocol=pickle.HIGHEST_PROTOCOL)


def load(store: ChainStore) -> MarketSnapshot | None:
    """The market saved with the chain, or ``None`` (a new chain: set the market up)."""
    blob = store.meta(f"blob:{BLOB}")
    if blob is None:
        return None
    saved = pickle.loads(blob)
    assert isinstance(saved, MarketSnapshot)
    return saved


def attach(market: Market, store: ChainStore) -> None:
    """Save the market with every chain commit from now on."""
    store.register_blob(BLOB, lambda: snapshot(market))
