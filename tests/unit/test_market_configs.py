"""The config accounts `orderflow market configs` writes for a localnet, read back the way
their users read them: the engine's decoders, SPL Token's account layout, and the
localnet's own ``--account`` loader; and how ``up`` decides to build the market on them."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from solders.pubkey import Pubkey
from spl.token._layouts import ACCOUNT_LAYOUT

from localnet.preload import read_account_json
from orderflow.cli import main
from orderflow.market import configs
from orderflow.market.local import programs_loaded, with_config_accounts
from pipeline.venues import meteora_dlmm_admin as dlmm_admin
from pipeline.venues import raydium_cp as rcp

CP_MAINNET = "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C"
DLMM = "LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo"
TOKENKEG = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
# MeteoraAg/dlmm-sdk artifacts/JB65k1….json: the bin step 10 / base factor 10000 preset
REAL_PRESET = base64.b64decode("8j70IrVwOqoKABAnHgBYAogTQJwAADBXBQBWVf//qqoAAPQB")


def by_name() -> dict[str, configs.ConfigAccount]:
    return {a.name: a for a in configs.local_config_accounts()}


def test_amm_config_is_mainnets_config_zero_without_the_pool_fee() -> None:
    account = by_name()["raydium_cp_amm_config"]
    assert str(account.address) == "D4FPEruKEHrG5TenZ2mpDGEfu1iUvTiqBxvpU8HLBvC2"
    assert str(account.owner) == CP_MAINNET
    config = rcp.decode_amm_config(account.data)
    assert (config.index, config.trade_fee_rate, config.protocol_fee_rate,
            config.fund_fee_rate, config.create_pool_fee, config.disable_create_pool) == \
        (0, 2_500, 120_000, 40_000, 0, False)
    assert Pubkey.create_program_address([b"amm_config", b"\0\0", bytes([config.bump])],
                                         Pubkey.from_string(CP_MAINNET)) == account.address


def test_preset_is_a_byte_copy_of_the_real_one_at_its_pda() -> None:
    account = by_name()["meteora_dlmm_preset_parameter"]
    assert account.data == REAL_PRESET
    assert str(account.owner) == DLMM
    preset = dlmm_admin.decode_preset_parameter(account.data)
    assert account.address == dlmm_admin.preset_parameter_address(preset.bin_step,
                                                                  preset.base_factor)


def test_create_pool_fee_account_is_an_initialised_wsol_token_account() -> None:
    account = by_name()["raydium_cp_create_pool_fee"]
    assert str(account.address) == "DNXgeM9EiiaAbaWvwjHj9fQQLAX5ZsfHyvmYUNRAdNC8"
    assert account.owner == TOKENKEG and len(account.data) == 165
    parsed = ACCOUNT_LAYOUT.parse(account.data)
    assert Pubkey(parsed.mint) == configs.NATIVE_MINT
    assert (parsed.state, parsed.is_native_option, parsed.amount, parsed.delegate_option,
            parsed.close_authority_option) == (1, 1, 0, 0, 0)
    assert parsed.is_native == configs.rent_exempt(165) == 2_039_280


def test_files_load_as_localnet_account_switches(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["market", "configs", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    for account in configs.local_config_accounts():
        path = tmp_path / f"{account.name}.json"
        assert f"--account {account.address} {path}" in printed
        key, loaded = read_account_json(path)
        assert key == account.address
        assert (bytes(loaded.data), loaded.owner, loaded.executable, loaded.lamports) == \
            (account.data, account.owner, False, configs.rent_exempt(len(account.data)))


def test_up_builds_the_market_only_with_both_programs(tmp_path: Path) -> None:
    so = Path("/x.so")
    assert programs_loaded([(CP_MAINNET, so), (DLMM, so)])
    assert not programs_loaded([(DLMM, so)])
    assert not programs_loaded([])
    mine = "D4FPEruKEHrG5TenZ2mpDGEfu1iUvTiqBxvpU8HLBvC2=/mine.json"
    merged = with_config_accounts(mine, tmp_path).split(",")
    assert merged[0] == mine  # the user's file for that address wins
    assert [item.partition("=")[0] for item in merged[1:]] == [
        "DNXgeM9EiiaAbaWvwjHj9fQQLAX5ZsfHyvmYUNRAdNC8",
        str(by_name()["meteora_dlmm_preset_parameter"].address)]
    assert all(Path(item.partition("=")[2]).is_file() for item in merged[1:])
