"""The admin-created accounts a pool needs, for a cluster that has none: our localnet.

Devnet and mainnet have Raydium's ``AmmConfig`` accounts and Meteora's preset parameter
accounts (only those programs' admins can create them). A fresh localnet has neither, so
they are provided the way ``solana-test-validator`` users do: ``--account ADDRESS FILE``
with files in ``solana account --output json`` format, at the addresses and with the
owners, layouts and values of the mainnet accounts (laid out by the engine's own encoders,
read back by its decoders in the tests):

- CP-Swap ``AmmConfig`` index 0 (the PDA ``["amm_config", 0u16 be]``): 0.25 % trade fee,
  12 % / 4 % of it to protocol / fund, as mainnet's; ``create_pool_fee`` 0 here;
- the wrapped-SOL account ``initialize`` pays that fee into (its address is fixed in the
  binary; ``initialize`` loads it as a token account even when the fee is 0);
- the DLMM ``PresetParameter`` for bin step 10 / base factor 10000, a copy of mainnet's.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from pathlib import Path

from solders.pubkey import Pubkey

from pipeline.venues import meteora_dlmm_admin as dlmm_admin
from pipeline.venues import raydium_cp_admin as ray_admin
from pipeline.venues.base import Cluster
from pipeline.venues.meteora_dlmm import PROGRAM_ID as DLMM_PROGRAM
from pipeline.venues.raydium_cp import RAYDIUM_CP_PROGRAM, AmmConfig

NATIVE_MINT = Pubkey.from_string("So11111111111111111111111111111111111111112")
TOKEN_ACCOUNT_LEN = 165
U64_MAX = 2**64 - 1

LOCAL_AMM_CONFIG_INDEX = 0
LOCAL_PRESET = dlmm_admin.PresetParameter(  # mainnet's bin step 10 / base factor 10000 preset
    version=1, bin_step=10, base_factor=10_000, filter_period=30, decay_period=600,
    reduction_factor=5_000, variable_fee_control=40_000, max_volatility_accumulator=350_000,
    protocol_share=500, min_bin_id=-43_690, max_bin_id=43_690)


def rent_exempt(size: int) -> int:
    """Lamports that keep ``size`` bytes rent-exempt (the default rent: 3480 lamports per
    byte-year, two years, plus the 128-byte account overhead)."""
    return (size + 128) * 6_960


def local_amm_config() -> tuple[Pubkey, AmmConfig]:
    program = RAYDIUM_CP_PROGRAM[Cluster.LOCALNET]
    address, bump = ray_admin.amm_config_address(program, LOCAL_AMM_CONFIG_INDEX)
    admin = ray_admin.ADMIN[Cluster.LOCALNET]
    return address, AmmConfig(
        bump=bump, disable_create_pool=False, index=LOCAL_AMM_CONFIG_INDEX,
        trade_fee_rate=2_500, protocol_fee_rate=120_000, fund_fee_rate=40_000,
        create_pool_fee=0, protocol_owner=admin, fund_owner=admin, creator_fee_rate=0)


def local_preset() -> tuple[Pubkey, dlmm_admin.PresetParameter]:
    key = dlmm_admin.preset_parameter_address(LOCAL_PRESET.bin_step, LOCAL_PRESET.base_factor,
                                              DLMM_PROGRAM)
    return key, LOCAL_PRESET


def wsol_account_data(owner: Pubkey, rent_reserve: int) -> bytes:
    """An initialised SPL Token account of the native mint holding nothing beyond rent."""
    return struct.pack("<32s32sQI32sBIQQI32s", bytes(NATIVE_MINT), bytes(owner), 0, 0,
                       bytes(32), 1, 1, rent_reserve, 0, 0, bytes(32))


@dataclass(frozen=True, slots=True)
class ConfigAccount:
    name: str
    address: Pubkey
    owner: Pubkey
    data: bytes

    def json(self) -> dict[str, object]:
        """What ``solana account ADDRESS --output json`` prints for this account."""
        return {"pubkey": str(self.address), "account": {
            "lamports": rent_exempt(len(self.data)),
            "data": [base64.b64encode(self.data).decode(), "base64"],
            "owner": str(self.owner), "executable": False, "rentEpoch": U64_MAX,
            "space": len(self.data)}}


def local_config_accounts() -> list[ConfigAccount]:
    config_key, config = local_amm_config()
    preset_key, preset = local_preset()
    token_program = ray_admin.TOKEN_PROGRAM
    receiver = ray_admin.CREATE_POOL_FEE_RECEIVER[Cluster.LOCALNET]
    return [
        ConfigAccount("raydium_cp_amm_config", config_key,
                      RAYDIUM_CP_PROGRAM[Cluster.LOCALNET], ray_admin.encode_amm_config(config)),
        ConfigAccount("raydium_cp_create_pool_fee", receiver, token_program,
                      wsol_account_data(ray_admin.ADMIN[Cluster.LOCALNET],
                                        rent_exempt(TOKEN_ACCOUNT_LEN))),
        ConfigAccount("meteora_dlmm_preset_parameter", preset_key, DLMM_PROGRAM,
                      dlmm_admin.encode_preset_parameter(preset)),
    ]


def write_config_accounts(out_dir: Path) -> list[tuple[str, Path]]:
    """Write one JSON file per account; (address, path) pairs for ``--account``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, Path]] = []
    for account in local_config_accounts():
        path = out_dir / f"{account.name}.json"
        path.write_text(json.dumps(account.json(), indent=2) + "\n")
        written.append((str(account.address), path))
    return written
