"""Jupiter's JSON, decoded: quotes (v1 ``/quote``, v2 ``/build``), instructions
(``{programId, accounts: [{pubkey, isSigner, isWritable}], data: base64}``) and address
lookup tables (v1: addresses to fetch; v2: the tables' contents inline).

Every decoder raises :class:`~pipeline.errors.VenueUnavailable` on a malformed answer: a
venue that answers nonsense is treated as a venue that is down (another attempt may meet
a healthy instance), never as the order's fault.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from solders.address_lookup_table_account import AddressLookupTable, AddressLookupTableAccount
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from pipeline.errors import VenueUnavailable
from pipeline.model import Quote, Venue
from pipeline.txbuild import AggregatorSwap

_MALFORMED = (KeyError, IndexError, TypeError, ValueError, AttributeError, binascii.Error)


def parse_quote(venue: Venue, body: dict[str, Any], label: str | None = None) -> Quote:
    """A Jupiter quote (v1 ``/quote`` or v2 ``/build``: same quote fields) as a
    :class:`Quote`; amounts are decimal strings there. With ``label``, every step of the
    route must be that DEX (the ``dexes`` filter was honoured), or the quote is refused."""
    try:
        plan = body["routePlan"]
        steps = [step["swapInfo"] for step in plan]
        first = steps[0]
        if label is not None and any(step.get("label") != label for step in steps):
            seen = sorted({str(step.get("label")) for step in steps})
            raise ValueError(f"route through {seen}, asked for {label!r} only")
        return Quote(
            venue=venue,
            in_amount=int(body["inAmount"]),
            out_amount=int(body["outAmount"]),
            fee_amount=sum(int(step["feeAmount"]) for step in steps),
            fee_mint=str(first.get("feeMint", "")),
            price_impact_pct=str(body.get("priceImpactPct", "0")),
            amm_key=str(first.get("ammKey", "")),
            context_slot=int(body.get("contextSlot", 0)),
            raw=body,
        )
    except _MALFORMED as exc:
        raise VenueUnavailable(message=f"{venue} returned a malformed quote: {exc!r}") from None


def instruction(doc: Any) -> Instruction:
    """One instruction in Jupiter's JSON form."""
    accounts = [AccountMeta(Pubkey.from_string(a["pubkey"]), bool(a["isSigner"]),
                            bool(a["isWritable"])) for a in doc["accounts"]]
    return Instruction(Pubkey.from_string(doc["programId"]),
                       base64.b64decode(doc["data"], validate=True), accounts)


def aggregator_swap(venue: Venue, doc: dict[str, Any]) -> AggregatorSwap:
    """The instructions of a v1 ``/swap-instructions`` or v2 ``/build`` answer."""
    try:
        cleanup = doc.get("cleanupInstruction")
        return AggregatorSwap(
            compute_budget=[instruction(i) for i in doc.get("computeBudgetInstructions") or []],
            setup=[instruction(i) for i in doc.get("setupInstructions") or []],
            swap=instruction(doc["swapInstruction"]),
            cleanup=None if cleanup is None else instruction(cleanup),
            other=[instruction(i) for i in doc.get("otherInstructions") or []],
        )
    except _MALFORMED as exc:
        raise VenueUnavailable(
            message=f"{venue} returned malformed swap instructions: {exc!r}") from None


def lookup_table_addresses(venue: Venue, doc: dict[str, Any]) -> list[Pubkey]:
    """v1: the address lookup tables the swap's accounts are compressed through."""
    try:
        return [Pubkey.from_string(a) for a in doc.get("addressLookupTableAddresses") or []]
    except _MALFORMED as exc:
        raise VenueUnavailable(
            message=f"{venue} returned malformed lookup tables: {exc!r}") from None


def lookup_tables_inline(venue: Venue, doc: dict[str, Any]) -> list[AddressLookupTableAccount]:
    """v2: ``addressesByLookupTableAddress``, the tables with their addresses (no RPC)."""
    try:
        tables = doc.get("addressesByLookupTableAddress") or {}
        return [AddressLookupTableAccount(Pubkey.from_string(key),
                                          [Pubkey.from_string(a) for a in addresses])
                for key, addresses in tables.items()]
    except _MALFORMED as exc:
        raise VenueUnavailable(
            message=f"{venue} returned malformed lookup tables: {exc!r}") from None


def lookup_table_account(key: Pubkey, data: bytes | None) -> AddressLookupTableAccount:
    """A lookup table read from the chain (``getMultipleAccounts``); a missing or closed
    one is the venue's stale answer (transient: the next quote names live tables)."""
    if data is None:
        raise VenueUnavailable(message=f"lookup table {key} does not exist")
    try:
        table = AddressLookupTable.deserialize(data)
    except ValueError as exc:
        raise VenueUnavailable(message=f"lookup table {key} is unreadable: {exc}") from None
    return AddressLookupTableAccount(key, list(table.addresses))


def foreign_signers(instructions: list[Instruction], user: Pubkey) -> set[Pubkey]:
    """Signers other than the user: a transaction we build alone cannot carry them."""
    return {m.pubkey for ix in instructions for m in ix.accounts
            if m.is_signer and m.pubkey != user}
