"""Layout of the Queries tab from canned pg_stat_statements readings (no server)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from canned import CAPS, HOSTILE, NOW, CannedSource, incident_snapshot, settle

from pgtop.app import PgTopApp
from pgtop.collectors.statements import (
    COUNTER_FIELDS,
    Counters,
    Reading,
    Statement,
    StatementsSnapshot,
)
from pgtop.config import Settings

TEXTS = {
    101: "UPDATE accounts SET balance = balance + $1 WHERE id = $2",
    102: "SELECT status, count(*) FROM orders GROUP BY status ORDER BY count(*) DESC",
    103: HOSTILE,
    104: "INSERT INTO audit_log (account, delta) VALUES ($1, $2)",
    105: "SELECT s.userid::bigint AS userid, s.dbid::bigint AS dbid, s.toplevel, s.queryid",
    106: "SELECT id FROM sessions WHERE token = $1",
}


def counters(**values: Any) -> Counters:
    base: dict[str, Any] = dict.fromkeys(COUNTER_FIELDS, 0)
    base["exec_ms"] = 0.0
    base.update(values)
    return Counters(**base)


def entry(queryid: int | None, user: str, growth: float, **values: Any) -> tuple[Statement, ...]:
    """The same entry at the previous and the current reading (counters times ``growth``)."""
    toplevel = values.pop("toplevel", True)
    entries = values.pop("entries", 1)
    before = counters(**values)
    after = counters(
        **{
            k: (v * growth if isinstance(v, float) else round(v * growth))
            for k, v in values.items()
        }
    )

    def make(c: Counters) -> Statement:
        return Statement(10, 16384, toplevel, queryid, user, "shop", c, entries=entries)

    return make(before), make(after)


def readings() -> tuple[Reading, Reading]:
    pairs = [
        entry(
            101,
            "app",
            1.01,
            calls=90_000,
            exec_ms=2_700_000.0,
            rows=90_000,
            shared_blks_hit=400_000,
        ),
        entry(
            102,
            "reports",
            1.5,
            calls=40,
            exec_ms=8_000.0,
            rows=400,
            shared_blks_hit=10_000,
            shared_blks_read=60_000,
            temp_blks_written=12_000,
        ),
        entry(103, "app", 1.2, calls=500, exec_ms=900.0, rows=500, shared_blks_hit=1_000),
        entry(104, "app", 1.01, calls=90_000, exec_ms=45_000.0, rows=90_000, toplevel=False),
        entry(105, "postgres", 1.1, calls=100, exec_ms=50.0, rows=3_000, shared_blks_hit=200),
        entry(106, "app", 1.0, calls=7_000, exec_ms=700.0, rows=7_000),  # idle in the span
        entry(None, "other_team", 1.3, calls=2_000, exec_ms=9_000.0, rows=2_000, entries=12),
    ]
    previous = Reading(NOW - timedelta(seconds=5), {p[0].key: p[0] for p in pairs})
    current = Reading(
        NOW, {p[1].key: p[1] for p in pairs}, stats_reset=NOW - timedelta(days=3, hours=2)
    )
    return previous, current


def statements_data() -> StatementsSnapshot:
    previous, current = readings()
    return StatementsSnapshot(
        current=current,
        previous=previous,
        texts=TEXTS,
        extension_version="1.10",
        server_version_num=CAPS.server_version_num,
        database="shop",
        user="postgres",
        sees_all=False,
    )


async def show_queries(pilot: Any) -> None:
    await settle(pilot)
    await pilot.press("3")
    app = pilot.app
    for _ in range(200):
        if "UPDATE accounts" in "".join(s.text for s in app.screen._compositor.render_strips()):
            break
        await pilot.pause(0.02)
    await pilot.pause(0.1)


def test_queries_now_at_120x35(snap_compare: Any) -> None:
    """Mode "now" named in the status line; rows by time per second: the UPDATE first (5.4
    cores), the spilling report with reads and temp writes per second; the nested INSERT
    marked "↳"; pgtop's own statement marked "(pgtop)" and muted; the hidden statements of
    other_team summed on one row with the role that unlocks them, also in the notice; the
    hostile text shown literally with escapes; the idle statement left out ("1 idle hidden")."""
    app = PgTopApp(
        Settings(refresh=60),
        source=CannedSource(incident_snapshot(), {"queries": statements_data()}),
    )
    assert snap_compare(app, terminal_size=(120, 35), run_before=show_queries)


def test_queries_at_80x24(snap_compare: Any) -> None:
    """80 columns: the statements by time per second with their share and the query text;
    the header keeps its counts, the footer its first keys."""
    app = PgTopApp(
        Settings(refresh=60),
        source=CannedSource(incident_snapshot(), {"queries": statements_data()}),
    )
    assert snap_compare(app, terminal_size=(80, 24), run_before=show_queries)
