"""``--once connections``: the client sessions grouped by database, user, application and
client address, the largest group first, with the server's connection slots."""

from __future__ import annotations

from typing import Any

from pgtop.collectors.connections import GroupField, session_groups
from pgtop.formats import duration, percent
from pgtop.model import ActivitySnapshot
from pgtop.reports.base import Report, Row, text

BY: tuple[GroupField, ...] = ("database", "user", "application_name", "client_addr")


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def rows(snapshot: ActivitySnapshot) -> list[Row]:
    """One record per group of client sessions (the Activity snapshot's)."""
    return [
        {
            **dict(zip(BY, group.key, strict=True)),
            "total": group.total,
            "active": group.active,
            "idle": group.idle,
            "idle_in_transaction": group.idle_in_transaction,
            "waiting": group.waiting,
            "oldest_idle_s": _seconds(group.oldest_idle_s),
            "oldest_xact_s": _seconds(group.oldest_xact_s),
        }
        for group in session_groups(snapshot, BY)
    ]


def of(snapshot: ActivitySnapshot) -> Report:
    caps = snapshot.capabilities
    slots = caps.max_connections

    def figure(field: str) -> Any:
        return lambda row: str(row[field])

    columns = [
        ("DATABASE", text("database", 20)),
        ("USER", text("user", 20)),
        ("APPLICATION", text("application_name", 24)),
        ("CLIENT", lambda row: text("client_addr", 40)(row) or "local"),
        ("TOTAL", figure("total")),
        ("SLOTS", lambda row: percent(row["total"] / slots if slots else None)),
        ("ACTIVE", figure("active")),
        ("IDLE", figure("idle")),
        ("IDLE IN TX", figure("idle_in_transaction")),
        ("WAITING", figure("waiting")),
        ("OLDEST IDLE", lambda row: duration(row["oldest_idle_s"])),
        ("OLDEST TX", lambda row: duration(row["oldest_xact_s"])),
    ]
    extra = {
        "max_connections": slots,
        "reserved_connections": caps.reserved_connections,
    }
    return Report(snapshot.collected_at, rows(snapshot), columns, extra=extra)


async def report(source: Any) -> Report:
    return of(await source.poll())
