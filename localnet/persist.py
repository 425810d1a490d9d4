"""The localnet's chain on disk: accounts, clock, blockhashes and history survive a restart.

Design (measured; numbers in the README, "The localnet"): one SQLite file in WAL mode,
``synchronous=FULL``, written **once per slot** in one transaction, just before the next slot
starts (:meth:`Chain.add_tick_listener <localnet.chain.Chain.add_tick_listener>`). It holds

* the accounts the runtime or a direct write changed in that slot (their state at the end
  of the slot; a closed account is a row with no account, so a fork never fetches it again);
* the records of the transactions that landed in it (:mod:`localnet.record_codec`);
* the blocks (:mod:`localnet.blocks`: hash, parent, height, time, signatures, fees) of the
  slot, so ``getBlock`` answers for slots before a restart as it did before it;
* the clock and every live blockhash (:meth:`Chain.clock_state`), and the blobs other
  parts register (the market's books, :mod:`localnet.market.resume`).

Why per slot and not per transaction: a transaction is *confirmed* once a later slot
exists, and the slot only advances after its commit, so a crash loses at most transactions
that were still *processed* -- what a real validator's client would see as unconfirmed (a
leader dropping them). Their senders still hold them: the blockhashes of the old chain stay
valid after a restart (the chain resumes at its slot and height; time spent down does not
age them), so a rebroadcast lands them. One fsync a slot instead of one a transaction.
Why not a log of transactions replayed at start: replaying re-executes every transaction
ever sent (start time grows with history) and depends on the runtime being deterministic
for clock-reading programs; writing the resulting state is neither.

Records older than the in-memory window are read back from the file on demand
(:attr:`Ledger.archive <localnet.ledger.Ledger.archive>`), so a signature the order history
shows stays verifiable after the window too.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson
from solders.account import Account
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionErrorType

from localnet import record_codec
from localnet.blocks import Block, BlockIndex, blocks_of
from localnet.chain import Chain
from localnet.records import TxRecord

log = logging.getLogger(__name__)

FILE_NAME = "chain.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (pubkey BLOB PRIMARY KEY, account BLOB);
CREATE TABLE IF NOT EXISTS txs (seq INTEGER PRIMARY KEY, sig TEXT NOT NULL UNIQUE,
                                slot INTEGER NOT NULL, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (slot INTEGER PRIMARY KEY, block BLOB NOT NULL);
"""


def reset(data_dir: Path) -> None:
    """Delete the persisted chain: the next start is a new genesis."""
    for suffix in ("", "-wal", "-shm"):
        (data_dir / f"{FILE_NAME}{suffix}").unlink(missing_ok=True)


