"""``--bpf-program`` and ``--account``: solana-test-validator's switches for the localnet.

Anyone who has a program's binary (``solana program dump``) and its accounts
(``solana account --output json``) runs them here unchanged: a program is deployed with
the upgradeable loader at the given address (LiteSVM's ``add_program``, as test-validator
does), an account is written as the JSON says. Both are applied at every start, after a
persisted chain was resumed, so a newer binary replaces the old one; an ``--account`` file
overwrites that account's current state on each start, as on test-validator.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

import orjson
from solders.account import Account
from solders.pubkey import Pubkey

from localnet.chain import Chain
from localnet.config import LocalnetConfigError


def _pubkey(text: str, what: str) -> Pubkey:
    try:
        return Pubkey.from_string(text)
    except ValueError:
        raise LocalnetConfigError(f"{what}: {text!r} is not a base58 address") from None


def _account_data(data: object, path: Path) -> bytes:
    """``[payload, "base64"]``, what ``solana account --output json`` writes."""
    if isinstance(data, list) and len(data) == 2 and isinstance(data[0], str):
        payload, encoding = data
        if encoding == "base64":
            return base64.b64decode(payload, validate=True)
        raise LocalnetConfigError(f"--account {path}: data encoding {encoding!r} is not "
                                  "supported (use base64: solana account --output json)")
    raise LocalnetConfigError(f"--account {path}: data must be [payload, encoding]")


def read_account_json(path: Path, address: Pubkey | None = None) -> tuple[Pubkey, Account]:
    """The account in a ``solana account --output json`` file; ``address`` overrides its
    ``pubkey`` (as test-validator's ``--account ADDRESS FILE`` does)."""
    try:
        doc = orjson.loads(path.read_bytes())
        acc = doc["account"]
        key = address or _pubkey(doc["pubkey"], f"--account {path}")
        rent_epoch = int(acc.get("rentEpoch", 0))
        account = Account(int(acc["lamports"]), _account_data(acc["data"], path),
                          _pubkey(acc["owner"], f"--account {path} owner"),
                          bool(acc.get("executable", False)), min(rent_epoch, 2**64 - 1))
    except OSError as exc:
        raise LocalnetConfigError(f"--account {path}: {exc.strerror}") from None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, LocalnetConfigError):
            raise
        raise LocalnetConfigError(f"--account {path}: not a `solana account --output json` "
                                  f"file ({exc!r})") from None
    return key, account


def load(chain: Chain, programs: Sequence[tuple[str, Path]],
         accounts: Sequence[tuple[str, Path]]) -> None:
    """Write the ``--account`` files, then deploy the ``--bpf-program`` binaries.

    Accounts first: a program's own ProgramData passed as ``--account`` must be in place
    before a program is compiled from it. Errors name the switch and the file.
    """
    for address, path in accounts:
        key, account = read_account_json(path, _pubkey(address, "--account"))
        chain.set_account(key, account)
    for address, path in programs:
        program_id = _pubkey(address, "--bpf-program")
        try:
            elf = path.read_bytes()
        except OSError as exc:
            raise LocalnetConfigError(f"--bpf-program {path}: {exc.strerror}") from None
        if not elf.startswith(b"\x7fELF"):
            raise LocalnetConfigError(f"--bpf-program {path}: not an ELF (SBF) file")
        try:
            chain.add_program(program_id, elf)
        except Exception as exc:  # LiteSVM refuses an ELF it cannot verify
            raise LocalnetConfigError(f"--bpf-program {path}: {exc}") from None


def parse_pairs(raw: str | None, what: str) -> tuple[tuple[str, Path], ...]:
    """``ADDRESS=PATH,ADDRESS=PATH`` (the env form of the switches) as pairs."""
    out: list[tuple[str, Path]] = []
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        address, sep, path = item.partition("=")
        if not sep or not address.strip() or not path.strip():
            raise LocalnetConfigError(f"{what}: {item!r} is not ADDRESS=PATH")
        out.append((address.strip(), Path(path.strip()).expanduser()))
    return tuple(out)
