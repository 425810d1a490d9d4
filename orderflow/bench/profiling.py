"""py-spy profiles of the embedded processes (``--profile``), summarised."""

from __future__ import annotations

import shutil
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orderflow.embedded import EmbeddedProcess


class Profiler:
    """py-spy ``record --format raw`` on each process for the duration of the load."""

    def __init__(self, out_dir: Path, targets: dict[str, int]) -> None:
        self.out_dir = out_dir
        self.targets = targets
        self.procs: list[tuple[str, EmbeddedProcess]] = []

    @staticmethod
    def binary() -> str:
        local = Path(sys.executable).parent / "py-spy"
        found = str(local) if local.exists() else shutil.which("py-spy")
        if not found:
            from pipeline.errors import ConfigError

            raise ConfigError(message="--profile needs py-spy: .venv/bin/pip install py-spy")
        return found

    def start(self) -> None:
        from orderflow.embedded import spawn_child

        self.out_dir.mkdir(parents=True, exist_ok=True)
        exe = self.binary()
        for name, pid in self.targets.items():
            out = self.out_dir / f"{name}.txt"
            argv = [exe, "record", "--pid", str(pid), "--rate", "100", "--format", "raw",
                    "--output", str(out)]
            self.procs.append((name, spawn_child(f"py-spy-{name}", argv, None, self.out_dir,
                                                 stop_signal=signal.SIGINT)))

    def stop(self) -> dict[str, Any]:
        for _, proc in self.procs:
            proc.stop(30)
        return {name: summarize_profile(self.out_dir / f"{name}.txt") for name, _ in self.procs}


FIRST_PARTY = ("pipeline/", "sinks/", "ingress/", "localnet/")


def _frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (file.py)``: lines merged."""
    func, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{func} ({_short_path(path)})"


def _short_path(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1]
    for top in ("/pipeline/", "/ingress/", "/sinks/", "/localnet/", "/orderflow/"):
        if top in path:
            return top.strip("/") + "/" + path.split(top, 1)[1]
    if "/lib/python" in path:
        return "stdlib/" + path.split("/lib/python", 1)[1].split("/", 1)[-1]
    return path


def _package(frame: str) -> str:
    short = _short_path(frame.partition(" (")[2].rstrip(")").rsplit(":", 1)[0])
    head = short.split("/", 1)[0]
    if head == "stdlib":
        parts = short.split("/")
        return "stdlib/" + (parts[1].removesuffix(".py") if len(parts) > 1 else "?")
    return head.removesuffix(".py")


def summarize_profile(path: Path, top: int = 20) -> dict[str, Any]:
    """Self and inclusive shares of the top frames, and self time by package."""
    self_t: dict[str, int] = {}
    incl: dict[str, int] = {}
    ours: dict[str, int] = {}
    caller: dict[str, int] = {}
    pkgs: dict[str, int] = {}
    total = 0
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        return {"error": f"no profile: {exc}"}
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        n = int(count_text)
        frames = [f for f in stack.split(";") if " (" in f]
        if not frames:
            continue
        total += n
        leaf = _frame_name(frames[-1])
        self_t[leaf] = self_t.get(leaf, 0) + n
        pkg = _package(frames[-1])
        pkgs[pkg] = pkgs.get(pkg, 0) + n
        names = [_frame_name(f) for f in frames]
        for name in set(names):
            incl[name] = incl.get(name, 0) + n
            if name.partition(" (")[2].startswith(FIRST_PARTY):
                ours[name] = ours.get(name, 0) + n
        inner = next((x for x in reversed(names) if x.partition(" (")[2].startswith(
            FIRST_PARTY)), "(no first-party frame: event loop, library internals)")
        caller[inner] = caller.get(inner, 0) + n

    def share(d: dict[str, int]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in
                sorted(d.items(), key=lambda kv: -kv[1])[:top]] if total else []

    return {"samples": total, "self_pct": share(self_t), "inclusive_pct": share(incl),
            "first_party_inclusive_pct": share(ours),
            "by_innermost_first_party_frame_pct": share(caller),
            "self_by_package_pct": share(pkgs),
            "file": str(path)}
