"""Solana's PubSub WebSocket for a :class:`~localnet.chain.Chain`, on the RPC port + 1.

Methods: ``accountSubscribe`` (encodings ``binary``/``base58``/``base64``/``jsonParsed``,
``dataSlice``), ``programSubscribe`` (``memcmp``/``dataSize`` filters), ``logsSubscribe``
(``all``, ``allWithVotes``, ``{"mentions": [pubkey]}``), ``signatureSubscribe`` (with
``enableReceivedNotification``), ``slotSubscribe``, ``rootSubscribe``, and each
``*Unsubscribe``. Notifications have Agave's shape
(``{"jsonrpc":"2.0","method":"<kind>Notification","params":{"result":…,"subscription":id}}``)
and commitment semantics (processed at landing, confirmed one slot later, finalized 32
slots later; default ``finalized``).

Not served: ``blockSubscribe``, ``slotsUpdatesSubscribe``, ``voteSubscribe`` (Agave gates
them behind validator flags; they answer Method not found). Accounts written directly with
``Chain.set_account`` (market setup), not by a transaction, are not notified.

Rooms: :mod:`.server` (the WebSocket, JSON-RPC envelope, per-connection queue),
:mod:`.hub` (when each subscription fires), :mod:`.subscriptions` (request parsing).
"""

from localnet.pubsub.hub import Hub
from localnet.pubsub.server import HUB_KEY, build_pubsub_app

__all__ = ["HUB_KEY", "Hub", "build_pubsub_app"]
