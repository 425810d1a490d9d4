"""Solana JSON-RPC 2.0 over HTTP for a :class:`~localnet.chain.Chain`.

The engine uses solana-py's ``AsyncClient`` unchanged against this server, so
every result and error has the exact shape of an Agave 2.x RPC node (checked
by parsing with solana-py's strict typed responses in the tests).

Semantics worth knowing:

* ``commitment`` selects the bank for slot, block height and blockhash
  (processed = latest, confirmed = one slot behind, finalized = 32 behind,
  so a ``finalized`` blockhash has less life left, as on mainnet). Account
  state is LiteSVM's single latest state whatever the commitment.
* ``sendTransaction`` without ``skipPreflight`` verifies signatures (-32003)
  and simulates (-32002) first. With ``skipPreflight`` a transaction the
  cluster would drop (expired blockhash, unfunded payer...) still gets its
  signature back and then never lands, exactly like a real leader dropping
  it. ``maxRetries`` is accepted and ignored: the "leader" is in-process.
* ``getTransaction`` honours ``confirmed``/``finalized`` (``processed`` is
  rejected, as on Solana) and ``maxSupportedTransactionVersion``.

``getSignaturesForAddress`` is answered from a per-address index (:mod:`localnet.history`);
``getBlock``/``getBlocks``/``getBlocksWithLimit``/``getBlockTime``/
``getRecentPrioritizationFees`` from the block index (:mod:`localnet.blocks`, one block a
slot, known from when the app was built). ``jsonParsed`` covers SPL Token accounts and
transactions (System, SPL Token, ATA, Memo; see :mod:`localnet.parsed`).
``getClusterNodes`` advertises the PubSub WebSocket (:mod:`localnet.pubsub`, RPC port + 1).

Not supported: ``base64+zstd``, ``getBlockCommitment``, ``getLeaderSchedule``, vote, stake,
inflation and supply queries.

Fault switches (latency, HTTP 429/5xx, ``-32005``/``-32603``, held responses, dropped and
late transactions) are off by default; see :mod:`localnet.faults` and ``/admin/faults``.

Rooms: :mod:`.app` (envelope, cluster methods, the aiohttp app), :mod:`.transactions`,
:mod:`.accounts`, :mod:`.blocks`, :mod:`.node` (identity, cluster nodes, leaders),
:mod:`.filters` (``memcmp``/``dataSize``), :mod:`.params` (error codes and parameter reading).
"""
from localnet.rpc.app import CHAIN_KEY, RPC_FAULTS_KEY, _Rpc, build_rpc_app
from localnet.rpc.params import RpcError

__all__ = ["CHAIN_KEY", "RPC_FAULTS_KEY", "RpcError", "_Rpc", "build_rpc_app"]
