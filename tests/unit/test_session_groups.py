"""Session groups from canned sessions: every count and the oldest ages, by one field and
by several."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from canned import NOW, backend, incident_snapshot

from pgtop.collectors.connections import session_groups


def test_groups_by_one_field_and_by_several() -> None:
    snapshot = incident_snapshot()
    sessions = [
        backend(1, application_name="web", state="idle", state_change=NOW - timedelta(minutes=3)),
        backend(2, application_name="web", state="idle", state_change=NOW - timedelta(minutes=9)),
        backend(
            3,
            application_name="web",
            user="batch",
            state="active",
            wait_event_type="Lock",
            xact_start=NOW - timedelta(seconds=40),
        ),
        backend(
            4,
            application_name="etl",
            state="idle in transaction (aborted)",
            xact_start=NOW - timedelta(seconds=90),
        ),
        backend(5, application_name="etl", backend_type="autovacuum worker", state="active"),
    ]
    snapshot = replace(snapshot, backends=tuple(sessions))
    web, etl = session_groups(snapshot, ("application_name",))
    assert web.key == ("web",)
    assert (web.total, web.active, web.idle, web.idle_in_transaction, web.waiting) == (
        3,
        1,
        2,
        0,
        1,
    )
    assert web.oldest_idle_s == 540.0
    assert web.oldest_xact_s == 40.0
    assert web.share == 3 / snapshot.capabilities.max_connections
    assert etl.key == ("etl",)
    assert (etl.total, etl.idle_in_transaction, etl.oldest_idle_s, etl.oldest_xact_s) == (
        1,
        1,
        None,
        90.0,
    )
    by_two = session_groups(snapshot, ("application_name", "user"))
    assert [(g.key, g.total) for g in by_two] == [
        (("web", "app"), 2),
        (("etl", "app"), 1),
        (("web", "batch"), 1),
    ]
