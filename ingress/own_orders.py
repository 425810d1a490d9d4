"""Which orders an API key may follow on a WebSocket: the ones it submitted.

A keyed all-orders stream carries only the key's orders, and a control message cannot
subscribe it to another key's. Ownership is recorded before an order is produced
(``ApiKeyStore.record_order``), so it is known before the order's first event exists;
each order is looked up once per connection (batched per batch of events), and the
answers are remembered up to a bound.
"""

from __future__ import annotations

from collections.abc import Iterable

from ingress.api_keys import ApiKeyStore

REMEMBERED = 50_000


class OwnOrders:
    def __init__(self, owners: ApiKeyStore | None, key_id: str) -> None:
        self._owners = owners
        self.key_id = key_id
        self._mine: set[str] = set()
        self._theirs: set[str] = set()

    async def mine(self, order_ids: Iterable[str]) -> set[str]:
        """Those of ``order_ids`` this key submitted; raises
        :class:`ingress.ports.StoreUnavailable` when the store cannot answer."""
        wanted = set(order_ids)
        unknown = [o for o in wanted if o not in self._mine and o not in self._theirs]
        if unknown:
            owned = set() if self._owners is None else await self._owners.owned(
                self.key_id, unknown)
            for known in (self._mine, self._theirs):
                if len(known) > REMEMBERED:  # asked again when needed, never grows unbounded
                    known.clear()
            self._mine |= owned
            self._theirs |= set(unknown) - owned
        return wanted & self._mine
