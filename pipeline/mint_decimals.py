"""The decimals of a token no registry lists, read from its mint account on chain.

A sniper order buys any mint, usually one that did not exist when the order was placed, so
the token registry (``pipeline/tokens.py``: SOL, USDC, USDT and ``ORDERFLOW_TOKENS``) does
not know it; routing (the price guards) and settlement (the executed price) need its
decimals. They are the mint account's own (SPL Token and Token-2022 share the layout's
first 82 bytes: decimals at 44, ``is_initialized`` at 45), read once per process and kept
(:func:`pipeline.tokens.learn_token`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from solders.pubkey import Pubkey

from pipeline.errors import InvalidOrder
from pipeline.tokens import learn_token, token_by_mint

MINT_LEN = 82
DECIMALS_OFFSET = 44
INITIALIZED_OFFSET = 45


class MintAccounts(Protocol):
    """What reading a mint needs (``pipeline.accounts.RpcAccounts`` has it)."""

    async def accounts(self, keys: Sequence[Pubkey]) -> list[bytes | None]: ...


def mint_decimals(mint: str, data: bytes | None) -> int:
    """The decimals of a mint account's data; ``InvalidOrder`` if it is no mint."""
    if data is None or len(data) < MINT_LEN or data[INITIALIZED_OFFSET] != 1:
        raise InvalidOrder("unknown_token", f"{mint} is not a token mint on this cluster")
    return data[DECIMALS_OFFSET]


async def know_tokens(reader: MintAccounts | None, *mints: str) -> None:
    """Make every one of ``mints`` known to the registry, reading the unknown ones' mint
    accounts in one request (none when all are known)."""
    unknown = [m for m in dict.fromkeys(mints) if token_by_mint(m) is None]
    if not unknown:
        return
    if reader is None:
        raise InvalidOrder("unknown_token", f"{unknown[0]} is not a listed token and this "
                           "engine reads no mint accounts")
    datas = await reader.accounts([Pubkey.from_string(m) for m in unknown])
    for mint, data in zip(unknown, datas, strict=True):
        learn_token(mint, mint_decimals(mint, data))
