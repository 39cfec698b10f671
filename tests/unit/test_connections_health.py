"""The Health checks of who holds the slots and of a PgBouncer's waiting clients, without a
server: canned snapshots, the default thresholds."""

from __future__ import annotations

from dataclasses import replace

from canned import NOW, backend, incident_snapshot

from pgtop.collectors.connections import session_groups
from pgtop.collectors.health import (
    Finding,
    PoolerHealth,
    Status,
    pooler_findings,
    session_findings,
)
from pgtop.config import Thresholds
from pgtop.model import ActivitySnapshot, Pool, PoolsSnapshot


def application_slots(snapshot: ActivitySnapshot) -> Finding:
    (finding,) = [
        f for f in session_findings(snapshot, Thresholds()) if f.check == "application_slots"
    ]
    return finding


def test_one_application_holding_most_slots_is_named() -> None:
    base = incident_snapshot()  # max_connections 100, 3 reserved: 97 open to ordinary roles
    quiet = application_slots(base)
    assert quiet.status is Status.OK
    assert quiet.value == 100.0 * 2 / 97, "checkout-api's or web's 2 sessions"

    workers = tuple(backend(5000 + i, application_name="reporting-worker") for i in range(50))
    busy = replace(base, backends=base.backends + workers)
    finding = application_slots(busy)
    assert finding.status is Status.WARN
    assert finding.value == 100.0 * 50 / 97
    assert finding.summary.startswith("application reporting-worker holds 50 of 97 connection")
    assert "50 idle" in finding.summary
    assert finding.target is not None
    assert finding.target.pid in {w.pid for w in workers}

    more = tuple(backend(6000 + i, application_name="reporting-worker") for i in range(25))
    assert application_slots(replace(busy, backends=busy.backends + more)).status is Status.CRIT


def test_the_application_named_is_the_activity_tabs_first_group() -> None:
    """Same counts and same choice as the Activity tab's groups by application: the most
    sessions, then the first name; background processes left out; the target the first
    session listed."""
    states: list[str | None] = ["active", "idle", "idle in transaction"]
    states += ["idle in transaction (aborted)", "fastpath function call", None, "idle", "active"]
    mixed = tuple(
        backend(7000 + 2 * i + j, application_name=name, state=states[i % len(states)])
        for i in range(60)
        for j, name in enumerate(("zeta", "alpha"))
    )
    walsenders = tuple(
        backend(8000 + i, application_name="zeta", backend_type="walsender") for i in range(5)
    )
    base = incident_snapshot()
    snapshot = replace(base, backends=walsenders + base.backends + mixed)
    top = session_groups(snapshot, ("application_name",))[0]
    assert top.key == ("alpha",), "60 sessions each: the first name"
    finding = application_slots(snapshot)
    assert finding.summary == (
        f"application alpha holds 60 of 97 connection slots (62%; {top.active} active, "
        f"{top.idle} idle, {top.idle_in_transaction} idle in tx)"
    )
    assert (top.active, top.idle, top.idle_in_transaction) == (22, 15, 16)
    assert finding.target is not None
    assert (finding.target.pid, finding.target.name) == (7001, "alpha")


def test_the_thresholds_are_the_config_files() -> None:
    base = incident_snapshot()
    strict = replace(Thresholds(), application_slots=(1.0, 2.0))
    (finding,) = [f for f in session_findings(base, strict) if f.check == "application_slots"]
    assert finding.status is Status.CRIT


def pools(*waiting: tuple[int, float]) -> PoolsSnapshot:
    return PoolsSnapshot(
        version="1.18.0",
        collected_at=NOW,
        pools=tuple(
            Pool(f"db{i}", "app", 5, count, 5, 0, 0, 0, 0, wait, "transaction", 5)
            for i, (count, wait) in enumerate(waiting)
        ),
    )


def test_clients_waiting_for_a_server_on_a_pgbouncer() -> None:
    (calm,) = pooler_findings(pools((0, 0.0), (0, 0.0)), Thresholds())
    assert (calm.check, calm.status) == ("pooler_wait", Status.OK)
    assert calm.summary == "no client waits for a server"

    (slow,) = pooler_findings(pools((0, 0.0), (3, 2.5), (1, 0.2)), Thresholds())
    assert slow.status is Status.WARN
    assert slow.value == 2.5
    assert slow.summary.startswith("4 clients waiting for a server in 2 pools; pool db1/app")
    assert slow.short == "4 clients wait 2.5s (db1/app)"

    (stuck,) = pooler_findings(pools((9, 12.0)), Thresholds())
    assert stuck.status is Status.CRIT


def test_pooler_health_says_since_when() -> None:
    health = PoolerHealth(Thresholds())
    first = health.evaluate(pools((3, 2.5)))
    later = health.evaluate(replace(pools((4, 3.0)), collected_at=NOW.replace(minute=31)))
    assert first.worst() is Status.WARN
    assert later.findings[0].since == NOW, "still warn: since the first time"
