"""Embedded infrastructure as real child processes: the Tansu broker, SeaweedFS (its
durable storage) and PostgreSQL.

``orderflow up`` (through :mod:`orderflow.stack`), the bench and the test fixtures start
what is not configured from here:

* :mod:`.processes`: :func:`spawn_child` starts any child so that it cannot outlive
  this process (``PR_SET_PDEATHSIG``, its own process group); :class:`EmbeddedProcess`
  stops it (SIGTERM, then SIGKILL to the group).
* :mod:`.broker`: :func:`start_broker` (Tansu, memory storage unless told otherwise) and
  :func:`start_durable_broker` (Tansu on S3 storage, the default of ``orderflow up``);
  the notes on what Tansu does and does not do are there.
* :mod:`.s3`: :func:`start_s3`, SeaweedFS's ``weed mini`` holding the durable broker's data.
* :mod:`.postgres`: :func:`start_postgres`, PostgreSQL 18 on a TCP port.

Topic creation is not here: it is production code, :func:`pipeline.topic_admin.create_topics`.
"""

from orderflow.embedded.broker import (
    MEMORY_STORAGE,
    TANSU_ENV_VARS,
    DurableBroker,
    start_broker,
    start_durable_broker,
    wait_kafka_ready,
)
from orderflow.embedded.postgres import (
    POSTGRES_OS_USER,
    ensure_database,
    postgres_install_dir,
    start_postgres,
)
from orderflow.embedded.processes import (
    PR_SET_PDEATHSIG,
    EmbeddedError,
    EmbeddedProcess,
    free_port,
    spawn_child,
)
from orderflow.embedded.s3 import S3_STORAGE, S3Store, start_s3, weed_binary

__all__ = [
    "MEMORY_STORAGE",
    "POSTGRES_OS_USER",
    "PR_SET_PDEATHSIG",
    "S3_STORAGE",
    "TANSU_ENV_VARS",
    "DurableBroker",
    "EmbeddedError",
    "EmbeddedProcess",
    "S3Store",
    "ensure_database",
    "free_port",
    "postgres_install_dir",
    "spawn_child",
    "start_broker",
    "start_durable_broker",
    "start_postgres",
    "start_s3",
    "wait_kafka_ready",
    "weed_binary",
]
