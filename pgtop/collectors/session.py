"""What one session is doing, beyond its pg_stat_activity row: how far along its command is
(the server's progress views), and what pg_stat_statements knows of its statement.

Read for the session's detail, on each refresh while it is open (see ``SessionFigures``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from pgtop import pg, sql
from pgtop.collectors.statements import (
    EXTENSION,
    STATEMENTS_INTERVAL,
    Statement,
    availability,
    statements_from_rows,
    version_tuple,
)
from pgtop.model import Backend, Capabilities

Connection = psycopg.AsyncConnection[dict[str, Any]]

ENTRY_SECONDS = STATEMENTS_INTERVAL
"""Least seconds between two reads of a session's pg_stat_statements entry (the function
goes through every entry); its progress is read on every refresh."""


@dataclass(frozen=True, slots=True)
class Figure:
    """One count a progress view reports: what is done, of how many (None: no total known)."""

    label: str
    done: int
    total: int | None = None
    unit: str = ""
    """``bytes`` for sizes; "" for counts."""

    @property
    def share(self) -> float | None:
        """Done as a share of the total, when there is a total."""
        if self.total is None or self.total <= 0:
            return None
        return min(self.done / self.total, 1.0)


@dataclass(frozen=True, slots=True)
class Progress:
    """What a progress view says of a session's command."""

    command: str
    """``VACUUM``, ``CREATE INDEX CONCURRENTLY``, ``COPY FROM``, ``BASE BACKUP``…"""
    phase: str
    relation: str | None
    figures: tuple[Figure, ...]
    """The figure that measures the current phase first."""

    @property
    def share(self) -> float | None:
        """How far along the current phase is, when its figure has a total."""
        return self.figures[0].share if self.figures else None


def _int(figures: Mapping[str, Any], key: str) -> int | None:
    value = figures.get(key)
    return None if value is None else int(value)


def _figures(values: Mapping[str, Any], *wanted: tuple[str, str, str | None, str]) -> list[Figure]:
    """A Figure for each ``(label, done column, total column, unit)`` the row has a value
    for; a figure whose total is 0 (not known yet, or nothing to do) has none."""
    found = []
    for label, done_key, total_key, unit in wanted:
        done = _int(values, done_key)
        if done is None:
            continue
        total = _int(values, total_key) if total_key else None
        found.append(Figure(label, done, total or None, unit))
    return found


def _first(figures: list[Figure], *labels: str) -> tuple[Figure, ...]:
    """The figures with the first of ``labels`` that has a total moved to the front."""
    for label in labels:
        for figure in figures:
            if figure.label == label and figure.total:
                return (figure, *(f for f in figures if f is not figure))
    return tuple(figures)


def progress_from_row(kind: str, values: Mapping[str, Any], relation: str | None) -> Progress:
    """A Progress from one row of ``sql.SESSION_PROGRESS``: the view (``kind``), its
    columns by name, and the relation named.

    >>> p = progress_from_row(
    ...     "vacuum",
    ...     {"phase": "scanning heap", "heap_blks_total": 5678, "heap_blks_scanned": 1234,
    ...      "heap_blks_vacuumed": 0, "index_vacuum_count": 0},
    ...     "public.t",
    ... )
    >>> p.command, p.phase, p.figures[0]
    ('VACUUM', 'scanning heap', Figure(label='heap blocks scanned', done=1234, total=5678, unit=''))
    """
    phase = str(values.get("phase") or "")
    if kind == "vacuum":
        found = _figures(
            values,
            ("heap blocks scanned", "heap_blks_scanned", "heap_blks_total", ""),
            ("heap blocks vacuumed", "heap_blks_vacuumed", "heap_blks_total", ""),
            ("indexes processed", "indexes_processed", "indexes_total", ""),
            ("index vacuum cycles", "index_vacuum_count", None, ""),
        )
        if "index" in phase:
            order: tuple[str, ...] = ("indexes processed",)
        elif phase == "vacuuming heap":
            order = ("heap blocks vacuumed",)
        else:
            order = ("heap blocks scanned",)
        return Progress("VACUUM", phase, relation, _first(found, *order))
    if kind == "analyze":
        found = _figures(
            values,
            ("sample blocks scanned", "sample_blks_scanned", "sample_blks_total", ""),
            ("extended statistics computed", "ext_stats_computed", "ext_stats_total", ""),
            ("child tables done", "child_tables_done", "child_tables_total", ""),
        )
        if "extended" in phase:
            order = ("extended statistics computed",)
        elif "inherited" in phase:
            order = ("child tables done", "sample blocks scanned")
        else:
            order = ("sample blocks scanned",)
        return Progress("ANALYZE", phase, relation, _first(found, *order))
    if kind == "create_index":
        found = _figures(
            values,
            ("blocks done", "blocks_done", "blocks_total", ""),
            ("tuples done", "tuples_done", "tuples_total", ""),
            ("lockers waited for", "lockers_done", "lockers_total", ""),
            ("partitions done", "partitions_done", "partitions_total", ""),
        )
        found = [f for f in found if f.done or f.total]
        if phase.startswith("waiting"):
            order = ("lockers waited for",)
        elif "tuples" in phase or "sorting" in phase:
            order = ("tuples done", "blocks done")
        else:
            order = ("blocks done", "tuples done")
        command = str(values.get("command") or "CREATE INDEX")
        return Progress(command, phase, relation, _first(found, *order, "partitions done"))
    if kind == "cluster":
        found = _figures(
            values,
            ("heap blocks scanned", "heap_blks_scanned", "heap_blks_total", ""),
            ("heap tuples scanned", "heap_tuples_scanned", None, ""),
            ("heap tuples written", "heap_tuples_written", None, ""),
            ("indexes rebuilt", "index_rebuild_count", None, ""),
        )
        command = str(values.get("command") or "CLUSTER")
        return Progress(command, phase, relation, _first(found, "heap blocks scanned"))
    if kind == "copy":
        found = _figures(
            values,
            ("bytes processed", "bytes_processed", "bytes_total", "bytes"),
            ("tuples processed", "tuples_processed", None, ""),
            ("tuples excluded", "tuples_excluded", None, ""),
            ("tuples skipped", "tuples_skipped", None, ""),
        )
        found = [f for f in found if f.done or f.label in ("bytes processed", "tuples processed")]
        through = str(values.get("type") or "").lower()  # file, program, pipe, callback
        command = str(values.get("command") or "COPY")
        return Progress(command, through, relation, tuple(found))
    if kind == "basebackup":
        found = _figures(
            values,
            ("bytes streamed", "backup_streamed", "backup_total", "bytes"),
            ("tablespaces streamed", "tablespaces_streamed", "tablespaces_total", ""),
        )
        return Progress("BASE BACKUP", phase, relation, _first(found, "bytes streamed"))
    return Progress(kind.upper(), phase, relation, ())


