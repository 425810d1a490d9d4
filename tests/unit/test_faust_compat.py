"""The commit-offset guard: faust must never commit past an order still running (or
whose task died), or a crash loses it (issue 9, defect 3b)."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.consumer import Consumer
from faust.types import TP
from intervaltree import IntervalTree

from pipeline.faust_compat import HeldOffsets, safe_new_offset

ORIGINAL_NEW_OFFSET = Consumer._new_offset  # before any guard_commit_gaps() of the session
TP0 = TP("orders", 0)


def consumer(committed: int | None, acked: list[int]) -> Any:
    return SimpleNamespace(
        _acked=defaultdict(list, {TP0: list(acked)}),
        _acked_index=defaultdict(set, {TP0: set(acked)}),
        _gap=defaultdict(IntervalTree),
        _committed_offset=defaultdict(lambda: None, {TP0: committed}),
    )


@pytest.mark.parametrize(("committed", "held", "acked"), [
    (31, 31, [32, 33, 34]),   # the one-message gap at the committed position
    (None, 0, [1, 2, 3]),     # nothing committed yet: faust does not check the head at all
    (0, 0, [1, 2]),           # committed offset 0 is falsy to faust
])
def test_never_commits_past_a_held_offset(committed: int | None, held: int,
                                          acked: list[int]) -> None:
    offsets = HeldOffsets()
    offsets.hold("orders", 0, held)
    ours = safe_new_offset(consumer(committed, acked), TP0, offsets)
    assert ours is None or ours <= held
    # faust's own _new_offset commits past it: the defect this guard exists for
    theirs = ORIGINAL_NEW_OFFSET(consumer(committed, acked), TP0)
    assert theirs is not None and theirs > held


def test_commits_up_to_a_held_offset_in_the_middle() -> None:
    offsets = HeldOffsets()
    offsets.hold("orders", 0, 12)
    assert safe_new_offset(consumer(10, [10, 11, 13]), TP0, offsets) == 12


def test_commits_the_consecutive_acknowledged_run_when_nothing_is_held() -> None:
    c = consumer(31, [31, 32, 33, 35])
    assert safe_new_offset(c, TP0, HeldOffsets()) == 34
    assert c._acked[TP0] == [35]


def test_held_offsets_release() -> None:
    offsets = HeldOffsets()
    offsets.hold("orders", 1, 5)
    offsets.hold("orders", 1, 7)
    offsets.release("orders", 1, 5)
    assert offsets.lowest("orders", 1) == 7
    offsets.release("orders", 1, 7)
    assert offsets.lowest("orders", 1) is None and len(offsets) == 0
