"""Errors the router reports to operators and clients, each with a clear message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem at one place: a JSON pointer for events, a YAML path for config."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """The shape used in JSON answers."""
        return {"path": self.path, "message": self.message}


class ConfigError(Exception):
    """The config file is unusable; `problems` lists every reason with its YAML path."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in problems))
        self.problems = problems
