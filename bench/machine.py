"""The machine a bench runs on, CPU pinning, and a process's CPU time and resident memory from /proc.

Every bench prints `describe()` first, so a result always says where it came from. Pinning follows
bench/reliability: the process under test on the first CPU, load generators and fakes on the others.
`taskset` is used at spawn time (not `sched_setaffinity` after start) so every thread the child
creates later (SQLite's worker, the event loop's executor) is pinned too.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from router import native

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


CPUS: Final = tuple(sorted(os.sched_getaffinity(0)))
"""The CPUs this process could run on when it started: taken once, at import, because
`keep_off_server_cpu` narrows the process's own affinity afterwards (asked then, the server's CPU
would be missing from the list and the router would be pinned next to its load)."""


def cpus() -> list[int]:
    """The CPUs the bench may use, in order (as they were when it started)."""
    return list(CPUS)


def server_cpus() -> str:
    """The CPU list (taskset syntax) for the process under test: the first CPU."""
    return str(cpus()[0])


def client_cpus() -> str:
    """The CPU list for load generators and fakes: every CPU but the first (all of them on one CPU)."""
    rest = cpus()[1:] or cpus()
    return ",".join(map(str, rest))


def keep_off_server_cpu(enabled: bool = True) -> None:
    """Move this process (the bench's driver: it polls and spawns) to the client CPUs, off the
    server's; children started with `pinned()` still go where they are told."""
    if enabled and len(cpus()) > 1:
        os.sched_setaffinity(0, {int(c) for c in client_cpus().split(",")})


def pinned(command: list[str], cpu_list: str | None) -> list[str]:
    """The command prefixed with `taskset -c <cpus>` (unchanged when cpu_list is None or no taskset)."""
    if cpu_list is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", cpu_list, *command]


def event_loop_and_http() -> str:
    """What uvicorn's `loop="auto"`/`http="auto"` (the router's `router serve`) resolve to here."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"loop={loop} http={http}"


def describe() -> str:
    """nproc, the head of lscpu, the kernel, Python, uvicorn's loop/http and the load average."""
    lines = [f"nproc: {os.cpu_count()} (this process may use CPUs {cpus()})"]
    if shutil.which("lscpu"):
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines()
        wanted = ("Architecture", "CPU(s):", "Model name", "Thread(s) per core", "Hypervisor vendor")
        lines += [" ".join(line.split()) for line in lscpu if line.startswith(wanted)]
    lines.append(f"kernel: {platform.release()}; python: {sys.version.split()[0]}; {event_loop_and_http()}")
    lines.append(f"compiled (mypyc) hot-path modules: {len(native.compiled())} of {len(native.MODULES)}")
    lines.append(f"load average at start: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Memory:
    """Resident memory of a process in MiB: now (VmRSS) and its peak (VmHWM)."""

    rss_mib: float
    hwm_mib: float


def memory(pid: int) -> Memory:
    """VmRSS and VmHWM from /proc/<pid>/status."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return Memory(fields["VmRSS"], fields["VmHWM"])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process (all its threads) has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    after_name = stat.rsplit(")", 1)[1].split()
    utime, stime = int(after_name[11]), int(after_name[12])
    return (utime + stime) / CLOCK_TICKS
