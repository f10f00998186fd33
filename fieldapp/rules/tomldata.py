"""Reading the rules' TOML files strictly: a missing or misspelt key is an error naming where."""
from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Any


def load(package: str, filename: str, error: type[Exception]) -> dict:
    """The parsed TOML file shipped in ``package``; a syntax error becomes ``error``."""
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{filename}: {exc}") from exc


class Entry:
    """Reads one table, remembering which keys were used so that a misspelt key is an error.
    Subclasses name the error their file raises."""

    error: type[Exception] = ValueError

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise self.error(f"{where}: expected a table, got {type(data).__name__}")
        self.data, self.where, self.used = data, where, set()

    def get(self, key: str, *, optional: bool = False) -> Any:
        self.used.add(key)
        if key not in self.data:
            if optional:
                return None
            raise self.error(f"{self.where}: missing {key!r}")
        value = self.data[key]
        return tuple(value) if isinstance(value, list) else value

    def close(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(f"{self.where}: unknown key(s) {', '.join(map(repr, unknown))}")
