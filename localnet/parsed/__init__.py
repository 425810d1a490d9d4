"""``jsonParsed``: instructions (:mod:`.instructions`) and transactions (:mod:`.transaction`)
as Agave's ``transaction-status`` crate parses them, for ``getTransaction``, ``getBlock`` and
``simulateTransaction``'s ``innerInstructions``."""

from localnet.parsed.instructions import parse_instruction
from localnet.parsed.transaction import (
    account_keys_json,
    parsed_inner_instructions,
    parsed_transaction_json,
)

__all__ = [
    "account_keys_json",
    "parse_instruction",
    "parsed_inner_instructions",
    "parsed_transaction_json",
]
