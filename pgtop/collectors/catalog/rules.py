"""What decides, in pure functions tested without a server: when autovacuum is due, which
indexes duplicate others, in what order the xmin horizon's holders matter."""

from __future__ import annotations

import heapq
import re
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from pgtop.collectors.catalog.model import (
    AutovacuumSettings,
    AutovacuumVerdict,
    HorizonHolder,
    IndexInfo,
    TableInfo,
    VacuumTable,
)


def parse_bool(text: str) -> bool | None:
    """A boolean the way PostgreSQL reads reloptions (unique prefixes allowed).

    >>> [parse_bool(t) for t in ("off", "ON", "t", "fals", "1", "yes", "o", "maybe")]
    [False, True, True, False, True, True, None, None]
    """
    value = text.strip().lower()
    if not value:
        return None
    for word, meaning in (("true", True), ("false", False), ("yes", True), ("no", False)):
        if word.startswith(value):
            return meaning
    if value == "on":
        return True
    if len(value) >= 2 and "off".startswith(value):
        return False
    return {"1": True, "0": False}.get(value)


def parse_reloptions(options: Iterable[str] | None) -> dict[str, str]:
    """``pg_class.reloptions`` (``{"name=value", ...}``) as a dict.

    >>> parse_reloptions(["autovacuum_enabled=off", "fillfactor=70"])
    {'autovacuum_enabled': 'off', 'fillfactor': '70'}
    """
    parsed: dict[str, str] = {}
    for option in options or ():
        name, _, value = option.partition("=")
        parsed[name.strip().lower()] = value.strip()
    return parsed


def _number(options: Mapping[str, str], name: str) -> float | None:
    raw = options.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def autovacuum_due(
    settings: AutovacuumSettings,
    reloptions: Mapping[str, str],
    *,
    reltuples: float,
    relpages: int,
    relallfrozen: int | None,
    n_dead_tup: int,
    n_ins_since_vacuum: int,
    n_mod_since_analyze: int,
    xid_age: int | None,
    mxid_age: int | None,
) -> AutovacuumVerdict:
    """Would autovacuum vacuum or analyze this table now? As ``relation_needs_vacanalyze()``
    in PostgreSQL's autovacuum.c decides it.

    Per-table settings (``autovacuum_*`` reloptions) override the server's. A table whose
    transaction-ID (or multixact) age passed its freeze max age is vacuumed whatever
    the settings say; otherwise nothing is due when autovacuum is off, for the server or
    the table. Vacuum is due when dead rows pass ``threshold + scale_factor * reltuples``
    (capped at ``autovacuum_vacuum_max_threshold`` from 18), or inserts since the last
    vacuum pass the insert threshold (13+; from 18 scaled by the unfrozen share of the
    table). ``reltuples`` is -1 before the first VACUUM or ANALYZE: counted as 0.

    >>> s = AutovacuumSettings(True, 50, 0.2, None, 1000, 0.2, 50, 0.1, 200_000_000,
    ...                        400_000_000)
    >>> v = autovacuum_due(s, {}, reltuples=1000, relpages=10, relallfrozen=None,
    ...                    n_dead_tup=251, n_ins_since_vacuum=0, n_mod_since_analyze=0,
    ...                    xid_age=10, mxid_age=1)
    >>> v.vacuum, v.vacuum_threshold, v.analyze
    ('dead rows', 250.0, False)
    """
    options = reloptions

    def pick(name: str, default: float, minimum: float = 0) -> float:
        value = _number(options, name)
        return value if value is not None and value >= minimum else default

    vac_base = pick("autovacuum_vacuum_threshold", settings.vacuum_threshold)
    vac_scale = pick("autovacuum_vacuum_scale_factor", settings.vacuum_scale_factor)
    vac_max = pick("autovacuum_vacuum_max_threshold", settings.vacuum_max_threshold or -1, -1)
    ins_base = pick("autovacuum_vacuum_insert_threshold", settings.insert_threshold, -1)
    ins_scale = pick("autovacuum_vacuum_insert_scale_factor", settings.insert_scale_factor)
    anl_base = pick("autovacuum_analyze_threshold", settings.analyze_threshold)
    anl_scale = pick("autovacuum_analyze_scale_factor", settings.analyze_scale_factor)
    freeze_max_age = settings.freeze_max_age
    own_freeze = _number(options, "autovacuum_freeze_max_age")
    if own_freeze is not None and own_freeze >= 0:
        freeze_max_age = min(int(own_freeze), freeze_max_age)
    multixact_max_age = settings.multixact_freeze_max_age
    own_multixact = _number(options, "autovacuum_multixact_freeze_max_age")
    if own_multixact is not None and own_multixact >= 0:
        multixact_max_age = min(int(own_multixact), multixact_max_age)
    enabled_text = options.get("autovacuum_enabled")
    enabled = True if enabled_text is None else parse_bool(enabled_text) is not False

    tuples = max(reltuples, 0.0)
    unfrozen = 1.0
    if relallfrozen is not None and relpages > 0 and relallfrozen > 0:
        unfrozen = 1.0 - min(relallfrozen, relpages) / relpages
    vac_threshold = vac_base + vac_scale * tuples
    if vac_max >= 0 and vac_threshold > vac_max:
        vac_threshold = vac_max
    ins_threshold = ins_base + ins_scale * tuples * unfrozen if ins_base >= 0 else None
    anl_threshold = anl_base + anl_scale * tuples

    wraparound = (xid_age is not None and xid_age > freeze_max_age) or (
        mxid_age is not None and mxid_age > multixact_max_age
    )
    reason = ""
    analyze = False
    if wraparound:
        reason = "wraparound"
    if enabled and settings.active:
        if not reason and n_dead_tup > vac_threshold:
            reason = "dead rows"
        if not reason and ins_threshold is not None and n_ins_since_vacuum > ins_threshold:
            reason = "inserts"
        analyze = n_mod_since_analyze > anl_threshold
    return AutovacuumVerdict(
        vacuum=reason,
        analyze=analyze,
        enabled=enabled,
        vacuum_threshold=vac_threshold,
        insert_threshold=ins_threshold,
        analyze_threshold=anl_threshold,
        freeze_max_age=freeze_max_age,
        multixact_freeze_max_age=multixact_max_age,
    )


