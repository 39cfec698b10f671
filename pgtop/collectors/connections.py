"""Who holds the connection slots: the client sessions of an Activity snapshot, in groups.

Nothing is read for it: the groups are made from the snapshot the Activity refresh already
took, so grouping costs the server nothing and agrees with the session list on screen. Only
client sessions count (background processes hold slots of their own); pgtop's own are never
in a snapshot. A session whose state the role may not see (another role's, without
``pg_read_all_stats``) counts in ``total`` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Literal

from pgtop.model import ActivitySnapshot, Backend

GroupField = Literal["application_name", "user", "client_addr", "database"]
"""A field of a session its group is named by."""

GROUPINGS: tuple[GroupField, ...] = ("application_name", "user", "client_addr", "database")
"""The groupings the Activity tab cycles through, in order."""

GroupKey = tuple[str | None, ...]
"""The values of the grouped fields, in their order (None: a session without one, such as
the client address of a Unix-socket connection)."""

ACTIVE_STATES = frozenset({"active", "fastpath function call"})
"""The states counted as active: running a statement."""
IDLE_IN_TRANSACTION_STATES = frozenset({"idle in transaction", "idle in transaction (aborted)"})
"""The states counted as idle in a transaction, aborted ones included."""


@dataclass(frozen=True, slots=True)
class SessionGroup:
    """The client sessions that share the values of the fields grouped by."""

    key: GroupKey
    total: int
    active: int
    """Running a statement (waiting ones included)."""
    idle: int
    idle_in_transaction: int
    """Idle in a transaction, aborted ones included."""
    waiting: int
    """Waiting on a lock."""
    oldest_idle_s: float | None
    """Seconds since the longest-idle session finished its last statement (None: none idle)."""
    oldest_xact_s: float | None
    """Age of the oldest open transaction in seconds (None: no transaction open)."""
    share: float
    """Share of max_connections these sessions hold."""


def group_key(backend: Backend, by: Sequence[GroupField]) -> GroupKey:
    """The values of ``backend``'s fields ``by``, in that order."""
    return tuple(getattr(backend, field) for field in by)


def _age(now: datetime, since: datetime | None) -> float | None:
    return None if since is None else (now - since).total_seconds()


def session_groups(snapshot: ActivitySnapshot, by: Sequence[GroupField]) -> list[SessionGroup]:
    """The client sessions of ``snapshot`` grouped by the fields ``by``, the largest group
    first (then by key, so the order is stable).

    Ages are measured from the server clock of the snapshot.
    """
    now = snapshot.collected_at
    counts: dict[GroupKey, list[int]] = {}
    idle_since: dict[GroupKey, datetime] = {}
    xact_since: dict[GroupKey, datetime] = {}
    # Thousands of sessions, on every refresh (the Health checks group them too): the
    # fields by attrgetter, the oldest times compared, and made ages once per group.
    get = attrgetter(*by)
    single = len(by) == 1
    for backend in snapshot.backends:
        if backend.backend_type != "client backend":
            continue
        key: GroupKey = (get(backend),) if single else get(backend)
        figures = counts.get(key)
        if figures is None:
            figures = counts[key] = [0, 0, 0, 0, 0]
        figures[0] += 1
        state = backend.state
        if state in ACTIVE_STATES:
            figures[1] += 1
        elif state == "idle":
            figures[2] += 1
            since = backend.state_change
            if since is not None:
                oldest = idle_since.get(key)
                if oldest is None or since < oldest:
                    idle_since[key] = since
        elif state in IDLE_IN_TRANSACTION_STATES:
            figures[3] += 1
        if backend.wait_event_type == "Lock":
            figures[4] += 1
        since = backend.xact_start
        if since is not None:
            oldest = xact_since.get(key)
            if oldest is None or since < oldest:
                xact_since[key] = since
    slots = snapshot.capabilities.max_connections
    groups = [
        SessionGroup(
            key=key,
            total=total,
            active=active,
            idle=idle,
            idle_in_transaction=in_transaction,
            waiting=waiting,
            oldest_idle_s=_age(now, idle_since.get(key)),
            oldest_xact_s=_age(now, xact_since.get(key)),
            share=total / slots if slots else 0.0,
        )
        for key, (total, active, idle, in_transaction, waiting) in counts.items()
    ]
    groups.sort(key=lambda g: (-g.total, [(v is None, v or "") for v in g.key]))
    return groups
