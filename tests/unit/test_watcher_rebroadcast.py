"""A refused rebroadcast must not hold up confirmations (found by the soak: every status
poll failed while the RPC answered 429 to the rebroadcasts, so signatures that had
landed were reported as an RPC outage)."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.errors import RpcUnavailable
from pipeline.solana_rpc import ConfirmationWatcher, Landed


class RefusingRebroadcasts:
    """Landed at slot 7 from the second status poll on; every rebroadcast is a 429."""

    def __init__(self) -> None:
        self.polls = 0
        self.resends = 0

    async def resend(self, tx_bytes: bytes) -> None:
        self.resends += 1
        raise RpcUnavailable(message="sendTransaction (rebroadcast): 429 Too Many Requests")

    async def block_height(self) -> int:
        return 10

    async def statuses(self, signatures: Sequence[str]) -> list[tuple[int, str | None, int] | None]:
        self.polls += 1
        return [(7, None, 1) if self.polls >= 2 else None for _ in signatures]


async def test_a_refused_rebroadcast_does_not_stop_the_status_poll() -> None:
    chain = RefusingRebroadcasts()
    watcher = ConfirmationWatcher(chain, poll_s=0.001, commitment="confirmed",  # type: ignore[arg-type]
                                  rebroadcast_s=0.0, rpc_outage_s=60.0)
    watcher.start()
    try:
        assert await watcher.wait("sig", 1_000, b"tx-bytes") == Landed(7, None)
    finally:
        await watcher.stop()
    assert chain.resends >= 1
