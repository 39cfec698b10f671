"""Signals to many sessions against real servers: each by its own identity, only those
planned, every one reported."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

from helpers import stage_sessions

from pgtop import pg
from pgtop.actions import (
    NOT_A_CLIENT,
    ActionRunner,
    Outcome,
    plan_group,
    target_roles,
)
from pgtop.collectors.activity import ActivityCollector
from pgtop.model import ActivitySnapshot, Backend


def alive(sessions: Any, pids: list[int]) -> set[int]:
    rows = sessions.admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
    ).fetchall()
    return {row[0] for row in rows}


async def snapshot_of(dsn: str) -> tuple[ActivitySnapshot, Any]:
    conn = await pg.connect(dsn)
    try:
        caps = await pg.probe(conn)
        snapshot = await ActivityCollector(caps, frozenset({conn.info.backend_pid})).collect(conn)
        roles = await target_roles(conn, (b.user for b in snapshot.backends))
        return snapshot, roles
    finally:
        await conn.close()


def run_group(dsn: str, plans: Any) -> list[Outcome]:
    async def go() -> list[Outcome]:
        runner = ActionRunner(dsn, None, 3.0)
        try:
            return await runner.run_group(plans)
        finally:
            await runner.close()

    return asyncio.run(go())


def test_three_of_five_one_ended_one_reused(dsn: str, sessions: Any) -> None:
    """Three planned among five: one is signalled, one ended before the signal, one's pid
    now names another session (its backend_start differs): only the first is hit."""
    tag = uuid.uuid4().hex[:6]
    names = [f"{tag}-{n}" for n in ("hit", "ends", "reused", "other-1", "other-2")]
    pids = stage_sessions(sessions, names)
    snapshot, roles = asyncio.run(snapshot_of(dsn))
    by_name = {b.application_name: b for b in snapshot.backends}
    chosen: list[Backend] = [by_name[f"{tag}-{n}"] for n in ("hit", "ends", "reused")]
    targets = plan_group("terminate", chosen, snapshot.capabilities, snapshot.own_pids, roles)
    assert [t.refusal for t in targets] == ["", "", ""]
    plans = [t.plan for t in targets if t.plan is not None]
    # The second ends on its own before the signal goes out.
    sessions.admin.execute("SELECT pg_terminate_backend(%s)", (pids[f"{tag}-ends"],))
    sessions.wait_until(
        "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = %s)",
        (pids[f"{tag}-ends"],),
    )
    # The third's pid is "reused": the guard's backend_start no longer matches.
    reused = plans[2]
    start = reused.params["backend_start"]
    plans[2] = replace(
        reused, params={**reused.params, "backend_start": start - timedelta(seconds=1)}
    )
    outcomes = run_group(dsn, plans)
    assert [(o.ok, o.gone) for o in outcomes] == [(True, False), (False, True), (False, True)]
    assert "is gone" in outcomes[0].message
    assert "no longer the one selected" in outcomes[2].message
    left = alive(sessions, list(pids.values()))
    assert left == {pids[f"{tag}-{n}"] for n in ("reused", "other-1", "other-2")}


def test_a_cancel_of_many_stops_only_their_queries(dsn: str, sessions: Any) -> None:
    tag = uuid.uuid4().hex[:6]
    names = [f"{tag}-{n}" for n in ("a", "b", "bystander")]
    pids = stage_sessions(sessions, names)
    snapshot, roles = asyncio.run(snapshot_of(dsn))
    chosen = [b for b in snapshot.backends if b.application_name in names[:2]]
    targets = plan_group("cancel", chosen, snapshot.capabilities, snapshot.own_pids, roles)
    outcomes = run_group(dsn, [t.plan for t in targets if t.plan is not None])
    assert [o.ok for o in outcomes] == [True, True]
    assert all("was cancelled" in o.message for o in outcomes)
    states = dict(
        sessions.admin.execute(
            "SELECT application_name, state FROM pg_stat_activity WHERE pid = ANY(%s)",
            (list(pids.values()),),
        ).fetchall()
    )
    assert states == {names[0]: "idle", names[1]: "idle", names[2]: "active"}


def test_own_background_and_unprivileged_targets_are_refused(dsn: str, sessions: Any) -> None:
    """pgtop's own sessions and background processes are never planned; a role without
    pg_signal_backend gets superusers' and other roles' sessions listed as refused, and
    its own role's planned."""
    tag = uuid.uuid4().hex[:6]
    role = f"plain_{tag}"
    sessions.admin.execute(f"CREATE ROLE {role} LOGIN IN ROLE pg_read_all_stats")
    try:
        superuser_pid = stage_sessions(sessions, [f"{tag}-su"])[f"{tag}-su"]
        mine = sessions.open(application_name=f"{tag}-mine", user=role)
        sessions.run_in_background(mine, "SELECT pg_sleep(60)")
        sessions.wait_until(
            "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = %s "
            "AND wait_event = 'PgSleep')",
            (f"{tag}-mine",),
        )
        snapshot, roles = asyncio.run(snapshot_of(f"{dsn} user={role}"))
        by_name = {b.application_name: b for b in snapshot.backends}
        background = next(b for b in snapshot.backends if not b.is_client)
        own = next(iter(snapshot.own_pids))
        own_backend = replace(by_name[f"{tag}-mine"], pid=own)
        chosen = [by_name[f"{tag}-su"], by_name[f"{tag}-mine"], background, own_backend]
        targets = plan_group("terminate", chosen, snapshot.capabilities, frozenset({own}), roles)
        refusals = [t.refusal for t in targets]
        assert refusals[0] == "a superuser's session can only be signalled by a superuser"
        assert refusals[1] == ""
        assert refusals[2], "a background process is never signalled"
        assert refusals[3] == "this is one of pgtop's own sessions"
        assert [t.plan is not None for t in targets] == [False, True, False, False]
        # A superuser may signal a background process alone, never with others.
        snapshot, roles = asyncio.run(snapshot_of(dsn))
        background = next(b for b in snapshot.backends if not b.is_client)
        (target,) = plan_group(
            "terminate", [background], snapshot.capabilities, frozenset({own}), roles
        )
        assert (target.plan, target.refusal) == (None, NOT_A_CLIENT)
        outcomes = run_group(f"{dsn} user={role}", [targets[1].plan])
        assert outcomes[0].ok, outcomes[0].message
        assert alive(sessions, [superuser_pid]) == {superuser_pid}
    finally:
        sessions.admin.execute(f"DROP ROLE {role}")
