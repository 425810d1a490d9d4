"""The node itself: ``getIdentity``, ``getClusterNodes`` (where clients find the PubSub
WebSocket), ``getSlotLeader``, ``getSlotLeaders``.

The localnet is a one-node cluster: its identity is derived from the genesis hash (the same
chain keeps the same identity) and it leads every slot.
"""

from __future__ import annotations

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from localnet.rpc.params import (
    FEATURE_SET,
    SOLANA_CORE_VERSION,
    Methods,
    invalid_params,
    param_arg,
    param_config,
    param_int,
)
from localnet.txerrors import Json

MAX_GET_SLOT_LEADERS = 5000


class NodeMethods(Methods):
    rpc_address: str | None = None  # "host:port", as getClusterNodes advertises it
    pubsub_address: str | None = None

    @property
    def identity(self) -> Pubkey:
        return Keypair.from_seed(bytes(self.chain.genesis_hash)).pubkey()

    def get_identity(self, params: list[Json]) -> Json:
        return {"identity": str(self.identity)}

    def get_cluster_nodes(self, params: list[Json]) -> Json:
        return [{
            "pubkey": str(self.identity),
            "gossip": None,
            "tvu": None,
            "tpu": None,
            "tpuQuic": None,
            "tpuForwards": None,
            "tpuForwardsQuic": None,
            "tpuVote": None,
            "serveRepair": None,
            "rpc": self.rpc_address,
            "pubsub": self.pubsub_address,
            "version": SOLANA_CORE_VERSION,
            "featureSet": FEATURE_SET,
            "shredVersion": 0,
        }]

    def get_slot_leader(self, params: list[Json]) -> Json:
        self._bank_slot(param_config(params, 0))
        return str(self.identity)

    def get_slot_leaders(self, params: list[Json]) -> Json:
        start = param_int(param_arg(params, 0, "start_slot"), "start_slot")
        limit = param_int(param_arg(params, 1, "limit"), "limit")
        if limit > MAX_GET_SLOT_LEADERS:
            raise invalid_params(f"Invalid limit; max {MAX_GET_SLOT_LEADERS}")
        del start  # one node leads every slot
        return [str(self.identity)] * limit
