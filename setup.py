"""Build hook: `ADROUTER_COMPILE=1 pip install .` compiles router/native.py's modules with mypyc.

Without the variable (the default, and every editable install) the package is pure Python. With it,
mypy must be importable in the build environment (`pip install mypy` then `--no-build-isolation`,
as the Dockerfile does) along with a C compiler and the Python headers.
"""

from __future__ import annotations

import os
import runpy

from setuptools import setup


def extensions() -> list[object]:
    """mypyc's extension modules when asked for, else none."""
    if os.environ.get("ADROUTER_COMPILE") != "1":
        return []
    from mypyc.build import mypycify  # noqa: PLC0415 - only a compiling build has mypy

    modules = runpy.run_path("router/native.py")["MODULES"]
    return list(mypycify(list(modules), opt_level="3"))


setup(ext_modules=extensions())
