"""Durations as operators write them on the command line: `90s`, `30m`, `2h`, `7d`."""

from __future__ import annotations

import re
from typing import Final

UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
PATTERN: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")


def seconds(text: str) -> float:
    """`2h` -> 7200.0; raises ValueError with the accepted forms otherwise."""
    match = PATTERN.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration; write it like 90s, 30m, 2h or 7d")
    return float(match.group(1)) * UNITS[match.group(2)]
