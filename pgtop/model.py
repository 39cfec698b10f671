"""Immutable records of what pgtop saw on the server: one snapshot per poll."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Literal

HIDDEN_QUERY = "<insufficient privilege>"
"""What pg_stat_activity shows in place of a query the role may not see."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the connected role may see and do, probed once per connection."""

    server_version: str
    """Human version string, e.g. ``15.18 (Debian 15.18-0+deb12u1)``."""
    server_version_num: int
    is_standby: bool
    user: str
    database: str
    is_superuser: bool
    read_all_stats: bool
    """Member of pg_read_all_stats (directly or through pg_monitor): sees every query."""
    monitor: bool
    signal_backend: bool
    """Member of pg_signal_backend: may cancel and terminate other roles' sessions."""
    pgss_preloaded: bool | None
    """pg_stat_statements is in shared_preload_libraries (None: this role may not read it)."""
    pgss_version: str | None
    """Version of the pg_stat_statements extension created in this database, if any."""
    max_connections: int
    reserved_connections: int
    """superuser_reserved_connections plus reserved_connections (16+)."""
    started_at: datetime
    """When the postmaster started."""
    pgss_schema: str | None = None
    """The schema pg_stat_statements was created in: its objects are named through it, never
    looked up through a search_path."""

    @property
    def major(self) -> int:
        return self.server_version_num // 10000

    @property
    def sees_all_queries(self) -> bool:
        return self.is_superuser or self.read_all_stats


@dataclass(frozen=True, slots=True)
class Backend:
    """One row of pg_stat_activity."""

    pid: int
    database: str | None
    user: str | None
    application_name: str
    client_addr: str | None
    client_hostname: str | None
    client_port: int | None
    backend_type: str
    state: str | None
    wait_event_type: str | None
    wait_event: str | None
    backend_start: datetime | None
    xact_start: datetime | None
    query_start: datetime | None
    state_change: datetime | None
    backend_xid: str | None
    backend_xmin: str | None
    leader_pid: int | None
    query_id: int | None
    blocked_by: tuple[int, ...]
    """Pids that block this backend's lock wait, as ``pg_blocking_pids()`` reports them."""
    query: str
    """Query text; in a list snapshot possibly clipped to a prefix (see Snapshot.query_limit)."""

    @property
    def is_client(self) -> bool:
        return self.backend_type == "client backend"

    @property
    def query_hidden(self) -> bool:
        """True when the role may not see this session's query (nor its state)."""
        return self.query == HIDDEN_QUERY

    @property
    def waiting_on_lock(self) -> bool:
        return self.wait_event_type == "Lock"

    @property
    def busy(self) -> bool:
        """Running a query now."""
        return self.state in ("active", "fastpath function call")

    def age(self, now: datetime) -> float | None:
        """Seconds its transaction has been open at ``now``, or its query running when it
        has no transaction; None when it has neither (an idle session)."""
        if self.xact_start is not None:
            return (now - self.xact_start).total_seconds()
        if self.busy and self.query_start is not None:
            return (now - self.query_start).total_seconds()
        return None


@dataclass(frozen=True, slots=True)
class ServerCounters:
    """Cumulative server counters, turned into rates by comparing two polls."""

    collected_at: datetime
    """Server clock when these were read; every age on screen is measured from it."""
    xact_total: int
    """Committed plus rolled back transactions, all databases."""
    blks_hit: int
    blks_read: int
    in_recovery: bool = False
    """A standby right now (a promotion shows up on the next poll)."""
    own_alive: int = 0
    """pgtop's own backends the server still has (each holds a connection slot)."""


