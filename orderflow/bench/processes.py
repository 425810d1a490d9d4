"""CPU and memory of the system's processes, sampled from /proc."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from typing import Any


class ProcSampler:
    """CPU and memory of named process trees (a root pid and its descendants), from /proc,
    and the machine's busy CPU, so that load from other processes shows up.

    Memory is PSS (``smaps_rollup``: shared pages split between the processes sharing
    them, so PostgreSQL's shared buffers are not counted once per backend), else RSS.
    """

    def __init__(self, roots: dict[str, int], interval: float = 1.0) -> None:
        self.roots = roots
        self.interval = interval
        self.samples: dict[str, list[tuple[float, float, int]]] = {n: [] for n in roots}
        self.machine: list[tuple[float, float]] = []  # (time, busy cpu seconds)
        # Per tree: CPU accumulated from per-process deltas, so that a process that exits
        # (a database backend) does not take its past CPU out of the total.
        self._seen: dict[str, dict[int, float]] = {n: {} for n in roots}
        self._total: dict[str, float] = dict.fromkeys(roots, 0.0)
        self._tick = os.sysconf("SC_CLK_TCK")
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._task: asyncio.Task[None] | None = None

    def _stats(self) -> dict[int, tuple[int, float, int]]:
        """pid -> (ppid, cpu seconds, rss bytes) of every process."""
        out: dict[int, tuple[int, float, int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    raw = f.read()
            except OSError:
                continue
            fields = raw[raw.rfind(b")") + 2:].split()
            out[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / self._tick,
                               int(fields[21]) * self._page)
        return out

    @staticmethod
    def _pss(pid: int) -> int | None:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                for line in f:
                    if line.startswith(b"Pss:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
        return None

    def _busy(self) -> float:
        with open("/proc/stat", "rb") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return (sum(fields[:8]) - idle) / self._tick  # guest time is already in user

    def sample(self) -> None:
        stats = self._stats()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in stats.items():
            children.setdefault(ppid, []).append(pid)
        now = time.time()
        self.machine.append((now, self._busy()))
        others = set(self.roots.values())
        for name, root in self.roots.items():
            if root not in stats:
                continue
            tree, stack = [], [root]
            while stack:
                pid = stack.pop()
                tree.append(pid)
                # another entry's tree is its own (the bench is every child's parent)
                stack.extend(c for c in children.get(pid, []) if c not in others)
            seen = self._seen[name]
            now_cpu = {p: stats[p][1] for p in tree if p in stats}
            first = not seen
            for p, c in now_cpu.items():
                self._total[name] += c - seen.get(p, 0.0 if not first else c)
            self._seen[name] = now_cpu
            cpu = self._total[name]
            mem = 0
            for p in tree:
                pss = self._pss(p)
                mem += pss if pss is not None else stats[p][2] if p in stats else 0
            self.samples[name].append((now, cpu, mem))

    async def _run(self) -> None:
        while True:
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self.sample()
        self._task = asyncio.create_task(self._run(), name="bench-proc-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.sample()

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used between the first and last sample, per tree and in total."""
        out = {name: s[-1][1] - s[0][1] for name, s in self.samples.items() if len(s) >= 2}
        out["all_ours"] = sum(out.values())
        if len(self.machine) >= 2:
            out["machine_busy"] = self.machine[-1][1] - self.machine[0][1]
        return out

    def cpu(self) -> dict[str, Any]:
        """Cores used on average: per process tree, the whole machine, and everything else."""
        out: dict[str, Any] = {}
        ours = 0.0
        for name, s in self.samples.items():
            if len(s) >= 2 and s[-1][0] > s[0][0]:
                cores = (s[-1][1] - s[0][1]) / (s[-1][0] - s[0][0])
                out[name] = round(cores, 3)
                ours += cores
        m = self.machine
        if len(m) >= 2 and m[-1][0] > m[0][0]:
            busy = (m[-1][1] - m[0][1]) / (m[-1][0] - m[0][0])
            out["machine_busy"] = round(busy, 3)
            out["other_processes"] = round(max(0.0, busy - ours), 3)
        return out

    def timeline(self, step_s: float = 10.0) -> list[dict[str, Any]]:
        """Per ``step_s`` window: each tree's cores and memory (MB) at the window's end."""
        out: list[dict[str, Any]] = []
        if not self.machine:
            return out
        t0 = self.machine[0][0]
        for name, s in self.samples.items():
            marks: list[tuple[float, float, int]] = []
            for point in s:
                if not marks or point[0] - marks[-1][0] >= step_s or point is s[-1]:
                    marks.append(point)
            for k, (a, b) in enumerate(itertools.pairwise(marks)):
                if len(out) <= k:
                    out.append({"t_s": round(b[0] - t0)})
                out[k][name] = [round((b[1] - a[1]) / (b[0] - a[0]), 2) if b[0] > a[0]
                                else None, round(b[2] / 2**20, 1)]
        return out

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cpu_cores": self.cpu(), "memory_mb": {},
                               "timeline_cores_mb": self.timeline()}
        for name, s in self.samples.items():
            if len(s) < 2:
                continue
            mb = [r / 2**20 for _, _, r in s]
            mid = len(s) // 2
            minutes = (s[-1][0] - s[mid][0]) / 60
            out["memory_mb"][name] = {
                "start": round(mb[0], 1), "end": round(mb[-1], 1), "max": round(max(mb), 1),
                # growth over the second half of the run: ~0 when memory is flat
                "mb_per_min_second_half": round((mb[-1] - mb[mid]) / minutes, 2)
                if minutes > 0 else None}
        return out