@dataclass(frozen=True, slots=True)
class Figures:
    """What a session's detail reads on each refresh besides its row."""

    progress: tuple[Progress, ...]
    statement: Statement | None
    """Its statement's pg_stat_statements entry, when there is one to show."""
    statement_note: str
    """Why there is no entry ("" when there is)."""


def no_entry_reason(backend: Backend, capabilities: Capabilities) -> str:
    """Why pgtop will not look up this session's pg_stat_statements entry; "" when it may."""
    if backend.query_hidden:
        return "its query is hidden from this role (it needs pg_read_all_stats)"
    unavailable = availability(capabilities)
    if unavailable is not None:
        return unavailable.reason
    if capabilities.pgss_schema is None:
        return f"the schema of {EXTENSION} is not known"
    if backend.query_id is None:
        if capabilities.server_version_num < 140000:
            return (
                "PostgreSQL 13 does not report the query id of a running statement, which "
                "finds its pg_stat_statements entry"
            )
        return (
            "the server reports no query id for it (compute_query_id is off, or not yet), "
            "which finds its pg_stat_statements entry"
        )
    if backend.user is None or backend.database is None:
        return "its role or database is not known, which find its pg_stat_statements entry"
    if not capabilities.sees_all_queries and backend.user != capabilities.user:
        return (
            "other roles' pg_stat_statements entries are hidden from this role (it needs "
            "pg_read_all_stats)"
        )
    return ""


@dataclass(frozen=True, slots=True)
class SessionFigures:
    """A request for one session's progress and its statement's pg_stat_statements entry."""

    backend: Backend
    capabilities: Capabilities
    entry: bool = True
    """Read the pg_stat_statements entry too (False: progress only, the entry's figures
    being read at most every ``ENTRY_SECONDS``)."""

    async def read(self, conn: Connection) -> Figures:
        backend = self.backend
        caps = self.capabilities
        version = conn.info.server_version
        cur = await conn.execute(sql.SESSION_PROGRESS.sql(version), {"pid": backend.pid})
        progress = tuple(
            progress_from_row(row["kind"], row["figures"] or {}, row["relation"])
            for row in await cur.fetchall()
        )
        if not self.entry:
            return Figures(progress, None, "")
        note = no_entry_reason(backend, caps)
        if note:
            return Figures(progress, None, note)
        assert caps.pgss_version is not None
        assert caps.pgss_schema is not None
        query = sql.SESSION_STATEMENT.sql(version_tuple(caps.pgss_version), caps.pgss_schema)
        params = {
            "queryid": backend.query_id,
            "user": backend.user,
            "database": backend.database,
        }
        try:
            async with conn.cursor(row_factory=tuple_row) as entries:
                await entries.execute(query, params)
                rows = await entries.fetchall()
        except psycopg.Error as exc:
            if conn.broken or conn.closed or isinstance(exc, psycopg.OperationalError):
                raise
            return Figures(progress, None, f"{EXTENSION} cannot be read: {pg.first_line(exc)}")
        found = list(statements_from_rows(rows).values())
        if not found:
            return Figures(
                progress,
                None,
                "no pg_stat_statements entry yet: it counts a statement when it ends, and this "
                "one has not ended before (or its entry was evicted or reset)",
            )
        return Figures(progress, found[0], "")
