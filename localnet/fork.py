"""``--fork-url``: a localnet that starts as a copy of a live cluster, fetched lazily.

Any account the chain does not hold is fetched from the cluster at ``url`` the first time
it is read (``getAccountInfo``/``getBalance`` through :class:`~localnet.chain.Chain`) or a
transaction or simulation uses it (its keys, its address lookup tables and the addresses
they load), then kept locally: from then on it is ours and follows our transactions only.
An upgradeable program brings its ProgramData account (written first: LiteSVM compiles the
program when the program account is set). With persistence the fetched accounts are saved
with the rest, and an address the chain ever wrote (a closed account included) is never
fetched again, so closing an account on the fork does not resurrect the remote one.

Not fetched: what LiteSVM holds from genesis (sysvars, builtins, the SPL programs it
bundles: the local versions run), and ``getProgramAccounts`` scans (only accounts already
fetched are listed; a remote program scan could be millions of accounts). One owner's token
accounts (``getTokenAccountsByOwner``) are a bounded scan: the remote's list is fetched
first, so a wallet's balances on the fork are the origin's until the fork moves them.

Fetches are synchronous JSON-RPC calls (``getMultipleAccounts``, 100 keys a call) from the
event loop: the chain is single-threaded, and a transaction cannot run before its
accounts are here. One round trip per transaction that touches unknown addresses; a miss
(the address does not exist remotely) is not cached, so an account created there later is
still found on first use.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.request
from collections.abc import Iterable, Sequence

from solders.account import Account
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey

from localnet.chain import Chain
from localnet.messages import loaded_addresses

log = logging.getLogger(__name__)

UPGRADEABLE_LOADER = Pubkey.from_string("BPFLoaderUpgradeab1e11111111111111111111111")
BATCH = 100  # Agave's getMultipleAccounts limit


class ForkError(RuntimeError):
    """The forked cluster did not answer (or not in Solana's shape)."""


class RemoteCluster:
    """The few JSON-RPC calls a fork needs, over plain HTTP (stdlib, no event loop)."""

    def __init__(self, url: str, timeout_s: float = 15.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.calls = 0

    def call(self, method: str, params: list[object]) -> object:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                           "params": params}).encode()
        req = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        self.calls += 1
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                doc = json.loads(resp.read())
        except (OSError, ValueError) as exc:
            raise ForkError(f"{method} to the forked cluster failed: {exc}") from exc
        if "error" in doc:
            raise ForkError(f"{method} to the forked cluster: {doc['error']}")
        return doc["result"]

    def accounts(self, keys: Sequence[Pubkey]) -> dict[Pubkey, Account]:
        """The existing accounts among ``keys`` (batched ``getMultipleAccounts``)."""
        out: dict[Pubkey, Account] = {}
        for i in range(0, len(keys), BATCH):
            batch = keys[i:i + BATCH]
            result = self.call("getMultipleAccounts",
                               [[str(k) for k in batch],
                                {"encoding": "base64", "commitment": "confirmed"}])
            values = result["value"] if isinstance(result, dict) else None
            if not isinstance(values, list) or len(values) != len(batch):
                raise ForkError("getMultipleAccounts: unexpected answer")
            for key, value in zip(batch, values, strict=True):
                if value is not None:
                    out[key] = Account(int(value["lamports"]),
                                       base64.b64decode(value["data"][0]),
                                       Pubkey.from_string(value["owner"]),
                                       bool(value["executable"]),
                                       min(int(value.get("rentEpoch", 0)), 2**64 - 1))
        return out


def _program_data_address(account: Account) -> Pubkey | None:
    """The ProgramData address of an upgradeable program account, else ``None``."""
    data = bytes(account.data)
    if account.owner == UPGRADEABLE_LOADER and account.executable and data[:4] == b"\2\0\0\0":
        return Pubkey(data[4:36])
    return None


class ForkSource:
    """The chain's :class:`~localnet.chain.AccountSource` for a forked cluster."""

    def __init__(self, chain: Chain, remote: RemoteCluster, known: Iterable[Pubkey] = ()) -> None:
        self.chain = chain
        self.remote = remote
        self.fetched = 0
        self._local: set[Pubkey] = set(known)  # written here once: never fetched again
        chain.add_write_listener(self._local.update)
        chain.source = self

    def ensure(self, keys: Sequence[Pubkey]) -> None:
        svm = self.chain.svm
        missing = [k for k in dict.fromkeys(keys)
                   if k not in self._local and svm.get_account(k) is None]
        if not missing:
            return
        found = self.remote.accounts(missing)
        data_keys = [pd for acc in found.values() if (pd := _program_data_address(acc))
                     and pd not in found and pd not in self._local]
        if data_keys:
            found.update(self.remote.accounts(data_keys))
        # ProgramData (not executable) before programs: see the module docstring
        for key, acc in sorted(found.items(), key=lambda ka: ka[1].executable):
            self.chain.set_account(key, acc)
        self.fetched += len(found)
        if found:
            log.info("fork: fetched %d account(s) from %s", len(found), self.remote.url)

    def token_accounts(self, owner: Pubkey, flt: dict[str, str]) -> None:
        """Bring ``owner``'s token accounts (``flt``: ``{"mint"|"programId": address}``)
        and the mint from the remote; a remote that refuses the query leaves the local ones."""
        try:
            result = self.remote.call("getTokenAccountsByOwner", [
                str(owner), flt, {"encoding": "base64", "commitment": "confirmed",
                                  "dataSlice": {"offset": 0, "length": 0}}])
        except ForkError as exc:
            log.debug("fork: %s", exc)
            result = None
        listed = result.get("value") if isinstance(result, dict) else None
        keys = [Pubkey.from_string(v) for v in flt.values()]
        keys += [Pubkey.from_string(e["pubkey"]) for e in listed or []]
        self.ensure(keys)

    def prepare(self, msg: Message | MessageV0) -> None:
        keys = list(msg.account_keys)
        if isinstance(msg, MessageV0):
            keys += [lookup.account_key for lookup in msg.address_table_lookups]
        self.ensure(keys)
        if isinstance(msg, MessageV0) and msg.address_table_lookups:
            try:
                writable, readonly = loaded_addresses(self.chain.svm, msg)
            except Exception:  # a table that does not exist: the runtime reports it
                return
            self.ensure([*writable, *readonly])


def attach(chain: Chain, url: str, known: Iterable[Pubkey] = ()) -> ForkSource:
    """Fork ``url`` into ``chain``; ``known``: addresses saved locally (never fetched)."""
    remote = RemoteCluster(url)
    remote.call("getVersion", [])  # fail at start, not at the first transaction
    return ForkSource(chain, remote, known)
