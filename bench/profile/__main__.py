"""Profile the router under load with py-spy: where its CPU goes during ingest or fan-out.

    .venv/bin/python -m bench.profile [--load single|batch|fanout] [--queue sqlite|postgres]
        [--seconds 20] [--top 30] [--out FILE]

Starts a router (pinned to the first CPU) as the other benches do, puts load on it from the second
CPU, and samples it with `py-spy record --format raw` (collapsed stacks, every thread, idle threads
left out; by default only the thread holding the GIL, i.e. where Python spends CPU) for `--seconds`:

- single / batch: wrk, one event or 100 events per request, dispatch paused (ingest alone);
- fanout: a pre-queued backlog of 20,000 events delivered to the seven loopback fakes (dispatch alone).

Prints own time (leaf frames) by component and by function, and inclusive time by function, in
percent of the samples. The collapsed stacks are kept in `--out` (open them in speedscope.app, or
`flamegraph.pl`). Needs py-spy (`pip install py-spy`) and ptrace rights (root, or
kernel.yama.ptrace_scope=0).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from bench import loadgen, machine, platforms, routerproc
from bench.fanout.__main__ import drain_profile

STDLIB = re.compile(r"^.*/lib/python3[.0-9]*/")
"""The standard library's folder in a full file name (site-packages are cut before)."""
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str:
    """The py-spy next to this Python, else on PATH."""
    local = Path(sys.executable).parent / "py-spy"
    found = str(local) if local.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def record(pid: int, seconds: float, out: Path, gil: bool = True, rate: int = 200) -> None:
    """py-spy record of `pid`, collapsed stacks into `out`: with `gil`, only the thread holding the GIL
    (Python's CPU time); without, every thread that is not idle (fsync waits included)."""
    command = [py_spy(), "record", "--pid", str(pid), "--duration", f"{seconds:g}", "--rate", str(rate)]
    command += ["--format", "raw", "--output", str(out), "--full-filenames", *(["--gil"] if gil else [])]
    subprocess.run(machine.pinned(command, machine.client_cpus()), check=True, capture_output=True)


def stacks(path: Path) -> Counter[tuple[str, ...]]:
    """Collapsed stacks -> sample counts (frames outermost first; the thread frame dropped)."""
    counted: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = tuple(f for f in stack.split(";") if not f.startswith(("process ", "thread ")))
        counted[frames] += int(count)
    return counted


def short(frame: str) -> str:
    """`handle (router/ingest.py:70)` with site-packages and the repo root cut from the path."""
    match = FRAME.match(frame)
    if not match:
        return frame
    file = match["file"]
    file = file.split("site-packages/", 1)[-1].replace(str(Path.cwd()) + "/", "")
    file = STDLIB.sub("", file)
    return f"{match['function']} ({file})"


def component(frame: str) -> str:
    """The library (`jsonschema`, `structlog`) or repo module (`router/ingest.py`) of a frame."""
    match = FRAME.match(frame)
    if not match:
        return frame
    file = match["file"]
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1].split("/", 1)[0]
    root = str(Path.cwd()) + "/"
    if file.startswith(root):
        return file[len(root) :]
    if STDLIB.match(file):
        return "stdlib " + STDLIB.sub("", file).split("/")[0].removesuffix(".py")
    return file


def summarize(counted: Counter[tuple[str, ...]], top: int) -> str:
    """Own time by component and function, inclusive time by function, in percent of samples."""
    total = sum(counted.values()) or 1
    own_component: Counter[str] = Counter()
    own_function: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in counted.items():
        if not frames:
            continue
        own_component[component(frames[-1])] += count
        own_function[short(frames[-1])] += count
        for name in {short(f) for f in frames}:
            inclusive[name] += count
    lines = [f"{total} samples; own time by component:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own_component.most_common(top)]
    lines.append(f"top {top} functions by own time:")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own_function.most_common(top)]
    lines.append(f"top {top} functions by inclusive time:")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


def main() -> int:
    """Run the load, record, print the summary."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n")[0])
    parser.add_argument("--load", choices=("single", "batch", "fanout"), default="single")
    parser.add_argument("--queue", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--backlog", type=int, default=20_000, help="fanout: events queued before")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", type=Path, help="keep the collapsed stacks here")
    parser.add_argument("--all-threads", action="store_true", help="not only the GIL holder (see record)")
    args = parser.parse_args()
    print(machine.describe())
    with routerproc.workdir("profile") as folder:
        out = args.out or folder / "stacks.txt"
        if args.load == "fanout":
            drain_profile(
                folder,
                args.queue,
                args.backlog,
                lambda pid: record(pid, args.seconds, out, not args.all_threads),
            )
        else:
            ingest(folder, args.queue, args.load, seconds=args.seconds, out=out, gil=not args.all_threads)
        print(f"\nload={args.load} queue={args.queue} gil-only={not args.all_threads}; stacks in {out}")
        print(summarize(stacks(out), args.top))
    return 0


def ingest(folder: Path, queue_kind: str, load: str, *, seconds: float, out: Path, gil: bool) -> None:
    """wrk on a router with dispatch paused, py-spy recording meanwhile."""
    size, connections = (1, 32) if load == "single" else (100, 8)
    with routerproc.fresh_queue(queue_kind, folder) as queue:
        config = folder / "router.yaml"
        config.write_text(platforms.router_yaml(queue, None))
        with routerproc.Router(config, folder / "router.log", machine.server_cpus()) as router:
            loadgen.wrk(router.url, 1, platforms.BACKEND_SECRET, folder, "warm", seconds=2, connections=8)
            time.sleep(1)

            def run() -> None:
                loadgen.wrk(
                    router.url,
                    size,
                    platforms.BACKEND_SECRET,
                    folder,
                    "prof",
                    seconds=seconds + 4,
                    connections=connections,
                    cpu_list=machine.client_cpus(),
                )

            loader = threading.Thread(target=run)
            loader.start()
            time.sleep(2)
            record(router.pid, seconds, out, gil)
            loader.join()


if __name__ == "__main__":
    sys.exit(main())