@dataclass(frozen=True, slots=True)
class ActivitySnapshot:
    """What one poll of the Activity data saw."""

    capabilities: Capabilities
    counters: ServerCounters
    backends: tuple[Backend, ...]
    own_pids: frozenset[int]
    """pgtop's own backends; never listed."""
    tps: float | None = None
    """Transactions per second since the previous poll."""
    cache_hit: float | None = None
    """Share of block reads served from shared buffers since the previous poll (or lifetime)."""

    @property
    def collected_at(self) -> datetime:
        return self.counters.collected_at

    @property
    def blocking_pids(self) -> frozenset[int]:
        """Pids that block at least one other backend."""
        return frozenset(pid for b in self.backends for pid in b.blocked_by)

    def _counted(self) -> _Census:
        last = _last_census
        if last is not None and last[0] is self:
            return last[1]
        by_application: dict[tuple[str | None, str | None], int] = {}
        waiting = 0
        # Attributes, not the properties that say the same: thousands of sessions.
        for b in self.backends:
            if b.wait_event_type == "Lock":
                waiting += 1
            if b.backend_type == "client backend":
                key = (b.application_name, b.state)
                by_application[key] = by_application.get(key, 0) + 1
        states: dict[str | None, int] = {}
        for (_, state), sessions in by_application.items():
            states[state] = states.get(state, 0) + sessions
        census = (states, sum(states.values()), waiting, by_application)
        _remember_census(self, census)
        return census

    def count(self, state: str) -> int:
        """Client sessions in ``state``."""
        return self._counted()[0].get(state, 0)

    @property
    def client_connections(self) -> int:
        """Client sessions, pgtop's own included (they use connection slots too), but
        those the server has ended."""
        return self._counted()[1] + self.counters.own_alive

    @property
    def waiting(self) -> int:
        return self._counted()[2]

    def client_sessions(self) -> Mapping[tuple[str | None, str | None], int]:
        """Client sessions by application name and state."""
        return self._counted()[3]


_Census = tuple[dict[str | None, int], int, int, dict[tuple[str | None, str | None], int]]
"""Client sessions by state, client sessions, lock waits, client sessions by application
and state."""

_last_census: tuple[ActivitySnapshot, _Census] | None = None
"""The counts of the last snapshot counted: the header asks for each on every refresh,
over thousands of sessions, and they are counted once. (Kept out of the snapshot, which
is recorded field by field.)"""


def _remember_census(snapshot: ActivitySnapshot, census: _Census) -> None:
    global _last_census
    _last_census = (snapshot, census)


SYSTEM_SCHEMAS = frozenset({"pg_catalog", "pg_toast", "information_schema"})


