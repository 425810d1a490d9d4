"""``jsonParsed`` instructions as Agave's ``transaction-status`` parses them: System, SPL Token
(and Token-2022's base instructions), Associated Token Account and Memo.

Programs Agave has no parser for (Compute Budget among them: explorers decode it themselves)
and instructions a parser rejects come back "partially decoded" (``programId``, account
addresses, base58 ``data``), exactly as on mainnet, so a client written against a real node
reads ours alike.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from solders.pubkey import Pubkey

from localnet.encoding import b58encode, ui_token_amount
from localnet.memo import MEMO_PROGRAM_ID, MEMO_V1_PROGRAM_ID
from localnet.programs import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
)
from localnet.txerrors import Json

Info = dict[str, Json]


class ParseError(ValueError):
    """The instruction is not one the parser knows: it is shown partially decoded."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ParseError("instruction data too short")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self.take(8))[0])

    def pubkey(self) -> str:
        return str(Pubkey.from_bytes(self.take(32)))

    def seed(self) -> str:  # bincode String: u64 length + UTF-8
        return self.take(self.u64()).decode("utf-8", "replace")

    def coption_pubkey(self) -> str | None:  # SPL's COption: one tag byte (u32 in state)
        return self.pubkey() if self.u8() else None


def _accounts(keys: list[str], n: int) -> list[str]:
    if len(keys) < n:
        raise ParseError("not enough accounts")
    return keys


# -- System ------------------------------------------------------------------------------------

def _parse_system(data: bytes, keys: list[str]) -> Info:
    r = _Reader(data)
    tag = r.u32()
    if tag == 0:
        a = _accounts(keys, 2)
        info: Info = {"source": a[0], "newAccount": a[1], "lamports": r.u64(),
                      "space": r.u64(), "owner": r.pubkey()}
        return {"type": "createAccount", "info": info}
    if tag == 1:
        return {"type": "assign", "info": {"account": _accounts(keys, 1)[0], "owner": r.pubkey()}}
    if tag == 2:
        a = _accounts(keys, 2)
        return {"type": "transfer",
                "info": {"source": a[0], "destination": a[1], "lamports": r.u64()}}
    if tag == 3:
        a = _accounts(keys, 2)
        base, seed = r.pubkey(), r.seed()
        info = {"source": a[0], "newAccount": a[1], "base": base, "seed": seed,
                "lamports": r.u64(), "space": r.u64(), "owner": r.pubkey()}
        return {"type": "createAccountWithSeed", "info": info}
    if tag == 8:
        return {"type": "allocate", "info": {"account": _accounts(keys, 1)[0], "space": r.u64()}}
    if tag == 9:
        a = _accounts(keys, 1)
        info = {"account": a[0], "base": r.pubkey(), "seed": r.seed(), "space": r.u64(),
                "owner": r.pubkey()}
        return {"type": "allocateWithSeed", "info": info}
    if tag == 10:
        a = _accounts(keys, 1)
        info = {"account": a[0], "base": r.pubkey(), "seed": r.seed(), "owner": r.pubkey()}
        return {"type": "assignWithSeed", "info": info}
    if tag == 11:
        a = _accounts(keys, 3)
        info = {"source": a[0], "sourceBase": a[1], "destination": a[2], "lamports": r.u64(),
                "sourceSeed": r.seed(), "sourceOwner": r.pubkey()}
        return {"type": "transferWithSeed", "info": info}
    raise ParseError(f"system instruction {tag} is not parsed")


# -- SPL Token ---------------------------------------------------------------------------------

_AUTHORITY_TYPES = ("mintTokens", "freezeAccount", "accountOwner", "closeAccount")


def _signer(info: Info, keys: list[str], index: int, name: str) -> Info:
    """The authority at ``index``; a multisig authority lists the signers after it."""
    a = _accounts(keys, index + 1)
    if len(a) > index + 1:
        info[f"multisig{name[0].upper()}{name[1:]}"] = a[index]
        info["signers"] = a[index + 1:]
    else:
        info[name] = a[index]
    return info


def _amount(r: _Reader) -> str:
    return str(r.u64())


def _checked(r: _Reader) -> Json:
    amount = r.u64()
    return ui_token_amount(amount, r.u8())


def _mint_init(r: _Reader, keys: list[str], rent: bool) -> Info:
    a = _accounts(keys, 2 if rent else 1)
    info: Info = {"mint": a[0], "decimals": r.u8(), "mintAuthority": r.pubkey()}
    freeze = r.coption_pubkey()
    if freeze is not None:
        info["freezeAuthority"] = freeze
    if rent:
        info["rentSysvar"] = a[1]
    return info


