"""ORDERFLOW_TOKENS: tokens beyond SOL/USDC/USDT (a devnet market's test mints)."""

from __future__ import annotations

import pytest
from solders.pubkey import Pubkey

from orderflow.cli import main
from orderflow.market.create import tokens_line
from pipeline import tokens
from pipeline.errors import InvalidOrder

MINT = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"


@pytest.fixture(autouse=True)
def private_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registration mutates the process's registry: give each test its own copy."""
    monkeypatch.setattr(tokens, "_BY_SYMBOL", dict(tokens._BY_SYMBOL))
    monkeypatch.setattr(tokens, "_BY_MINT", dict(tokens._BY_MINT))


def test_parse() -> None:
    assert tokens.parse_tokens(f" testa={MINT}:9 , ") == (tokens.Token("TESTA", MINT, 9),)
    assert tokens.parse_tokens(None) == tokens.parse_tokens("") == ()
    for bad in (f"TESTA={MINT}", f"TESTA:{MINT}:9", "TESTA=short:9", f"TE-ST={MINT}:9",
                f"TESTA={MINT}:19"):
        with pytest.raises(ValueError, match="SYMBOL=MINT:DECIMALS"):
            tokens.parse_tokens(bad)


def test_registered_tokens_resolve_by_symbol_and_mint() -> None:
    with pytest.raises(InvalidOrder):
        tokens.resolve_token("TESTA")
    token = tokens.Token("TESTA", MINT, 9)
    tokens.register_tokens((token,))
    tokens.register_tokens((token,))  # the same again is harmless
    assert tokens.resolve_token("testa") == tokens.resolve_token(MINT) == token
    assert tokens.token_by_mint(MINT) == token


def test_a_symbol_or_mint_never_changes_meaning() -> None:
    with pytest.raises(ValueError, match="already"):
        tokens.register_tokens((tokens.Token("USDC", MINT, 6),))
    with pytest.raises(ValueError, match="already"):
        tokens.register_tokens((tokens.Token("FAKE", tokens.USDC.mint, 6),))
    assert tokens.token_by_mint(MINT) is None  # nothing of a refused batch is registered


def test_bad_tokens_stop_the_command(monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ORDERFLOW_TOKENS", "nonsense")
    assert main(["migrate"]) == 2
    assert "ORDERFLOW_TOKENS" in capsys.readouterr().err


def test_market_tokens_line_names_only_unknown_mints() -> None:
    sol = Pubkey.from_string(tokens.SOL.mint)
    assert tokens_line(((sol, 9), (Pubkey.from_string(MINT), 6))) == f"TESTB={MINT}:6"
    assert tokens_line(((sol, 9), (Pubkey.from_string(tokens.USDC.mint), 6))) == ""
