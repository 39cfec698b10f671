"""``--once activity``: every backend, client sessions first."""

from __future__ import annotations

from typing import Any

from pgtop.collectors.activity import WHOLE_TEXT_LIMIT
from pgtop.model import ActivitySnapshot
from pgtop.reports.base import Report, Row, since, text


def rows(snapshot: ActivitySnapshot) -> list[Row]:
    """One record per backend, pgtop's own left out; texts cut at ``WHOLE_TEXT_LIMIT``."""
    result = [
        {
            "pid": b.pid,
            "database": b.database,
            "user": b.user,
            "application_name": b.application_name,
            "client_addr": b.client_addr,
            "backend_type": b.backend_type,
            "state": b.state,
            "wait_event_type": b.wait_event_type,
            "wait_event": b.wait_event,
            "backend_start": b.backend_start,
            "xact_start": b.xact_start,
            "query_start": b.query_start,
            "blocked_by": list(b.blocked_by),
            "query_hidden": b.query_hidden,
            "query": b.query[:WHOLE_TEXT_LIMIT],
            "query_truncated": len(b.query) > WHOLE_TEXT_LIMIT,
        }
        for b in snapshot.backends
    ]
    result.sort(key=lambda r: (r["backend_type"] != "client backend", r["pid"]))
    return result


def of(snapshot: ActivitySnapshot) -> Report:
    now = snapshot.collected_at
    columns = [
        ("PID", text("pid")),
        ("DATABASE", text("database", 20)),
        ("USER", text("user", 20)),
        ("APPLICATION", text("application_name", 24)),
        ("STATE", text("state", 20)),
        ("WAIT", lambda r: ":".join(filter(None, (r["wait_event_type"], r["wait_event"])))),
        ("XACT AGE", since("xact_start", now)),
        ("QUERY AGE", since("query_start", now)),
        ("BLOCKED BY", text("blocked_by")),
        ("QUERY", text("query", 200)),
    ]
    return Report(now, rows(snapshot), columns)


async def report(source: Any) -> Report:
    return of(await source.poll())