def _parse_token(data: bytes, keys: list[str]) -> Info:
    r = _Reader(data)
    tag = r.u8()
    k = keys
    simple: dict[int, tuple[str, Callable[[], Info]]] = {
        0: ("initializeMint", lambda: _mint_init(r, k, True)),
        1: ("initializeAccount", lambda: {"account": _accounts(k, 4)[0], "mint": k[1],
                                          "owner": k[2], "rentSysvar": k[3]}),
        3: ("transfer", lambda: _signer({"source": _accounts(k, 3)[0], "destination": k[1],
                                         "amount": _amount(r)}, k, 2, "authority")),
        4: ("approve", lambda: _signer({"source": _accounts(k, 3)[0], "delegate": k[1],
                                        "amount": _amount(r)}, k, 2, "owner")),
        5: ("revoke", lambda: _signer({"source": _accounts(k, 2)[0]}, k, 1, "owner")),
        7: ("mintTo", lambda: _signer({"mint": _accounts(k, 3)[0], "account": k[1],
                                       "amount": _amount(r)}, k, 2, "mintAuthority")),
        8: ("burn", lambda: _signer({"account": _accounts(k, 3)[0], "mint": k[1],
                                     "amount": _amount(r)}, k, 2, "authority")),
        9: ("closeAccount", lambda: _signer({"account": _accounts(k, 3)[0],
                                             "destination": k[1]}, k, 2, "owner")),
        10: ("freezeAccount", lambda: _signer({"account": _accounts(k, 3)[0], "mint": k[1]},
                                              k, 2, "freezeAuthority")),
        11: ("thawAccount", lambda: _signer({"account": _accounts(k, 3)[0], "mint": k[1]},
                                            k, 2, "freezeAuthority")),
        12: ("transferChecked", lambda: _signer(
            {"source": _accounts(k, 4)[0], "mint": k[1], "destination": k[2],
             "tokenAmount": _checked(r)}, k, 3, "authority")),
        13: ("approveChecked", lambda: _signer(
            {"source": _accounts(k, 4)[0], "mint": k[1], "delegate": k[2],
             "tokenAmount": _checked(r)}, k, 3, "owner")),
        14: ("mintToChecked", lambda: _signer(
            {"mint": _accounts(k, 3)[0], "account": k[1], "tokenAmount": _checked(r)},
            k, 2, "mintAuthority")),
        15: ("burnChecked", lambda: _signer(
            {"account": _accounts(k, 3)[0], "mint": k[1], "tokenAmount": _checked(r)},
            k, 2, "authority")),
        16: ("initializeAccount2", lambda: {"account": _accounts(k, 3)[0], "mint": k[1],
                                            "owner": r.pubkey(), "rentSysvar": k[2]}),
        17: ("syncNative", lambda: {"account": _accounts(k, 1)[0]}),
        18: ("initializeAccount3", lambda: {"account": _accounts(k, 2)[0], "mint": k[1],
                                            "owner": r.pubkey()}),
        20: ("initializeMint2", lambda: _mint_init(r, k, False)),
        21: ("getAccountDataSize", lambda: {"mint": _accounts(k, 1)[0]}),
        22: ("initializeImmutableOwner", lambda: {"account": _accounts(k, 1)[0]}),
        23: ("amountToUiAmount", lambda: {"mint": _accounts(k, 1)[0], "amount": _amount(r)}),
        24: ("uiAmountToAmount", lambda: {"mint": _accounts(k, 1)[0],
                                          "uiAmount": r.take(len(data) - 1).decode()}),
    }
    if tag == 6:
        kind = r.u8()
        if kind >= len(_AUTHORITY_TYPES):
            raise ParseError("unknown authority type")
        owner_key = "mint" if kind < 2 else "account"
        info: Info = {owner_key: _accounts(k, 2)[0], "authorityType": _AUTHORITY_TYPES[kind],
                      "newAuthority": r.coption_pubkey()}
        return {"type": "setAuthority", "info": _signer(info, k, 1, "authority")}
    entry = simple.get(tag)
    if entry is None:
        raise ParseError(f"token instruction {tag} is not parsed")
    name, build = entry
    return {"type": name, "info": build()}


# -- Associated Token Account, Memo ------------------------------------------------------------

def _parse_ata(data: bytes, keys: list[str]) -> Info:
    tag = data[0] if data else 0
    if tag in (0, 1):
        a = _accounts(keys, 6)
        info: Info = {"source": a[0], "account": a[1], "wallet": a[2], "mint": a[3],
                      "systemProgram": a[4], "tokenProgram": a[5]}
        return {"type": "create" if tag == 0 else "createIdempotent", "info": info}
    if tag == 2:
        a = _accounts(keys, 7)
        info = {"nestedSource": a[0], "nestedMint": a[1], "destination": a[2],
                "nestedOwner": a[3], "ownerMint": a[4], "wallet": a[5], "tokenProgram": a[6]}
        return {"type": "recoverNested", "info": info}
    raise ParseError(f"associated token instruction {tag} is not parsed")


def _parse_memo(data: bytes, keys: list[str]) -> Json:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("memo is not UTF-8") from None


_PARSERS: dict[Pubkey, tuple[str, Callable[[bytes, list[str]], Json]]] = {
    SYSTEM_PROGRAM_ID: ("system", _parse_system),
    TOKEN_PROGRAM_ID: ("spl-token", _parse_token),
    TOKEN_2022_PROGRAM_ID: ("spl-token-2022", _parse_token),
    ASSOCIATED_TOKEN_PROGRAM_ID: ("spl-associated-token-account", _parse_ata),
    MEMO_PROGRAM_ID: ("spl-memo", _parse_memo),
    MEMO_V1_PROGRAM_ID: ("spl-memo", _parse_memo),
}


def parse_instruction(program_id: Pubkey, accounts: list[str], data: bytes,
                      stack_height: int | None) -> dict[str, Json]:
    """One ``UiInstruction``: parsed when a parser knows it, else partially decoded."""
    entry = _PARSERS.get(program_id)
    if entry is not None:
        name, parse = entry
        try:
            parsed = parse(data, accounts)
        except (ParseError, ValueError, IndexError):
            pass
        else:
            return {"program": name, "programId": str(program_id), "parsed": parsed,
                    "stackHeight": stack_height}
    return {"programId": str(program_id), "accounts": accounts, "data": b58encode(data),
            "stackHeight": stack_height}
