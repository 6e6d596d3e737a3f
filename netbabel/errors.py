"""The one error type users see: a file, a JSON pointer (or line) and a message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located by file and JSON pointer (or line)."""

    message: str
    file: str | None = None
    pointer: str | None = None

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.pointer) if p]
        return ": ".join(parts + [self.message])


class NetbabelError(Exception):
    """Bad input or an unsupported request; the CLI prints it and exits with status 2."""

    def __init__(self, message: str | list[Problem], file: str | None = None, pointer: str | None = None):
        if isinstance(message, list):
            self.problems = message
        else:
            self.problems = [Problem(message, file, pointer)]
        super().__init__("\n".join(str(p) for p in self.problems))


class UnsupportedFeature(NetbabelError):
    """A feature the target format or simulator cannot express (refused, never dropped)."""
