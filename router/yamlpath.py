"""YAML loading that remembers the line of every node, so problems can name `file:line: path`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml


def format_path(parts: Iterable[str | int]) -> str:
    """`["destinations", 0, "pixel_id"]` -> `destinations[0].pixel_id`."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def load_with_lines(text: str) -> tuple[Any, dict[str, int]]:
    """The parsed document and a map from YAML path to 1-based line number."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    lines: dict[str, int] = {}
    if node is not None:
        _walk(node, [], lines)
    return yaml.safe_load(text), lines


def _walk(node: yaml.Node, path: list[str | int], lines: dict[str, int]) -> None:
    lines[format_path(path)] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            _walk(value, [*path, str(key.value)], lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, [*path, index], lines)
