"""Native: the mypyc module list is buildable, and the router says truly which modules run compiled.

scripts/test-compiled runs this suite on a tree compiled with `ADROUTER_COMPILE=1` and sets
ADROUTER_EXPECT_COMPILED=1; ./scripts/test runs it on the source. Each run checks its own case.
"""

from __future__ import annotations

import ast
import importlib
import os
from pathlib import Path

from prometheus_client.exposition import generate_latest

from router import native
from router.metrics import Metrics
from tests.router.test_metrics import samples

ROOT = Path(__file__).resolve().parents[2]
EXPECT_COMPILED = os.environ.get("ADROUTER_EXPECT_COMPILED") == "1"


def test_every_listed_module_is_a_source_file_of_the_package() -> None:
    for path in native.MODULES:
        assert (ROOT / path).is_file(), path
        assert path.startswith(("router/", "destinations/")), path
    assert len(set(native.MODULES)) == len(native.MODULES)


def test_setup_reads_the_same_list() -> None:
    # setup.py takes MODULES from router/native.py by running that file alone: it must need nothing
    # beyond the standard library, or a build without the package's dependencies would fail.
    tree = ast.parse((ROOT / "router/native.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert imported <= {"__future__", "importlib", "sys", "typing"}
    assert "native.py" in (ROOT / "setup.py").read_text()


def test_compiled_names_every_module_of_a_compiled_tree_and_none_of_the_source() -> None:
    every = {native.module_name(p) for p in native.MODULES}
    expected = every if EXPECT_COMPILED else set()
    assert set(native.compiled()) == expected
    assert set(native.missing()) == every - expected
    assert native.main() == (0 if EXPECT_COMPILED else 1)
    for name in expected:  # loaded from the C extension, not from the .py beside it
        module = importlib.import_module(name)
        assert not str(module.__file__).endswith(".py")


def test_metrics_export_the_compiled_count() -> None:
    metrics = Metrics()
    exported = samples(generate_latest(metrics.registry).decode())
    assert exported[("router_compiled_modules", ())] == (len(native.MODULES) if EXPECT_COMPILED else 0)
