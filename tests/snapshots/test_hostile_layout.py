"""Hostile text staged on a real server renders literally, at 80x24 and 40x12.

The strings go through the server for real (it rewrites some of them, differently by
version: one baseline per server); pids and clocks are then pinned so the picture is
stable.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from canned import NOW, CannedSource, settle

from pgtop import pg
from pgtop.app import PgTopApp
from pgtop.collectors.activity import ActivityCollector
from pgtop.config import Settings
from pgtop.model import ActivitySnapshot, ServerCounters

HOSTILE = [
    ("markup", "[bold]bold?[/]", "SELECT '[bold]x[/] [@click=app.quit]quit[/] [unbalanced'"),
    ("escapes", "esc\x1b[2J bell\x07", "SELECT 'esc \x1b[31mred\x1b[0m bell \x07 cr \r nul?'"),
    ("bidi", "\u202eevil", "SELECT 'abc \u202edcba\u202c \u2066iso\u2069'"),
    ("wide", "日本語😀", "SELECT '日本語 テキスト 😀🎉 e\u0301 n\u0303'"),
    ("lines", "multi", "SELECT 1,\n       2\n  FROM\tgenerate_series(1, 3)"),
]


@pytest.fixture
def hostile_snapshot(dsn: str, sessions: Any) -> ActivitySnapshot:
    """Real sessions with hostile names and queries, pinned to fixed pids and times."""
    tags = []
    for tag, app_name, query in HOSTILE:
        conn = sessions.open(application_name=f"{tag}:{app_name}")
        sessions.run_in_background(conn, f"{query}, pg_sleep(60)")
        tags.append(tag)
    sessions.wait_until(
        "SELECT count(*) = %s FROM pg_stat_activity "
        "WHERE split_part(application_name, ':', 1) = ANY(%s) AND wait_event = 'PgSleep'",
        (len(tags), tags),
    )

    async def collect() -> ActivitySnapshot:
        conn = await pg.connect(dsn)
        try:
            caps = await pg.probe(conn)
            return await ActivityCollector(caps, frozenset({conn.info.backend_pid})).collect(conn)
        finally:
            await conn.close()

    real = asyncio.run(collect())
    staged = sorted(
        (b for b in real.backends if b.application_name.split(":", 1)[0] in tags),
        key=lambda b: tags.index(b.application_name.split(":", 1)[0]),
    )
    assert len(staged) == len(tags)
    pinned = tuple(
        replace(
            b,
            pid=5000 + n,
            client_port=40000 + n,
            backend_start=NOW - timedelta(minutes=10),
            xact_start=NOW - timedelta(seconds=30 + n),
            query_start=NOW - timedelta(seconds=30 + n),
            state_change=NOW - timedelta(seconds=30 + n),
            backend_xmin=None,
            query_id=None,
        )
        for n, b in enumerate(staged)
    )
    caps = replace(
        real.capabilities,
        server_version=real.capabilities.server_version.split(" ")[0],
        started_at=NOW - timedelta(days=1),
        max_connections=100,
    )
    return ActivitySnapshot(
        capabilities=caps,
        counters=ServerCounters(NOW, 1, 99, 1, own_alive=1),
        backends=pinned,
        own_pids=frozenset({4999}),
        tps=None,
        cache_hit=0.99,
    )


@pytest.mark.parametrize("size", [(80, 24), (40, 12)], ids=["80x24", "40x12"])
def test_hostile_text_is_shown_literally(
    snap_compare: Any, hostile_snapshot: ActivitySnapshot, size: tuple[int, int]
) -> None:
    """Markup shows as brackets, ESC as \\e, BEL as ^G, CR as ^M, bidi overrides as <U+202E>;
    CJK, emoji and combining marks keep the columns aligned; multi-line SQL is one line."""
    app = PgTopApp(Settings(refresh=60), source=CannedSource(hostile_snapshot))
    assert snap_compare(app, terminal_size=size, run_before=settle)


def test_hostile_text_in_the_detail_view(
    snap_compare: Any, hostile_snapshot: ActivitySnapshot
) -> None:
    """The detail of the escape-laden session: fields and the wrapped query, all literal."""
    app = PgTopApp(Settings(refresh=60), source=CannedSource(hostile_snapshot))
    assert snap_compare(app, terminal_size=(80, 24), press=["down", "enter"], run_before=settle)
