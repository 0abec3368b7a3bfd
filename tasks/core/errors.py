"""One error type for bad input: it says where (task, file, column, rows), what, and the fix.

Raised where the problem is found; caught once at the edge (CLI, flow, portal) where it
is shown to a person or recorded next to a rejected submission.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

MAX_ROWS_SHOWN = 5
MAX_VALUE_CHARS = 80  # a value shown in a message is cut: a submitted 10 MB label never fills a record


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else f"{text[: MAX_VALUE_CHARS - 3]}..."


@dataclass
class InputError(Exception):
    problem: str
    fix: str
    task: str | None = None
    file: str | None = None
    column: str | None = None
    rows: Sequence[int] = field(default_factory=tuple)
    row_label: str = "row"  # "line" for text files, where the header is line 1
    values: Sequence[object] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def where(self) -> str:
        parts = [p for p in (self.task, self.file) if p]
        if self.column is not None:
            parts.append(f"column '{self.column}'")
        if self.rows:
            shown = ", ".join(str(r) for r in list(self.rows)[:MAX_ROWS_SHOWN])
            more = f" and {len(self.rows) - MAX_ROWS_SHOWN} more" if len(self.rows) > MAX_ROWS_SHOWN else ""
            parts.append(f"{self.row_label}{'s' if len(self.rows) > 1 else ''} {shown}{more}")
        return ": ".join(parts)

    def __str__(self) -> str:
        values = ""
        if self.values:
            shown = ", ".join(_shown(v) for v in list(self.values)[:MAX_ROWS_SHOWN])
            values = f" (found {shown})"
        where = self.where()
        return f"{where + ': ' if where else ''}{self.problem}{values}. Fix: {self.fix}"

    def as_record(self) -> dict:
        """A JSON-ready form, for rejection records and reports."""
        return {
            "task": self.task,
            "file": self.file,
            "column": self.column,
            "rows": [int(r) for r in list(self.rows)[:100]],
            "n_rows": len(self.rows),
            "problem": self.problem,
            "fix": self.fix,
            "message": str(self),
        }


class InputErrors(Exception):
    """Several independent problems found in one pass, so a contributor fixes them at once."""

    def __init__(self, errors: Sequence[InputError]):
        self.errors = list(errors)
        super().__init__(str(self))

    def __str__(self) -> str:
        if len(self.errors) == 1:
            return str(self.errors[0])
        return f"{len(self.errors)} problems:\n" + "\n".join(f"  - {e}" for e in self.errors)


def raise_all(errors: Sequence[InputError]) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise InputErrors(errors)