_LOCATION = re.compile(r" :location -?\d+")


def normalize_node_tree(tree: str | None) -> str:
    """A stored expression (``pg_node_tree``) without its source positions.

    Two indexes on the same expression, created by different statements, store the
    offsets of the expression in each statement's text (PostgreSQL 18 stores -1).

    >>> normalize_node_tree("{VAR :varno 1 :location 30}") == normalize_node_tree(
    ...     "{VAR :varno 1 :location 77}")
    True
    """
    if not tree:
        return ""
    return _LOCATION.sub("", tree)


def index_signature(row: Mapping[str, Any]) -> tuple[object, ...]:
    """What two indexes must share to be duplicates: the table, the access method, the
    key columns (and INCLUDE columns), operator classes, collations, options (ASC/DESC,
    NULLS FIRST/LAST), expressions and predicate, and NULLS NOT DISTINCT."""
    return (
        row["table_oid"],
        row["method"],
        row["key_columns"],
        normalize_node_tree(row["exprs"]),
        normalize_node_tree(row["pred"]),
        bool(row["nulls_not_distinct"]),
    )


def _keep_rank(index: IndexInfo) -> tuple[bool, bool, bool, bool, int]:
    return (
        not index.is_valid,
        not index.is_primary,
        not index.enforces_constraint,
        not index.is_unique,
        index.oid,
    )


def find_duplicates(indexes: Iterable[IndexInfo]) -> dict[int, IndexInfo]:
    """Indexes that duplicate another, by oid, with the index to keep instead.

    In each group of indexes with the same signature, the one kept is valid rather than
    invalid, then a primary key, then one that enforces a constraint, then unique, then
    the oldest (lowest oid); every other member duplicates it.
    """
    groups: dict[tuple[object, ...], list[IndexInfo]] = {}
    for index in indexes:
        groups.setdefault(index.signature, []).append(index)
    duplicates: dict[int, IndexInfo] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        keep = min(members, key=_keep_rank)
        for member in members:
            if member is not keep:
                duplicates[member.oid] = keep
    return duplicates


def _affects_database(holder: HorizonHolder, database: str) -> bool:
    """Whether ``holder`` holds back vacuum in ``database``.

    Replication slots and standbys' feedback hold every database back; a session or a
    prepared transaction only its own (and the shared catalogs).
    """
    if holder.kind == "slot" or holder.backend_type == "walsender":
        return True
    return holder.database is None or holder.database == database


def horizon_order(holders: Iterable[HorizonHolder], database: str) -> tuple[HorizonHolder, ...]:
    """Holders of the xmin horizon in display order: those that hold back ``database``
    first; among them sessions idle in a transaction first (the usual culprit, and one
    that is safe to end), then the oldest first."""
    return tuple(
        sorted(
            holders,
            key=lambda h: (
                not _affects_database(h, database),
                not h.idle_in_transaction,
                -(h.age or 0),
            ),
        )
    )


def per_second(previous: int | None, current: int, elapsed: float | None) -> float | None:
    """A counter's rate between two reads; None without a usable previous read.

    >>> per_second(100, 150, 10.0), per_second(None, 5, 10.0), per_second(9, 3, 10.0)
    (5.0, None, None)
    """
    if previous is None or elapsed is None or elapsed <= 0 or current < previous:
        return None
    return (current - previous) / elapsed


def top_by(rows: Iterable[tuple[int, int]], count: int) -> list[int]:
    """The keys of the ``count`` largest ``(key, value)`` pairs, largest first.

    >>> top_by([(1, 5), (2, 9), (3, 7)], 2)
    [2, 3]
    """
    return [key for key, _ in heapq.nsmallest(count, rows, key=lambda kv: (-kv[1], kv[0]))]


def tables_pages(names: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Pages of every relation that rows of the TABLES query count: the tables, their
    TOAST tables and indexes.

    >>> tables_pages(["oid", "heap_pages", "toast_pages", "index_pages"], [(1, 5, 2, 1)])
    8
    """
    heap, toast, index = (names.index(n) for n in ("heap_pages", "toast_pages", "index_pages"))
    return sum(row[heap] + row[toast] + row[index] for row in rows)


Relation = TypeVar("Relation", TableInfo, VacuumTable, IndexInfo)


def relocked(item: Relation, locked: Container[int]) -> Relation:
    """``item`` with its ``locked`` flag as ``locked`` has it: the same object if right."""
    is_locked = item.oid in locked
    return item if item.locked == is_locked else replace(item, locked=is_locked)
