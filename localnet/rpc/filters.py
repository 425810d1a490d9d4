"""Account filters (``memcmp``, ``dataSize``) as ``getProgramAccounts`` and ``programSubscribe``
take them, with Agave's limits and messages, so one parser serves the HTTP and WebSocket sides.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from localnet.encoding import b58decode
from localnet.rpc.params import invalid_params, param_int
from localnet.txerrors import Json

MAX_GET_PROGRAM_ACCOUNT_FILTERS = 4
MAX_DATA_SIZE = 128
"""Agave's limit on the decoded bytes of one ``memcmp``."""
MAX_DATA_BASE58_SIZE = 175
MAX_DATA_BASE64_SIZE = 172


@dataclass(frozen=True, slots=True)
class AccountFilter:
    """One filter: ``memcmp`` (``offset`` and ``bytes``) or ``dataSize`` (``size``)."""

    size: int | None = None
    offset: int = 0
    data: bytes = b""

    def matches(self, account_data: bytes) -> bool:
        if self.size is not None:
            return len(account_data) == self.size
        end = self.offset + len(self.data)
        return end <= len(account_data) and account_data[self.offset:end] == self.data


def matches_all(filters: list[AccountFilter], account_data: bytes) -> bool:
    return all(f.matches(account_data) for f in filters)


def parse_filters(raw: Json) -> list[AccountFilter]:
    """The ``filters`` array of a config; ``-32602`` for anything Agave would refuse."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid_params("Invalid params: filters must be an array.")
    if len(raw) > MAX_GET_PROGRAM_ACCOUNT_FILTERS:
        raise invalid_params(
            f"Too many filters provided; max {MAX_GET_PROGRAM_ACCOUNT_FILTERS}")
    return [_parse_filter(item) for item in raw]


def _parse_filter(item: Json) -> AccountFilter:
    if isinstance(item, dict) and "dataSize" in item:
        return AccountFilter(size=param_int(item["dataSize"], "dataSize"))
    if not (isinstance(item, dict) and isinstance(item.get("memcmp"), dict)):
        raise invalid_params(
            "Invalid params: unknown filter, expected `memcmp` or `dataSize`.")
    memcmp = item["memcmp"]
    assert isinstance(memcmp, dict)
    offset = param_int(memcmp.get("offset"), "memcmp.offset")
    text = memcmp.get("bytes")
    encoding = memcmp.get("encoding") or "base58"
    if not isinstance(text, str):
        raise invalid_params("Invalid params: memcmp.bytes must be a string.")
    if encoding == "base58":
        if len(text) > MAX_DATA_BASE58_SIZE:
            raise invalid_params("Invalid param: Encoded binary (base 58) data too large")
        try:
            data = b58decode(text)
        except ValueError as e:
            raise invalid_params(f"Invalid param: {e}") from None
    elif encoding == "base64":
        if len(text) > MAX_DATA_BASE64_SIZE:
            raise invalid_params("Invalid param: Encoded binary (base 64) data too large")
        try:
            data = base64.b64decode(text, validate=True)
        except binascii.Error as e:
            raise invalid_params(f"Invalid param: {e}") from None
    else:
        raise invalid_params(f"Invalid params: unknown memcmp encoding `{encoding}`.")
    if len(data) > MAX_DATA_SIZE:
        raise invalid_params("Invalid param: filter data too large")
    return AccountFilter(offset=offset, data=data)
