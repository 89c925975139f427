"""The modules `ADROUTER_COMPILE=1 pip install .` compiles with mypyc, and which of them are.

These are the per-event hot path: normalization, hashing, match quality, consent and the seven
adapters' maps. Each is plain `mypy --strict` Python; mypyc turns it into a C extension that runs the
same code with fewer interpreter steps (bench/README.md has the measure). setup.py reads `MODULES`
from this file without importing the package. A source checkout (`pip install -e`, the tests) runs
them as Python; the container image runs them compiled; `/metrics` and `router serve`'s start-up line
say which. The tables' `fill` functions are in the list through destinations/fills.py, which
scripts/gen_fills.py renders from them. Not here: the schema check fastjsonschema writes and runs
with `exec`, which mypyc never sees, and the async I/O of ingest and dispatch.
"""

from __future__ import annotations

import importlib
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from typing import Final

MODULES: Final[tuple[str, ...]] = (
    "router/aliases.py",
    "router/clickids.py",
    "router/consent.py",
    "router/enrich.py",
    "router/identity.py",
    "router/ipv4.py",
    "router/jsoncodec.py",
    "router/jsonlimits.py",
    "router/matchquality.py",
    "router/nanp.py",
    "router/normalize.py",
    "router/pageurl.py",
    "destinations/amounts.py",
    "destinations/base.py",
    "destinations/fills.py",
    "destinations/ldu.py",
    "destinations/rows.py",
    "destinations/timing.py",
    "destinations/google/adapter.py",
    "destinations/google/bodies.py",
    "destinations/linkedin/adapter.py",
    "destinations/meta/adapter.py",
    "destinations/pinterest/adapter.py",
    "destinations/reddit/adapter.py",
    "destinations/snap/adapter.py",
    "destinations/tiktok/adapter.py",
)
"""Source paths, relative to the repository root, as mypyc's build takes them."""


def module_name(path: str) -> str:
    """`router/identity.py` -> `router.identity`."""
    return path.removesuffix(".py").replace("/", ".")


def compiled() -> tuple[str, ...]:
    """The modules of `MODULES` that were loaded from a C extension rather than from source."""
    names = []
    for path in MODULES:
        origin = getattr(importlib.import_module(module_name(path)), "__file__", None) or ""
        if origin.endswith(tuple(EXTENSION_SUFFIXES)):
            names.append(module_name(path))
    return tuple(names)


def missing() -> tuple[str, ...]:
    """The modules of `MODULES` still running from source."""
    running = set(compiled())
    return tuple(name for name in map(module_name, MODULES) if name not in running)


def main() -> int:
    """`python -m router.native`: 0 when every listed module runs compiled, else 1 naming the others.
    The Dockerfile's build and scripts/test-compiled ask it before they trust a compiled build."""
    left = missing()
    if left:
        print(f"not compiled: {', '.join(left)}", file=sys.stderr)
        return 1
    print(f"{len(MODULES)} modules compiled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