class ChainStore:
    """One chain's SQLite file; :func:`open_chain` builds both."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        if new:
            os.chmod(path, 0o600)  # it holds the faucet's keypair
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # fsync the WAL at every commit
        self._db.executescript(_SCHEMA)
        self._chain: Chain | None = None
        self._dirty: set[Pubkey] = set()
        self._landed: list[str] = []
        self._blobs: dict[str, Callable[[], bytes]] = {}
        self._blocks: BlockIndex | None = None
        self._block_from = 0  # blocks from this slot on are not saved complete yet
        self.commit_seconds = 0.0  # total time spent committing (measurement)
        self.commits = 0

    # -- reading -----------------------------------------------------------------------------

    def meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def known_keys(self) -> set[Pubkey]:
        """Every address ever written here, closed ones included."""
        return {Pubkey(bytes(k)) for (k,) in self._db.execute("SELECT pubkey FROM accounts")}

    def archived(self, sig: str) -> TxRecord | None:
        row = self._db.execute("SELECT record FROM txs WHERE sig = ?", (sig,)).fetchone()
        return None if row is None else record_codec.decode(bytes(row[0]))

    # -- writing -----------------------------------------------------------------------------

    def register_blob(self, name: str, producer: Callable[[], bytes]) -> None:
        """Save ``producer()`` under ``name`` with every commit (same transaction as the chain)."""
        self._blobs[name] = producer

    def attach(self, chain: Chain) -> None:
        """Follow ``chain``: collect its writes and landings, commit at every slot's end."""
        self._chain = chain
        chain.add_write_listener(self._on_write)
        chain.add_listener(self._on_landed)
        chain.add_tick_listener(self._slot_end)
        chain.ledger.archive = self.archived
        self._blocks = blocks_of(chain)
        self._block_from = chain.slot

    def _on_write(self, keys: Sequence[Pubkey]) -> None:
        self._dirty.update(keys)

    def _on_landed(self, sig: Signature, tx: VersionedTransaction,
                   err: TransactionErrorType | None, slot: int) -> None:
        self._landed.append(str(sig))

    def commit(self) -> None:
        """Write this slot's changes in one fsynced transaction (see the module docstring)."""
        chain = self._chain
        assert chain is not None
        started = time.perf_counter()
        svm = chain.svm
        rows = []
        for key in self._dirty:
            acc = svm.get_account(key)
            alive = acc is not None and (acc.lamports > 0 or acc.executable)
            rows.append((bytes(key), bytes(acc) if alive and acc is not None else None))
        records = [(rec.signature, rec.slot, record_codec.encode(rec))
                   for sig in self._landed if (rec := chain.ledger.get(sig)) is not None]
        # Called as the slot ends, its block is complete (a clean stop saves it as it is).
        assert self._blocks is not None
        blocks = [(b.slot, orjson.dumps(b.to_json())) for b in self._blocks.since(
            self._block_from)]
        meta = [("clock", orjson.dumps(chain.clock_state()))]
        meta += [(f"blob:{name}", produce()) for name, produce in self._blobs.items()]
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT OR REPLACE INTO accounts VALUES (?, ?)", rows)
            db.executemany("INSERT OR IGNORE INTO txs (sig, slot, record) VALUES (?, ?, ?)",
                           records)
            db.executemany("INSERT OR REPLACE INTO blocks VALUES (?, ?)", blocks)
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._dirty.clear()
        self._landed.clear()
        self.commit_seconds += time.perf_counter() - started
        self.commits += 1

    def _slot_end(self) -> None:
        self.commit()
        assert self._chain is not None
        self._block_from = self._chain.slot + 1  # that block is complete and saved

    def close(self) -> None:
        """Commit what the current slot changed (a clean stop loses nothing) and close."""
        if self._chain is not None:
            self.commit()
        self._db.close()

    # -- restoring ---------------------------------------------------------------------------

    def saved_blocks(self, oldest: int) -> list[Block]:
        rows = self._db.execute("SELECT block FROM blocks WHERE slot >= ? ORDER BY slot",
                                (oldest,))
        return [Block.from_json(orjson.loads(bytes(blob))) for (blob,) in rows]

    def restore(self, chain: Chain) -> None:
        """Put the saved accounts, records and clock into a chain built on the saved genesis."""
        svm = chain.svm
        rows = self._db.execute("SELECT pubkey, account FROM accounts").fetchall()
        accounts = [(Pubkey(bytes(k)), Account.from_bytes(bytes(a)) if a is not None else None)
                    for k, a in rows]
        # ProgramData before its program: LiteSVM compiles a program when its account is set
        for key, acc in sorted(accounts, key=lambda ka: ka[1] is not None and ka[1].executable):
            if acc is not None:
                svm.set_account(key, acc)
            elif svm.get_account(key) is not None:
                svm.set_account(key, Account(0, b"", Pubkey.default()))
        clock = orjson.loads(self.meta("clock") or b"{}")
        oldest = clock["slot"] - chain.ledger.history_slots
        for (blob,) in self._db.execute(
                "SELECT record FROM txs WHERE slot >= ? ORDER BY seq", (oldest,)):
            rec = record_codec.decode(bytes(blob))
            chain.ledger.add(rec)
            chain.history.index_record(rec)
        chain.resume_clock(clock)
        # The saved slot had a successor before the crash (that is when it was saved), so its
        # transactions were confirmed: start in a new slot so they read confirmed at once.
        chain.tick()
        log.info("resumed the chain at slot %d from %s (%d accounts saved)", chain.slot,
                 self.path, len(accounts))


def open_chain(data_dir: Path, *, slot_ms: int, fresh: bool = False) -> tuple[Chain, ChainStore,
                                                                              bool]:
    """The chain saved in ``data_dir`` (or a new genesis, saved there from now on).

    Returns ``(chain, store, resumed)``. ``fresh`` deletes what was saved first (``--reset``).
    """
    if fresh:
        reset(data_dir)
    store = ChainStore(data_dir / FILE_NAME)
    genesis = store.meta("genesis")
    if genesis is None:
        faucet, seed = Keypair(), os.urandom(32)
        chain = Chain(slot_ms=slot_ms, faucet=faucet, genesis_seed=seed)
        doc = {"faucet": list(bytes(faucet)), "seed": seed.hex()}
        store._db.execute("INSERT INTO meta VALUES ('genesis', ?)", (orjson.dumps(doc),))
        store.attach(chain)
        chain.written(chain.genesis_accounts())
        store.commit()  # a genesis that can be resumed from its first moment
        return chain, store, False
    doc = orjson.loads(genesis)
    chain = Chain(slot_ms=slot_ms, faucet=Keypair.from_bytes(bytes(doc["faucet"])),
                  genesis_seed=bytes.fromhex(doc["seed"]))
    store.restore(chain)
    store.attach(chain)
    assert store._blocks is not None
    store._blocks.restore(store.saved_blocks(chain.slot - chain.ledger.history_slots))
    return chain, store, True
