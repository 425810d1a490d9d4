"""The chain a localnet process starts with: resumed or new, forked or not, preloaded.

Kept apart from :mod:`localnet.server` (which serves it) so the order is in one place:
persisted state first (it is the chain), then the fork (so what is saved is never fetched
again), then ``--account``/``--bpf-program`` (they override both, on every start), then the
market's saved books if the chain was resumed.
"""

from __future__ import annotations

import logging

from localnet import fork, persist, preload
from localnet.chain import Chain
from localnet.config import LocalnetConfig, LocalnetConfigError
from localnet.market import resume as market_resume
from localnet.market.resume import MarketSnapshot

log = logging.getLogger(__name__)


def build_chain(config: LocalnetConfig) -> tuple[Chain, persist.ChainStore | None,
                                                  MarketSnapshot | None]:
    """``(chain, store or None, the market to resume or None)``; errors name the setting."""
    store: persist.ChainStore | None = None
    resumed = False
    if config.persist:
        chain, store, resumed = persist.open_chain(config.data_dir / "localnet",
                                                   slot_ms=config.slot_ms, fresh=config.reset)
    else:
        chain = Chain(slot_ms=config.slot_ms)
    if config.fork_url:
        try:
            fork.attach(chain, config.fork_url, store.known_keys() if store else ())
        except fork.ForkError as exc:
            raise LocalnetConfigError(f"--fork-url: {exc}") from None
        log.info("forking %s: missing accounts are fetched on first use", config.fork_url)
    preload.load(chain, config.programs, config.accounts)
    for address, path in config.programs:
        log.info("program %s loaded from %s", address, path)
    for address, path in config.accounts:
        log.info("account %s loaded from %s", address, path)
    saved = market_resume.load(store) if store is not None and resumed else None
    if resumed:
        log.info("resumed the chain at slot %d (%s); --reset starts from genesis", chain.slot,
                 "with the market's books" if saved else "no market saved yet")
    return chain, store, saved
