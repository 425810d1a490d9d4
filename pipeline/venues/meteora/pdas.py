"""DLMM addresses and the bin arrays a swap walks through.

A swap must name every bin array it will touch as a writable remaining account, and the
program jumps over arrays that are not initialised (its bitmaps say which are), so the
list is: the active bin's array if initialised, then the next initialised arrays in the
swap's direction. Bin arrays ``-512..511`` are tracked in the pair's own 1024-bit bitmap;
beyond that range the ``BinArrayBitmapExtension`` account holds 12 rows of 512 bits per
sign, and the swap must pass it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from solders.pubkey import Pubkey

from pipeline.venues.meteora.layout import (
    BIN_ARRAY_BITMAP_SIZE,
    BINS_PER_ARRAY,
    EXTENSION_BITMAP_ROWS,
    PROGRAM_ID,
    BitmapExtension,
    LbPair,
)

EXTENSION_MIN_INDEX = -BIN_ARRAY_BITMAP_SIZE * (EXTENSION_BITMAP_ROWS + 1)
EXTENSION_MAX_INDEX = BIN_ARRAY_BITMAP_SIZE * (EXTENSION_BITMAP_ROWS + 1) - 1


def bin_array_index(bin_id: int) -> int:
    """The array holding ``bin_id``: floor division by 70 (so bin -1 is in array -1)."""
    return bin_id // BINS_PER_ARRAY


def bin_array_pda(lb_pair: Pubkey, index: int, program_id: Pubkey = PROGRAM_ID) -> Pubkey:
    """``["bin_array", lb_pair, i64_le(index)]``."""
    seeds = [b"bin_array", bytes(lb_pair), index.to_bytes(8, "little", signed=True)]
    return Pubkey.find_program_address(seeds, program_id)[0]


def bitmap_extension_pda(lb_pair: Pubkey, program_id: Pubkey = PROGRAM_ID) -> Pubkey:
    """``["bitmap", lb_pair]``: the ``BinArrayBitmapExtension`` of a pair."""
    return Pubkey.find_program_address([b"bitmap", bytes(lb_pair)], program_id)[0]


def event_authority_pda(program_id: Pubkey = PROGRAM_ID) -> Pubkey:
    """``["__event_authority"]``: Anchor's self-CPI event signer, an account of every swap."""
    return Pubkey.find_program_address([b"__event_authority"], program_id)[0]


def oracle_pda(lb_pair: Pubkey, program_id: Pubkey = PROGRAM_ID) -> Pubkey:
    """``["oracle", lb_pair]``; the pair also stores it (``LbPair.oracle``)."""
    return Pubkey.find_program_address([b"oracle", bytes(lb_pair)], program_id)[0]


def is_in_internal_bitmap(index: int) -> bool:
    return -BIN_ARRAY_BITMAP_SIZE <= index < BIN_ARRAY_BITMAP_SIZE


def needs_bitmap_extension(active_id: int, bin_array_indexes: Iterable[int]) -> bool:
    """Whether a swap reads arrays outside the pair's own bitmap: the active bin's array or
    any array it walks into. Then the program needs the extension account, not the
    program-id placeholder (``BitmapExtensionAccountIsNotProvided`` otherwise)."""
    indexes = [bin_array_index(active_id), *bin_array_indexes]
    return not all(is_in_internal_bitmap(i) for i in indexes)


def _extension_bit(extension: BitmapExtension, index: int) -> bool:
    if index > 0:
        row, bit = index // BIN_ARRAY_BITMAP_SIZE - 1, index % BIN_ARRAY_BITMAP_SIZE
        return bool(extension.positive[row] >> bit & 1)
    mirrored = -(index + 1)
    row, bit = mirrored // BIN_ARRAY_BITMAP_SIZE - 1, mirrored % BIN_ARRAY_BITMAP_SIZE
    return bool(extension.negative[row] >> bit & 1)


def is_bin_array_initialized(pair: LbPair, extension: BitmapExtension | None, index: int) -> bool:
    """The program's view of whether bin array ``index`` exists (has a set bitmap bit).

    Outside the internal range without the extension, nothing is known: False, so the walk
    stops there rather than guess."""
    if is_in_internal_bitmap(index):
        return bool(pair.bin_array_bitmap >> (index + BIN_ARRAY_BITMAP_SIZE) & 1)
    if extension is None or not EXTENSION_MIN_INDEX <= index <= EXTENSION_MAX_INDEX:
        return False
    return _extension_bit(extension, index)


def initialized_bin_arrays(pair: LbPair, extension: BitmapExtension | None,
                           swap_for_y: bool) -> Iterator[int]:
    """Indexes of initialised bin arrays from the active bin's array outward, in the swap's
    direction (down for X->Y, up for Y->X): the order the program visits them in
    (``get_bin_array_pubkeys_for_swap``)."""
    start = bin_array_index(pair.active_id)
    if swap_for_y:
        low = EXTENSION_MIN_INDEX if extension is not None else -BIN_ARRAY_BITMAP_SIZE
        indexes = range(start, low - 1, -1)
    else:
        high = EXTENSION_MAX_INDEX if extension is not None else BIN_ARRAY_BITMAP_SIZE - 1
        indexes = range(start, high + 1)
    return (i for i in indexes if is_bin_array_initialized(pair, extension, i))


def bin_arrays_for_swap(pair: LbPair, extension: BitmapExtension | None, swap_for_y: bool,
                        count: int) -> list[int]:
    """The first ``count`` bin array indexes a swap in this direction may need."""
    out: list[int] = []
    for index in initialized_bin_arrays(pair, extension, swap_for_y):
        if len(out) == count:
            break
        out.append(index)
    return out
