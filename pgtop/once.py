"""``--once TAB``: one snapshot on stdout, as JSON or an aligned text table."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from pgtop.catalog import indexes_report, tables_report, vacuum_report
from pgtop.collector import WHOLE_TEXT_LIMIT, ActivityCollector
from pgtop.locks import locks_report
from pgtop.model import Capabilities
from pgtop.output import write_output
from pgtop.statements import statements_report
from pgtop.text import duration, lenient, one_line


@dataclass(frozen=True, slots=True)
class Report:
    """One tab's snapshot as plain data."""

    collected_at: datetime
    rows: list[dict[str, Any]]
    text_columns: Sequence[tuple[str, Callable[[dict[str, Any]], str]]]
    """Columns of the text table: header and how to show a row's value."""


def _age(field: str, now: datetime) -> Callable[[dict[str, Any]], str]:
    def show(row: dict[str, Any]) -> str:
        value = row[field]
        return duration((now - value).total_seconds()) if value else ""

    return show


def _plain(field: str, limit: int = 40) -> Callable[[dict[str, Any]], str]:
    def show(row: dict[str, Any]) -> str:
        value = row[field]
        if value is None:
            return ""
        if isinstance(value, list):
            return ",".join(str(v) for v in value)
        return one_line(str(value), limit)

    return show


async def activity_report(
    conn: psycopg.AsyncConnection[dict[str, Any]], caps: Capabilities
) -> Report:
    collector = ActivityCollector(
        caps, frozenset({conn.info.backend_pid}), query_limit=WHOLE_TEXT_LIMIT + 1
    )
    snapshot = await collector.collect(conn)
    now = snapshot.collected_at
    rows = []
    for b in snapshot.backends:
        rows.append(
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
        )
    rows.sort(key=lambda r: (r["backend_type"] != "client backend", r["pid"]))
    columns = [
        ("PID", _plain("pid")),
        ("DATABASE", _plain("database", 20)),
        ("USER", _plain("user", 20)),
        ("APPLICATION", _plain("application_name", 24)),
        ("STATE", _plain("state", 20)),
        ("WAIT", lambda r: ":".join(filter(None, (r["wait_event_type"], r["wait_event"])))),
        ("XACT AGE", _age("xact_start", now)),
        ("QUERY AGE", _age("query_start", now)),
        ("BLOCKED BY", _plain("blocked_by")),
        ("QUERY", _plain("query", 200)),
    ]
    return Report(now, rows, columns)


REPORTS: dict[
    str,
    Callable[[psycopg.AsyncConnection[dict[str, Any]], Capabilities], Awaitable[Report]],
] = {
    "activity": activity_report,
    "locks": locks_report,
    "queries": statements_report,
    "tables": tables_report,
    "vacuum": vacuum_report,
    "indexes": indexes_report,
}


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _plain_json(value: Any) -> Any:
    """``value`` with every byte that did not decode (a lone surrogate, see
    ``pg._LenientText``) replaced by U+FFFD: a JSON reader may reject lone surrogates."""
    if isinstance(value, str):
        return value if value.isascii() else lenient(value)
    if isinstance(value, dict):
        return {key: _plain_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_json(item) for item in value]
    return value


def render_text(report: Report) -> str:
    """An aligned table; every server string made visible and kept on one line."""
    headers = [name for name, _ in report.text_columns]
    body = [[show(row) for _, show in report.text_columns] for row in report.rows]
    widths = [max([len(h), *(len(line[i]) for line in body)]) for i, h in enumerate(headers)]
    lines = []
    for cells in [headers, *body]:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])]
        lines.append("  ".join([*padded, cells[-1]]).rstrip())
    return "\n".join(lines)


async def print_once(
    conn: psycopg.AsyncConnection[dict[str, Any]],
    caps: Capabilities,
    tab: str,
    output_format: str,
) -> int:
    """Print one snapshot of ``tab``; returns the exit code."""
    report = await REPORTS[tab](conn, caps)
    if output_format == "json":
        document = {
            "tab": tab,
            "server": {
                "version": caps.server_version,
                "version_num": caps.server_version_num,
                "is_standby": caps.is_standby,
                "collected_at": report.collected_at,
            },
            "rows": report.rows,
        }
        output = json.dumps(_plain_json(document), default=_json_default) + "\n"
    else:
        output = render_text(report) + "\n"
    write_output(output)
    return 0
