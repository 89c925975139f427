"""The outbound HTTP stack (httpx over httpcore) imports nothing per request."""

from __future__ import annotations

import asyncio
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

from httpcore import _synchronization


class Spy(importlib.abc.MetaPathFinder):
    """A finder that only records the modules Python searched for."""

    def __init__(self) -> None:
        self.searched: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        self.searched.append(fullname)
        return None


def test_httpcore_detects_asyncio_without_searching_for_a_module() -> None:
    """httpcore runs `import sniffio` each time it sets up a lock or a cancellation shield; without
    sniffio installed every call searched sys.path (a failed import is not cached)."""
    spy = Spy()
    sys.meta_path.insert(0, spy)

    async def probe() -> list[str]:
        return [_synchronization.current_async_library() for _ in range(3)]

    try:
        libraries = asyncio.run(probe())
    finally:
        sys.meta_path.remove(spy)
    assert libraries == ["asyncio"] * 3
    assert spy.searched == []
