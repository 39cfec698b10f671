"""What every report is made of: records, and the columns of their text table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pgtop.formats import ESTIMATE_MARK, ago, size
from pgtop.text import one_line

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Report:
    """One tab's snapshot as plain data."""

    collected_at: datetime
    rows: list[Row]
    text_columns: Sequence[tuple[str, Callable[[Row], str]]]
    """Columns of the text table: header and how to show a row's value."""
    notes: tuple[str, ...] = ()
    """What the report could not hold, said on standard error (e.g. texts unreadable)."""
    exit_code: int = 0
    """The exit status of ``--once`` (``--once health`` says how bad the worst check is)."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Fields of the whole report, beside its rows: top-level fields of the JSON document,
    and a line above the text table."""
    server: Mapping[str, Any] | None = None
    """The JSON document's ``server`` object, when the report knows what the server is
    better than the PostgreSQL capabilities do (a PgBouncer)."""
    footer: tuple[str, ...] = ()
    """Lines after the text table (what nested ``extra`` objects hold, in words)."""


def fields_of(item: object, *names: str) -> Row:
    """The attributes of ``item`` of these names, as fields of the same names."""
    return {name: getattr(item, name) for name in names}


def text(field: str, limit: int = 40) -> Callable[[Row], str]:
    """A column showing a field as text (lists comma-separated), visible and on one line."""

    def show(row: Row) -> str:
        value = row[field]
        if value is None:
            return ""
        if isinstance(value, list):
            return ",".join(str(v) for v in value)
        return one_line(str(value), limit)

    return show


def since(field: str, now: datetime) -> Callable[[Row], str]:
    """A column showing how long ago a field's time was."""
    return lambda row: ago(row[field], now)


def bytes_of(field: str) -> Callable[[Row], str]:
    """A column showing a size, marked when the row's sizes are estimates."""
    return lambda row: (ESTIMATE_MARK if row.get("size_is_estimate") else "") + size(row[field])


Reader = Callable[[Any], Awaitable[Report]]
"""Reads one tab's report from a source."""
