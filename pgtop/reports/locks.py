"""``--once locks``: every (blocked, blocking) pair pg_blocking_pids() reports, with both
sessions' state and query, in the order of the blocking tree."""

from __future__ import annotations

from typing import Any

from pgtop.collectors.activity import WHOLE_TEXT_LIMIT
from pgtop.collectors.locks import PREPARED_PID, Forest, LocksData, build_forest, wait_age
from pgtop.formats import duration
from pgtop.reports.base import Report, since, text
from pgtop.text import one_line


def edge_rows(data: LocksData, forest: Forest | None = None) -> list[dict[str, Any]]:
    """One plain record per (blocked, blocking) pair, in the tree's order."""
    waits = data.waits_by_pid()
    if forest is None:
        forest = build_forest(data.activity, waits)
    backends = {backend.pid: backend for backend in data.activity.backends}
    now = data.activity.collected_at
    first = forest.first_index()
    far = len(forest.nodes)
    ordered = sorted(
        forest.edges, key=lambda e: (first.get(e[1], far), first.get(e[0], far), e[1], e[0])
    )
    rows: list[dict[str, Any]] = []
    for blocked_pid, blocking_pid in ordered:
        blocked = backends.get(blocked_pid)
        blocking = backends.get(blocking_pid)
        wait = waits.get(blocked_pid)
        seconds, exact = wait_age(blocked, wait, now)
        rows.append(
            {
                "blocked_pid": blocked_pid,
                "blocking_pid": blocking_pid,
                "locktype": wait.locktype if wait else None,
                "mode": wait.mode if wait else None,
                "relation": wait.relation if wait else None,
                "transactionid": wait.transactionid if wait else None,
                "target": wait.target if wait else None,
                "waitstart": wait.waitstart if wait else None,
                "wait_seconds": seconds if exact else None,
                "blocked_user": blocked.user if blocked else None,
                "blocked_application_name": blocked.application_name if blocked else None,
                "blocked_state": blocked.state if blocked else None,
                "blocked_xact_start": blocked.xact_start if blocked else None,
                "blocked_query": blocked.query[:WHOLE_TEXT_LIMIT] if blocked else None,
                "blocked_query_truncated": bool(blocked and len(blocked.query) > WHOLE_TEXT_LIMIT),
                "blocking_prepared": blocking_pid == PREPARED_PID,
                "blocking_user": blocking.user if blocking else None,
                "blocking_application_name": blocking.application_name if blocking else None,
                "blocking_state": blocking.state if blocking else None,
                "blocking_wait_event_type": blocking.wait_event_type if blocking else None,
                "blocking_xact_start": blocking.xact_start if blocking else None,
                "blocking_query": blocking.query[:WHOLE_TEXT_LIMIT] if blocking else None,
                "blocking_query_truncated": bool(
                    blocking and len(blocking.query) > WHOLE_TEXT_LIMIT
                ),
            }
        )
    return rows


def of(data: LocksData) -> Report:
    now = data.activity.collected_at
    columns = [
        ("BLOCKED", text("blocked_pid")),
        ("BLOCKING", text("blocking_pid")),
        ("LOCK", lambda row: one_line(f"{row['mode'] or ''} {row['target'] or ''}", 60)),
        ("WAITED", lambda row: duration(row["wait_seconds"])),
        ("BLOCKED STATE", text("blocked_state", 20)),
        ("BLOCKING STATE", text("blocking_state", 20)),
        ("BLOCKING XACT AGE", since("blocking_xact_start", now)),
        ("BLOCKED QUERY", text("blocked_query", 60)),
        ("BLOCKING QUERY", text("blocking_query", 200)),
    ]
    return Report(now, edge_rows(data), columns)


async def report(source: Any) -> Report:
    activity = await source.poll()
    data = await source.collect("locks", activity, None, now=True)
    assert isinstance(data, LocksData)
    return of(data)
