"""``--once replication``: one row per standby, replication slot or WAL receiver (``kind``),
with the WAL, the archiver and every database's size beside the rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pgtop.formats import ago, duration, size
from pgtop.reports.base import Report, Row, fields_of, text
from pgtop.text import one_line

if TYPE_CHECKING:
    from pgtop.collectors.replication import DatabaseState, ReplicationData

STANDBY_FIELDS = (
    "pid",
    "application_name",
    "client_addr",
    "state",
    "sync_state",
    "sent_lag_bytes",
    "write_lag_bytes",
    "flush_lag_bytes",
    "replay_lag_bytes",
    "write_lag_s",
    "flush_lag_s",
    "replay_lag_s",
)
RECEIVER_FIELDS = (
    "pid",
    "status",
    "sender_host",
    "sender_port",
    "received_lsn",
    "replayed_lsn",
    "replay_delay_s",
    "replay_paused",
)


def replication_rows(data: ReplicationData) -> list[Row]:
    rows: list[Row] = [{"kind": "standby", **fields_of(s, *STANDBY_FIELDS)} for s in data.standbys]
    rows += [
        {
            "kind": "slot",
            "slot_name": s.name,
            "slot_type": s.kind,
            "active": s.active,
            "active_pid": s.active_pid,
            "wal_status": s.wal_status,
            "retained_bytes": s.retained_bytes,
            "safe_wal_size": s.safe_wal_size,
            "database": s.database,
            "plugin": s.plugin,
            "xmin": s.xmin,
            "catalog_xmin": s.catalog_xmin,
        }
        for s in data.slots
    ]
    if data.receiver is not None:
        rows.append({"kind": "receiver", **fields_of(data.receiver, *RECEIVER_FIELDS)})
    return rows


def extra(data: ReplicationData) -> dict[str, Any]:
    """The ``wal`` and ``archiver`` objects of the JSON document."""
    wal = data.wal
    archiver = data.archiver
    return {
        "wal": {
            "lsn": wal.lsn,
            "dir_bytes": wal.dir_bytes,
            "segments": wal.segments,
            "dir_problem": wal.dir_problem,
            "rate_bytes_per_s": wal.rate_bytes_per_s,
            "max_wal_size": wal.max_wal_size,
            "wal_keep_size": wal.wal_keep_size,
            "wal_segment_size": wal.wal_segment_size,
        },
        "archiver": {
            **fields_of(archiver, *type(archiver).__dataclass_fields__),
            "failing": archiver.failing,
            "ready_segments": wal.archive_ready,
            "checkpoints_timed": data.checkpoints_timed,
            "checkpoints_requested": data.checkpoints_requested,
            "last_checkpoint_time": data.last_checkpoint_time,
        },
        "databases_problem": data.databases_problem,
        "databases": [
            {
                "name": d.name,
                "size_bytes": d.size_bytes,
                "readable": d.readable,
                "recovery_conflicts": dict(d.conflicts),
            }
            for d in data.databases
        ],
    }


def _name(row: Row) -> str:
    if row["kind"] == "standby":
        return str(row["application_name"] or row["client_addr"] or "")
    if row["kind"] == "slot":
        return str(row["slot_name"])
    return f"{row['sender_host'] or ''}:{row['sender_port'] or ''}"


def _state(row: Row) -> str:
    if row["kind"] == "slot":
        return f"active pid {row['active_pid']}" if row["active"] else "inactive"
    return str(row.get("state") or row.get("status") or "")


def _bytes(row: Row) -> str:
    value = row.get("replay_lag_bytes", row.get("retained_bytes"))
    return size(value)


def _lag(row: Row) -> str:
    return duration(row.get("replay_lag_s", row.get("replay_delay_s")))


def wal_line(data: ReplicationData) -> str:
    wal = data.wal
    where = "replayed" if data.in_recovery else "WAL"
    parts = [f"{where} {wal.lsn or '?'}"]
    rate = wal.rate_bytes_per_s
    parts.append(f"{size(rate)}/s" if rate is not None else "rate after a second read")
    if wal.dir_problem is not None:
        parts.append(wal.dir_problem)
    elif wal.dir_bytes is not None:
        parts.append(f"pg_wal {size(wal.dir_bytes)} in {wal.segments} segments")
    parts.append(f"max_wal_size {size(wal.max_wal_size)}")
    parts.append(f"wal_keep_size {size(wal.wal_keep_size)}")
    return " · ".join(parts)


def archiver_line(data: ReplicationData) -> str:
    ar = data.archiver
    now = data.collected_at
    if ar.archive_mode == "off":
        parts = ["archiving off"]
    else:
        parts = [f"archived {ar.archived_count:,}, failed {ar.failed_count:,}"]
        if ar.failing:
            parts.append(
                f"FAILING: {one_line(ar.last_failed_wal or '?', 40)} "
                f"{ago(ar.last_failed_time, now)} ago"
            )
        elif ar.last_archived_time is not None:
            parts.append(f"last {ago(ar.last_archived_time, now)} ago")
        ready = data.wal.archive_ready
        if ready is not None:
            parts.append(f"{ready} waiting")
    if data.checkpoints_timed is not None:
        checkpoints = (
            f"checkpoints {data.checkpoints_timed:,} timed, "
            f"{data.checkpoints_requested or 0:,} requested"
        )
        if data.last_checkpoint_time is not None:
            checkpoints += f", last {ago(data.last_checkpoint_time, now)} ago"
        parts.append(checkpoints)
    return " · ".join(parts)


def conflicts_text(database: DatabaseState) -> str:
    """A standby's recovery conflicts in one database, by cause."""
    if not database.conflicts:
        return "no recovery conflict"
    causes = ", ".join(f"{cause} {count:,}" for cause, count in database.conflicts.items())
    return f"recovery conflicts: {causes}"


def databases_line(data: ReplicationData) -> str:
    """Every database's size, largest first (those the role may not read said so)."""
    parts = [
        f"{one_line(d.name, 60)} {size(d.size_bytes)}"
        if d.readable
        else f"{one_line(d.name, 60)} (no access)"
        for d in data.databases
    ]
    line = "databases: " + (", ".join(parts) or "none readable")
    if data.databases_problem:
        line += f" ({data.databases_problem})"
    return line


def of(data: ReplicationData) -> Report:
    columns = [
        ("KIND", text("kind", 8)),
        ("NAME", lambda row: text("x", 60)({"x": _name(row)})),
        ("STATE", _state),
        ("SYNC/WAL", lambda row: str(row.get("sync_state") or row.get("wal_status") or "")),
        ("BYTES", _bytes),
        ("LAG", _lag),
    ]
    return Report(
        data.collected_at,
        replication_rows(data),
        columns,
        extra=extra(data),
        footer=(wal_line(data), archiver_line(data), databases_line(data)),
    )


async def report(source: Any) -> Report:
    from pgtop.collectors.replication import ReplicationData

    activity = await source.poll()
    data = await source.collect("replication", activity, None, now=True)
    assert isinstance(data, ReplicationData)
    return of(data)