@dataclass(frozen=True, slots=True)
class SessionTarget:
    """A session, captured when the confirm dialog opened."""

    pid: int
    backend_start: datetime
    query_start: datetime | None
    user: str | None
    application_name: str
    backend_type: str
    database: str | None
    state: str | None
    query: str

    @classmethod
    def of(cls, backend: Backend) -> SessionTarget:
        """The backend's fields of the same names."""
        if backend.backend_start is None:
            raise ValueError("a session without a start time cannot be targeted")
        return cls(**{f.name: getattr(backend, f.name) for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class SlotTarget:
    """A replication slot, captured by name when the confirm dialog opened."""

    name: str
    kind: str
    """physical or logical."""
    database: str | None
    plugin: str | None
    active: bool
    active_pid: int | None
    retained_bytes: int | None

    @property
    def consumer_loss(self) -> str:
        """What the slot's consumer loses when it is dropped."""
        if self.kind == "logical":
            return "its logical subscriber loses its position (set it up again)"
        return "a standby using it must be re-seeded (a new base backup) if it falls behind"


@dataclass(frozen=True, slots=True)
class CheckpointTarget:
    """The server a CHECKPOINT is asked of, as the Replication tab last saw it."""

    in_recovery: bool
    """On a standby a CHECKPOINT is a restartpoint."""
    wal_dir_bytes: int | None
    last_checkpoint_time: datetime | None


@dataclass(frozen=True, slots=True)
class RelationTarget:
    """A table or an index, captured by OID when the confirm dialog opened."""

    oid: int
    schema: str
    name: str
    kind: Literal["table", "index"]
    size_bytes: int | None = None
    table_oid: int | None = None
    """For an index: its table."""
    table_name: str | None = None
    database: str | None = None
    """The database it lives in (None: the one pgtop is connected to)."""
    owner: str | None = None
    """Its owner (an index's is its table's), read when the dialog opens."""

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def is_system(self) -> bool:
        return self.schema in SYSTEM_SCHEMAS


# -- PgBouncer -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pool:
    """One pool of a PgBouncer (a row of ``SHOW POOLS``), with its database's size and
    traffic."""

    database: str
    user: str
    cl_active: int
    """Clients linked to a server, or idle with no need of one."""
    cl_waiting: int
    """Clients that sent a query and wait for a server."""
    sv_active: int
    sv_idle: int
    sv_used: int
    sv_tested: int
    sv_login: int
    maxwait_s: float
    """How long the oldest waiting client has waited, in seconds (0 when none waits)."""
    pool_mode: str | None
    pool_size: int | None
    """The database's pool size (``SHOW DATABASES``); None when it is not listed there."""
    xact_per_s: float | None = None
    """Transactions per second of the pool's database (``SHOW STATS``, over PgBouncer's last
    statistics period); None when it is not listed there."""
    query_per_s: float | None = None


@dataclass(frozen=True, slots=True)
class PoolerTraffic:
    """One database's traffic through a PgBouncer: ``SHOW STATS``' averages over its last
    statistics period (``stats_period``, 60 s by default)."""

    database: str
    xact_per_s: float
    query_per_s: float
    received_per_s: float
    """Bytes from the clients per second."""
    sent_per_s: float
    """Bytes to the clients per second."""
    query_ms: float | None
    """Mean time of a query; None without a query."""
    wait_ms: float | None
    """Mean time clients waited for a server; None without a transaction."""


@dataclass(frozen=True, slots=True)
class PoolsSnapshot:
    """What one refresh of a PgBouncer admin console saw."""

    version: str
    """PgBouncer's version, e.g. ``1.18.0``."""
    collected_at: datetime
    """pgtop's clock when it was read (the console has none to give)."""
    pools: tuple[Pool, ...]
    traffic: tuple[PoolerTraffic, ...] = ()
    """Per database, by name."""

    @property
    def clients_active(self) -> int:
        return sum(pool.cl_active for pool in self.pools)

    @property
    def clients_waiting(self) -> int:
        """Clients waiting for a server, over every pool."""
        return sum(pool.cl_waiting for pool in self.pools)

    @property
    def longest_wait_s(self) -> float:
        """How long the client that has waited longest has waited (0 when none waits)."""
        return max((pool.maxwait_s for pool in self.pools), default=0.0)

    @property
    def servers_active(self) -> int:
        return sum(pool.sv_active for pool in self.pools)

    @property
    def servers_idle(self) -> int:
        return sum(pool.sv_idle for pool in self.pools)

    @property
    def servers_used(self) -> int:
        return sum(pool.sv_used for pool in self.pools)

    def waiting_pools(self) -> tuple[Pool, ...]:
        """The pools with clients waiting for a server, longest wait first."""
        return tuple(
            sorted(
                (pool for pool in self.pools if pool.cl_waiting),
                key=lambda pool: (-pool.maxwait_s, -pool.cl_waiting, pool.database, pool.user),
            )
        )


@dataclass(frozen=True, slots=True)
class PoolerPeer:
    """A client or a server connection of a PgBouncer (``SHOW CLIENTS``, ``SHOW SERVERS``)."""

    state: str
    addr: str | None
    port: int | None
    application_name: str
    connect_time: str
    """As PgBouncer gives it (its own clock and format)."""
    request_time: str
    wait_s: float
    """For a waiting client: how long it has waited."""
    remote_pid: int | None
    """For a server: the PostgreSQL backend's pid."""


Snapshot = ActivitySnapshot | PoolsSnapshot
"""What a refresh of a source gives: the Activity snapshot of a PostgreSQL server, or the
pools of a PgBouncer admin console."""
