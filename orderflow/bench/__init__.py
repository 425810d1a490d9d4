"""``orderflow bench``: drive a running system with N orders, measured against the machine's limits.

By default it starts its own embedded system the way ``orderflow up`` does (Tansu broker,
PostgreSQL, localnet with its market, a funded wallet, ``--workers`` workers and the
ingress) on free ports, in ``<data_dir>/bench/run-*`` (logs kept there); or it drives any
running system given ``--bootstrap`` (and ``--ingress-url`` for HTTP orders).

Measurement
-----------
* Orders always route: SOL->USDC 0.01 SOL and USDC->SOL 1 USDC (each amount unique by a
  few base units), ``--slippage-bps`` 300. Submitted via HTTP (``POST
  /api/orders/execute``), direct Kafka producers (``ExecuteOrder`` v1 on ``orders``), or
  both (alternating), as fast as possible (``--rate 0``) or paced at ``--rate`` orders/s.
* Each order's times come from the ``order-status`` stream, consumed with aiokafka (no
  group, every partition, positioned at the end before the first order): the event's
  ``ts`` (the worker's clock at the transition) and the bench's own receive time. The
  submit time is the bench's clock just before the order is sent (same host, same clock as
  the embedded system; an external system's clock skew would show in the latencies).
* Throughput sustained: confirmations per second between the 10th and 90th percentile of
  confirmation times (ramp-up and tail excluded); ``overall`` is confirmed / (last
  confirmation - first submit).
* Stages (attempt 1, orders that never retried): ``queue`` submit -> the worker's
  ``pending`` (for HTTP orders the ingress publishes one ``pending`` at acceptance and the
  worker the same event again when it picks the order up: the later one is the worker's),
  ``pending_to_routing`` (journal claim + both quotes), ``routing_to_building`` (engine only:
  choose, journal, publish), ``building_to_submitted`` (swap from the venue, sign, journal
  the broadcast, sendTransaction), ``submitted_to_confirmed`` (the chain's commitment, the
  batched status poll, balances from getTransaction).
* Engine overhead (``--trace``, embedded only): the worker's venue and RPC traffic goes
  through a recording proxy in the bench, which keys every call to its order (quotes and
  swaps by input mint + the order's unique amount, sendTransaction/getTransaction by
  signature) and notes when ``getSignatureStatuses`` first reported the signature
  confirmed. Per order, the time waiting on the venue or the chain is the union of its
  quote, swap, send and getTransaction calls and of [send answered, first status poll that
  saw it confirmed]; overhead = the order's latency minus that union. ``worker`` counts
  from the worker's ``pending`` event, ``total`` from the submit. The proxy adds a hop to
  each call (counted as waiting, so it does not inflate the overhead) and CPU to the bench:
  measure throughput without ``--trace``.
* Worker metrics: with the embedded system every worker serves Prometheus metrics; they are
  scraped before and after the load and the histograms' differences summarised (quantiles
  interpolated within buckets, like ``histogram_quantile``).
* Ceilings, measured in the same run after the load (nothing else running):
  ``chain``  SPL ``TransferChecked`` transactions, signed ahead, sent straight to the
             JSON-RPC (``skipPreflight``, ``--chain-senders`` concurrent senders,
             ``--chain-batch`` per request) for ``--ceiling-seconds``, confirmed with
             batched getSignatureStatuses; ``tx_per_s`` = confirmed / send window.
  ``flow``   the engine's external work with no engine: per order two quotes, /swap, sign,
             sendTransaction (with preflight, as the engine sends), batched confirmation,
             getTransaction; ``--flow-concurrency`` orders at once; no Kafka, no database.
  ``broker`` aiokafka producer -> consumer on a scratch topic with the ``orders`` partition
             count, ``--broker-messages`` messages of an order's size, ``acks=all``.
* ``--profile DIR`` records the worker(s), localnet and ingress with py-spy during the load
  (``pip install py-spy``; the profilers take CPU: do not compare those runs' numbers).

Modules
-------
``cli`` options and ``BenchOptions``; ``run`` one run end to end and ``run_bench``;
``specs`` the orders; ``load`` submitting them; ``status`` the status stream;
``analysis`` per-order times and results; ``trace`` the edge trace; ``metrics`` worker
metrics; ``processes`` CPU and memory from /proc; ``ceilings`` chain, flow and broker;
``environment`` the machine; ``system`` the embedded system (on :mod:`orderflow.stack`);
``profiling`` py-spy; ``report`` the printed summary; ``stats`` and ``http`` helpers.
"""

from orderflow.bench.cli import BenchOptions, add_arguments
from orderflow.bench.run import bench, run_bench

__all__ = ["BenchOptions", "add_arguments", "bench", "run_bench"]
