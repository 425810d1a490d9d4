"""``ConfirmationWatcher`` with a :class:`~pipeline.signature_feed.SignatureFeed` double.

A notification is a hint: it makes the watcher ask the chain about that one signature at
once, and only what the chain answers resolves a wait. While the feed is live the full
rounds slow to ``live_poll_s``; when it drops they are back at ``poll_s``. The rounds here
are long (10 s live, or the poll is what the test is about), so a wait that resolves
within a test's bound was resolved by the hint or the fast poll, not a slow round.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pipeline.signature_feed import Changed, Hint, SignatureFeed, pubsub_url
from pipeline.solana_rpc import ConfirmationWatcher, Landed
from tests.helpers import wait_until
from tests.unit.test_confirmation_watcher import CONFIRMED, PROCESSED, MemoryChain

LIVE_POLL_S = 10.0


class FeedDouble:
    """A feed the test drives: ``fire`` is a notification, ``drop``/``connect`` the socket."""

    def __init__(self, *, live: bool = True) -> None:
        self._live = live
        self.watched: set[str] = set()
        self.ever_watched: list[str] = []
        self.stopped = False
        self._on_hint: Hint | None = None
        self._on_change: Changed | None = None

    @property
    def live(self) -> bool:
        return self._live

    def start(self, on_hint: Hint, on_change: Changed) -> None:
        self._on_hint, self._on_change = on_hint, on_change

    def watch(self, signature: str) -> None:
        self.watched.add(signature)
        self.ever_watched.append(signature)

    def unwatch(self, signature: str) -> None:
        self.watched.discard(signature)

    async def stop(self) -> None:
        self.stopped = True
        if self._live:  # as the real feed: no longer live, said without suspending
            self.drop()

    def fire(self, signature: str) -> None:
        assert self._on_hint is not None
        self._on_hint(signature)

    def drop(self) -> None:
        assert self._on_change is not None
        self._live = False
        self._on_change()


@asynccontextmanager
async def watching(chain: MemoryChain, feed: SignatureFeed, *, poll_s: float = LIVE_POLL_S
                   ) -> AsyncIterator[ConfirmationWatcher]:
    watcher = ConfirmationWatcher(chain, poll_s=poll_s, commitment="confirmed", feed=feed,
                                  live_poll_s=LIVE_POLL_S)
    watcher.start()
    try:
        yield watcher
    finally:
        await watcher.stop()


async def _first_round(chain: MemoryChain, watcher: ConfirmationWatcher, sig: str
                       ) -> asyncio.Task[Landed]:
    """Start a wait and let its first full round (at once, then not for 10 s) pass."""
    task = asyncio.ensure_future(watcher.wait(sig, 2_000))
    await wait_until(lambda: chain.rounds >= 1 and chain.status_calls, 5, "the first round")
    return task


async def test_a_notification_makes_the_watcher_check_that_signature_at_once() -> None:
    chain, feed = MemoryChain(), FeedDouble()
    async with watching(chain, feed) as watcher:
        task = await _first_round(chain, watcher, "a")
        other = asyncio.ensure_future(watcher.wait("b", 2_000))
        await wait_until(lambda: feed.watched == {"a", "b"}, 5, "both subscribed")
        chain.land("a")
        feed.fire("a")
        assert await asyncio.wait_for(task, 5) == Landed(7, None)
        assert chain.status_calls[-1] == ["a"]  # only the hinted one, no round for "b"
        assert chain.rounds == 1
        assert feed.watched == {"b"}  # a settled wait unsubscribes
        other.cancel()
    assert feed.stopped


async def test_a_notification_the_chain_does_not_bear_out_resolves_nothing() -> None:
    chain, feed = MemoryChain(), FeedDouble()
    async with watching(chain, feed) as watcher:
        task = await _first_round(chain, watcher, "a")
        chain.land("a", level=PROCESSED)  # the chain says: not yet at our commitment
        calls = len(chain.status_calls)
        feed.fire("a")
        await wait_until(lambda: len(chain.status_calls) > calls, 5, "the hinted check")
        assert chain.status_calls[-1] == ["a"] and not task.done()
        feed.fire("never-waited-for")  # not ours: no check at all
        chain.land("a", level=CONFIRMED)
        feed.fire("a")
        assert await asyncio.wait_for(task, 5) == Landed(7, None)
        assert ["never-waited-for"] not in chain.status_calls


async def test_without_the_feed_the_poll_takes_over_at_its_own_pace() -> None:
    chain, feed = MemoryChain(), FeedDouble()
    async with watching(chain, feed, poll_s=0.01) as watcher:
        task = await _first_round(chain, watcher, "a")
        chain.land("a")  # no notification comes: the socket is gone
        feed.drop()
        assert await asyncio.wait_for(task, 5) == Landed(7, None)
        assert chain.rounds >= 2


async def test_a_live_feed_slows_the_full_rounds() -> None:
    chain, feed = MemoryChain(), FeedDouble()
    async with watching(chain, feed, poll_s=0.01) as watcher:
        task = await _first_round(chain, watcher, "a")
        feed.fire("a")  # answered "unknown": nothing settles, and no full round follows
        await wait_until(lambda: len(chain.status_calls) >= 2, 5, "the hinted check")
        assert chain.rounds == 1 and not task.done()
        task.cancel()


def test_pubsub_url_as_solana_clients_derive_it() -> None:
    assert pubsub_url("http://127.0.0.1:8899") == "ws://127.0.0.1:8900"
    assert pubsub_url("https://api.devnet.solana.com") == "wss://api.devnet.solana.com"
    assert pubsub_url("https://rpc.example/key/abc") == "wss://rpc.example/key/abc"
    assert pubsub_url("https://u:p@h.example:443/x") == "wss://u:p@h.example:444/x"


async def test_stop_returns_when_the_feed_wakes_the_watcher_as_it_is_cancelled() -> None:
    """Found as a hung worker stop: the feed's last "no longer live" set the wake event in
    the same loop iteration as the cancel, and 3.11's ``wait_for`` swallowed the cancel."""
    chain, feed = MemoryChain(), FeedDouble()
    watcher = ConfirmationWatcher(chain, poll_s=LIVE_POLL_S, commitment="confirmed",
                                  feed=feed, live_poll_s=LIVE_POLL_S)
    watcher.start()
    task = await _first_round(chain, watcher, "a")
    await asyncio.wait_for(watcher.stop(), 5)
    assert task.done() and feed.stopped
