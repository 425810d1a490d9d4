"""Meteora DLMM adapter: read pairs from the chain, quote them exactly, build ``swap2``.

Everything here is pure (bytes in, dataclasses and instructions out); fetching accounts
(the pair, its bitmap extension PDA, the bin arrays from :func:`bin_arrays_for_swap`) and
the cluster clock is the caller's. A quote costs one ``getMultipleAccounts`` for the pair,
its extension and the bin arrays once their indexes are known from the pair's bitmap
(two round trips on a cold pair: the pair first, then the arrays).

Layouts and instruction: ``MeteoraAg/dlmm-sdk`` ``idls/dlmm.json`` (program 0.12.0);
quote: its ``commons/src/quote.rs`` through :mod:`dexmath.dlmm`. The program's
``ExceededAmountSlippageTolerance`` (6003) maps to ``slippage_exceeded`` in
:data:`pipeline.errors.PROGRAM_ERRORS`.
"""

from __future__ import annotations

from pipeline.venues.meteora.instruction import (
    MEMO_PROGRAM_ID,
    SWAP2_DISCRIMINATOR,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    AccountsType,
    RemainingAccountsSlice,
    Swap2Accounts,
    encode_swap2_data,
    instruction_discriminator,
    pool_discovery_filters,
    swap2_instruction,
    token_program,
)
from pipeline.venues.meteora.layout import (
    BIN_ARRAY_DISCRIMINATOR,
    BIN_ARRAY_SIZE,
    BINS_PER_ARRAY,
    BITMAP_EXTENSION_SIZE,
    LB_PAIR_DISCRIMINATOR,
    LB_PAIR_SIZE,
    PROGRAM_ID,
    TOKEN_X_MINT_OFFSET,
    TOKEN_Y_MINT_OFFSET,
    Bin,
    BinArray,
    BitmapExtension,
    DecodeError,
    LbPair,
    RewardInfo,
    StaticParameters,
    VariableParameters,
    account_discriminator,
    decode_bin_array,
    decode_bitmap_extension,
    decode_lb_pair,
)
from pipeline.venues.meteora.pdas import (
    bin_array_index,
    bin_array_pda,
    bin_arrays_for_swap,
    bitmap_extension_pda,
    event_authority_pda,
    initialized_bin_arrays,
    is_bin_array_initialized,
    needs_bitmap_extension,
    oracle_pda,
)
from pipeline.venues.meteora.quote import (
    DlmmPool,
    MissingBinArrays,
    PoolNotTradable,
    SwapQuote,
    UnsupportedPool,
    check_tradable,
    quote_exact_in,
    supports_limit_orders,
)

__all__ = [
    "BINS_PER_ARRAY", "BIN_ARRAY_DISCRIMINATOR", "BIN_ARRAY_SIZE", "BITMAP_EXTENSION_SIZE",
    "LB_PAIR_DISCRIMINATOR", "LB_PAIR_SIZE", "MEMO_PROGRAM_ID", "PROGRAM_ID",
    "SWAP2_DISCRIMINATOR", "TOKEN_2022_PROGRAM_ID", "TOKEN_PROGRAM_ID", "TOKEN_X_MINT_OFFSET",
    "TOKEN_Y_MINT_OFFSET", "AccountsType", "Bin", "BinArray", "BitmapExtension", "DecodeError",
    "DlmmPool", "LbPair", "MissingBinArrays", "PoolNotTradable", "RemainingAccountsSlice",
    "RewardInfo", "StaticParameters", "Swap2Accounts", "SwapQuote", "UnsupportedPool",
    "VariableParameters", "account_discriminator", "bin_array_index", "bin_array_pda",
    "bin_arrays_for_swap", "bitmap_extension_pda", "check_tradable", "decode_bin_array",
    "decode_bitmap_extension", "decode_lb_pair", "encode_swap2_data", "event_authority_pda",
    "initialized_bin_arrays", "instruction_discriminator", "is_bin_array_initialized",
    "needs_bitmap_extension", "oracle_pda", "pool_discovery_filters", "quote_exact_in",
    "supports_limit_orders", "swap2_instruction", "token_program",
]
