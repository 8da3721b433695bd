"""Input errors that name the file, the line or field, and what is wrong."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located as precisely as the format allows."""

    message: str
    file: str | None = None
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = ":".join(str(part) for part in (self.file, self.line) if part is not None)
        parts = [p for p in (where, self.field, self.message) if p]
        return ": ".join(parts)


class InputError(ValueError):
    """Raised when an input file or value cannot be accepted; carries every problem found."""

    def __init__(self, problems: list[Problem] | Problem | str, *, file: str | Path | None = None):
        if isinstance(problems, str):
            problems = [Problem(problems, file=str(file) if file is not None else None)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def at(cls, message: str, file: str | Path | None = None, line: int | None = None,
           field: str | None = None) -> InputError:
        return cls([Problem(message, str(file) if file is not None else None, line, field)])


def read_utf8(path: str | Path) -> str:
    """A text file's content; one that is not UTF-8 is an InputError naming the line of the first bad byte."""
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise InputError.at(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); save the file "
                            "as UTF-8", file=path, line=line) from None
