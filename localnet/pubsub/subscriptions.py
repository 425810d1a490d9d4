"""What a client subscribed to, read from its request with Agave's defaults and errors.

One :class:`Subscription` per ``*Subscribe`` call; the hub (:mod:`.hub`) decides when it
fires. Defaults are Agave's: commitment ``finalized``, account encoding ``binary`` (a bare
base58 string, as ``getAccountInfo``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from solders.pubkey import Pubkey

from localnet.rpc.filters import AccountFilter, parse_filters
from localnet.rpc.params import (
    invalid_params,
    param_arg,
    param_commitment,
    param_config,
    param_pubkey,
    param_signature,
)
from localnet.txerrors import Json

KINDS = ("account", "program", "logs", "signature", "slot", "root")
ACCOUNT_ENCODINGS = ("binary", "base58", "base64", "jsonParsed")


class Subscriber(Protocol):
    """The connection a subscription belongs to: notifications are pushed to it."""

    def notify(self, method: str, subscription: int, result: Json) -> None: ...


@dataclass(eq=False, slots=True)
class Subscription:
    """One live subscription. ``key``: the account or program; ``mentions``: the logs filter
    (``None`` = every transaction); ``signature``: the one awaited."""

    kind: str
    owner: Subscriber
    id: int = 0
    commitment: str = "finalized"
    key: Pubkey | None = None
    encoding: str = "binary"
    data_slice: Json = None
    filters: list[AccountFilter] = field(default_factory=list)
    with_context: bool = False
    mentions: Pubkey | None = None
    signature: str | None = None
    received: bool = False

    @property
    def notification(self) -> str:
        return f"{self.kind}Notification"


def _commitment(cfg: dict[str, Json]) -> str:
    return param_commitment(cfg)


def _encoding(cfg: dict[str, Json]) -> str:
    encoding = cfg.get("encoding") or "binary"
    if encoding not in ACCOUNT_ENCODINGS:
        raise invalid_params(
            f"Invalid params: unknown variant `{encoding}`, expected one of "
            "`binary`, `base58`, `base64`, `jsonParsed`.")
    return str(encoding)


def account_subscription(owner: Subscriber, params: list[Json]) -> Subscription:
    key = param_pubkey(param_arg(params, 0, "pubkey"))
    cfg = param_config(params, 1)
    return Subscription("account", owner, commitment=_commitment(cfg), key=key,
                        encoding=_encoding(cfg), data_slice=cfg.get("dataSlice"))


def program_subscription(owner: Subscriber, params: list[Json]) -> Subscription:
    key = param_pubkey(param_arg(params, 0, "pubkey"))
    cfg = param_config(params, 1)
    return Subscription("program", owner, commitment=_commitment(cfg), key=key,
                        encoding=_encoding(cfg), data_slice=cfg.get("dataSlice"),
                        filters=parse_filters(cfg.get("filters")),
                        with_context=bool(cfg.get("withContext", False)))


def logs_subscription(owner: Subscriber, params: list[Json]) -> Subscription:
    """``"all"``, ``"allWithVotes"`` (the same here: the localnet has no votes) or
    ``{"mentions": [one pubkey]}`` (Agave allows exactly one)."""
    flt = param_arg(params, 0, "filter")
    cfg = param_config(params, 1)
    mentions: Pubkey | None = None
    if isinstance(flt, dict) and "mentions" in flt:
        keys = flt["mentions"]
        if not isinstance(keys, list) or len(keys) != 1:
            raise invalid_params("Invalid Request: Only 1 address supported")
        mentions = param_pubkey(keys[0])
    elif flt not in ("all", "allWithVotes"):
        raise invalid_params(
            "Invalid params: unknown variant, expected `all`, `allWithVotes` or "
            "`{\"mentions\": [<pubkey>]}`.")
    return Subscription("logs", owner, commitment=_commitment(cfg), mentions=mentions)


def signature_subscription(owner: Subscriber, params: list[Json]) -> Subscription:
    sig = param_signature(param_arg(params, 0, "signature"))
    cfg = param_config(params, 1)
    return Subscription("signature", owner, commitment=_commitment(cfg), signature=str(sig),
                        received=bool(cfg.get("enableReceivedNotification", False)))


def slot_subscription(owner: Subscriber, params: list[Json]) -> Subscription:
    return Subscription("slot", owner, commitment="processed")


def root_subscription(owner: Subscriber, params: list[Json]) -> Subscription:
    return Subscription("root", owner, commitment="finalized")
