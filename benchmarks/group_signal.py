"""Time to terminate many tagged sessions at once, each by its own guarded statement.

Run it from the repository root::

    python benchmarks/group_signal.py                  # 300 sessions, best server found
    python benchmarks/group_signal.py --sessions 100
    python benchmarks/group_signal.py --bindir /usr/lib/postgresql/15/bin

It starts a throwaway cluster (``pgtop.cluster.start_cluster``, deleted at the end) with room
for ``--sessions`` client sessions, opens them (each idle in a transaction, as the sessions
of a bad deploy), reads them as pgtop does (``ActivityCollector``), plans a terminate of
every one (``plan_group``, with each role read by ``target_roles``) and measures:

* the time to plan (the roles' query and one guarded statement per session);
* the time for every signal to be sent (one statement each on the action connection);
* the time until every session is gone (``signal_group`` watches them, up to 5 s);

and checks that every session was signalled and is gone, and that pgtop's connections are
not. Target: under 2 s from the yes to the last signal at 300 sessions.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import psycopg

from pgtop import pg
from pgtop.actions import ActionRunner, plan_group, send_signal, target_roles
from pgtop.cluster import find_bindir, start_cluster
from pgtop.collectors.activity import ActivityCollector

APPLICATION = "bench-deploy"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--bindir", type=Path, default=None)
    return parser.parse_args(argv)


async def measure(conninfo: str, sessions: int) -> dict[str, float]:
    opened = [
        await psycopg.AsyncConnection.connect(
            conninfo, application_name=APPLICATION, autocommit=False
        )
        for _ in range(sessions)
    ]
    for session in opened:
        await session.execute("SELECT 1")  # idle in transaction from now on
    monitor = await pg.connect(conninfo)
    runner = ActionRunner(conninfo, None, 3.0)
    try:
        caps = await pg.probe(monitor)
        own = frozenset({monitor.info.backend_pid})
        snapshot = await ActivityCollector(caps, own).collect(monitor)
        chosen = [b for b in snapshot.backends if b.application_name == APPLICATION]
        assert len(chosen) == sessions, f"{len(chosen)} of {sessions} sessions seen"
        started = time.perf_counter()
        roles = await target_roles(monitor, (b.user for b in chosen))
        targets = plan_group("terminate", chosen, caps, own, roles)
        plans = [t.plan for t in targets if t.plan is not None]
        planned = time.perf_counter()
        action_conn = await runner.connect()
        sent_at = time.perf_counter()
        for plan in plans:
            refused = await send_signal(action_conn, plan)
            assert refused is None, refused.message
        sent = time.perf_counter()
        while True:
            cur = await monitor.execute(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = %s",
                (APPLICATION,),
            )
            row = await cur.fetchone()
            if row is not None and row["n"] == 0:
                break
            await asyncio.sleep(0.01)
        gone = time.perf_counter()
        assert not monitor.closed, "pgtop's monitoring connection survives"
        assert runner.pid is not None, "pgtop's action connection survives"
        return {
            "plan (roles, statements)": (planned - started) * 1000,
            "send every signal": (sent - sent_at) * 1000,
            "until every session is gone": (gone - sent_at) * 1000,
            "per session sent": (sent - sent_at) * 1000 / max(1, len(plans)),
        }
    finally:
        await runner.close()
        await monitor.close()
        for session in opened:
            await session.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    bindir = args.bindir or find_bindir()
    settings = {"max_connections": str(args.sessions + 20)}
    cluster = start_cluster(bindir, settings=settings, name="pgtop-bench")
    try:
        version = cluster.psql("SHOW server_version")
        results = asyncio.run(measure(cluster.conninfo(), args.sessions))
    finally:
        cluster.destroy()
    print(f"\nPostgreSQL {version}, a terminate of {args.sessions} tagged sessions\n")
    for label, value in results.items():
        print(f"{label:30} {value:10.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
