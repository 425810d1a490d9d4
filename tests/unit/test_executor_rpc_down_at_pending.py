"""An RPC outage during the chain lookup, before routing, ends the attempt like any other
transient error: a retry is scheduled. Found by the soak once it killed the localnet (an
outage now survived by the chain): 144 of 400 orders were left lost or stuck because the
attempt ended while the order was still ``pending`` and ``AttemptRestarted`` has no
pending -> pending edge, so ``_restart`` raised ``InvalidTransition`` out of the run.
The lifecycle now has that retry edge (pending -> pending, attempt + 1)."""

from __future__ import annotations

from pipeline.chain_history import SignatureEntry
from pipeline.errors import RpcUnavailable
from pipeline.executor import Outcome
from tests.unit.executor_doubles import Ledger, market_order, rig


class HistoryDownOnce(Ledger):
    """The wallet's history cannot be read once (the RPC is restarting), then can."""

    async def signatures_for_address(self, address: str, *, before: str | None = None,
                                     until: str | None = None,
                                     limit: int = 1000) -> list[SignatureEntry]:
        if self.history_calls == 0:
            self.history_calls += 1
            raise RpcUnavailable(message="getSignaturesForAddress: connection refused")
        return await super().signatures_for_address(address, before=before, until=until,
                                                    limit=limit)


async def test_an_rpc_outage_before_routing_schedules_a_retry() -> None:
    from solders.keypair import Keypair

    r = rig(ledger=HistoryDownOnce(Keypair()))
    assert await r.executor.run(market_order()) is Outcome.RETRY_SCHEDULED
    assert r.outbox.statuses("o-1") == ["pending", "pending"]
    assert r.ledger.sent == []
