"""The decisions of the catalog tabs, without a server: autovacuum thresholds, xid age
shares, duplicate and unused indexes, the order of xmin horizon holders, vacuum progress."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import pytest

from pgtop.collectors.catalog import (
    WRAPAROUND_LIMIT,
    AutovacuumSettings,
    EveryNth,
    HorizonHolder,
    IndexInfo,
    VacuumProgress,
    autovacuum_due,
    find_duplicates,
    horizon_order,
    index_signature,
    normalize_node_tree,
    parse_bool,
    parse_reloptions,
    per_second,
    top_by,
    vacuum_percent,
    xid_share,
)

PG17 = AutovacuumSettings(
    active=True,
    vacuum_threshold=50,
    vacuum_scale_factor=0.2,
    vacuum_max_threshold=None,
    insert_threshold=1000,
    insert_scale_factor=0.2,
    analyze_threshold=50,
    analyze_scale_factor=0.1,
    freeze_max_age=200_000_000,
    multixact_freeze_max_age=400_000_000,
)
PG18 = replace(PG17, vacuum_max_threshold=100_000_000)


def due(
    settings: AutovacuumSettings = PG17,
    options: dict[str, str] | None = None,
    **stats: Any,
) -> Any:
    values: dict[str, Any] = {
        "reltuples": 1000.0,
        "relpages": 100,
        "relallfrozen": None,
        "n_dead_tup": 0,
        "n_ins_since_vacuum": 0,
        "n_mod_since_analyze": 0,
        "xid_age": 1000,
        "mxid_age": 10,
    }
    values.update(stats)
    return autovacuum_due(settings, options or {}, **values)


# -- autovacuum ------------------------------------------------------------------------------


def test_dead_rows_must_pass_threshold_plus_scale_factor_times_reltuples() -> None:
    # 50 + 0.2 * 1000 = 250: autovacuum wants strictly more
    assert due(n_dead_tup=250).vacuum == ""
    verdict = due(n_dead_tup=251)
    assert verdict.vacuum == "dead rows"
    assert verdict.vacuum_threshold == 250
    assert verdict.due


def test_table_settings_override_the_servers() -> None:
    options = {"autovacuum_vacuum_threshold": "10", "autovacuum_vacuum_scale_factor": "0.01"}
    verdict = due(options=options, n_dead_tup=21)
    assert verdict.vacuum_threshold == 20
    assert verdict.vacuum == "dead rows"
    assert due(options=options, n_dead_tup=20).vacuum == ""


def test_autovacuum_off_for_the_table_means_nothing_is_due_but_wraparound() -> None:
    options = {"autovacuum_enabled": "off"}
    off = due(options=options, n_dead_tup=1_000_000, n_mod_since_analyze=1_000_000)
    assert (off.vacuum, off.analyze, off.enabled) == ("", False, False)
    forced = due(options=options, xid_age=200_000_001)
    assert forced.vacuum == "wraparound"


def test_autovacuum_off_for_the_server_leaves_only_wraparound_vacuums() -> None:
    server_off = replace(PG17, active=False)
    assert due(server_off, n_dead_tup=1_000_000).vacuum == ""
    assert due(server_off, mxid_age=400_000_001).vacuum == "wraparound"


def test_a_table_freeze_max_age_can_only_lower_the_servers() -> None:
    lower = {"autovacuum_freeze_max_age": "100000"}
    verdict = due(options=lower, xid_age=150_000)
    assert (verdict.vacuum, verdict.freeze_max_age) == ("wraparound", 100_000)
    higher = {"autovacuum_freeze_max_age": "1000000000"}
    assert due(options=higher, xid_age=300_000_000).freeze_max_age == 200_000_000


def test_inserts_since_the_last_vacuum_make_a_table_due() -> None:
    # 1000 + 0.2 * 1000 = 1200
    assert due(n_ins_since_vacuum=1200).vacuum == ""
    verdict = due(n_ins_since_vacuum=1201)
    assert (verdict.vacuum, verdict.insert_threshold) == ("inserts", 1200)


def test_an_insert_threshold_of_minus_one_disables_insert_vacuums() -> None:
    verdict = due(options={"autovacuum_vacuum_insert_threshold": "-1"}, n_ins_since_vacuum=10**9)
    assert (verdict.vacuum, verdict.insert_threshold) == ("", None)


def test_from_18_the_insert_threshold_scales_with_the_unfrozen_share() -> None:
    # 90 of 100 pages all-frozen: 1000 + 0.2 * 1000 * 0.1 = 1020
    verdict = due(PG18, relallfrozen=90, n_ins_since_vacuum=1021)
    assert verdict.insert_threshold == pytest.approx(1020)
    assert verdict.vacuum == "inserts"
    # before 18 (relallfrozen unknown) the whole table counts
    assert due(PG17, relallfrozen=None, n_ins_since_vacuum=1021).vacuum == ""


def test_from_18_the_dead_row_threshold_is_capped() -> None:
    big: dict[str, Any] = {"reltuples": 10_000_000_000.0, "n_dead_tup": 100_000_001}
    assert due(PG18, **big).vacuum == "dead rows"
    assert due(PG18, **big).vacuum_threshold == 100_000_000
    assert due(PG17, **big).vacuum == "", "no cap before 18: 2e9 dead rows needed"
    uncapped = due(PG18, options={"autovacuum_vacuum_max_threshold": "-1"}, **big)
    assert uncapped.vacuum == ""


def test_a_never_vacuumed_table_counts_as_empty() -> None:
    verdict = due(reltuples=-1.0, n_dead_tup=51)
    assert verdict.vacuum_threshold == 50
    assert verdict.vacuum == "dead rows"


def test_analyze_is_due_after_enough_changes() -> None:
    # 50 + 0.1 * 1000 = 150
    assert not due(n_mod_since_analyze=150).analyze
    assert due(n_mod_since_analyze=151).analyze
    assert due(options={"autovacuum_analyze_threshold": "0"}, n_mod_since_analyze=101).analyze


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("off", False),
        ("OFF", False),
        ("of", False),
        ("on", True),
        ("true", True),
        ("t", True),
        ("false", False),
        ("no", False),
        ("yes", True),
        ("1", True),
        ("0", False),
        ("o", None),
        ("", None),
        ("banana", None),
    ],
)
def test_booleans_are_read_as_postgresql_reads_them(text: str, expected: bool | None) -> None:
    assert parse_bool(text) is expected


def test_reloptions_are_parsed_to_a_dict() -> None:
    assert parse_reloptions(None) == {}
    assert parse_reloptions(["autovacuum_enabled=false", "fillfactor=90"]) == {
        "autovacuum_enabled": "false",
        "fillfactor": "90",
    }


def test_xid_age_shares() -> None:
    assert xid_share(100_000_000, PG17.freeze_max_age) == 0.5
    assert xid_share(WRAPAROUND_LIMIT // 4, WRAPAROUND_LIMIT) == 0.25
    assert xid_share(None, WRAPAROUND_LIMIT) is None


# -- indexes ---------------------------------------------------------------------------------


def index(oid: int, name: str, **fields: Any) -> IndexInfo:
    signature_fields: dict[str, Any] = {
        "table_oid": 100,
        "method": "btree",
        "key_count": 1,
        "indkey": "2",
        "indclass": "3126",
        "indcollation": "100",
        "indoption": "0",
        "exprs": None,
        "pred": None,
        "nulls_not_distinct": False,
    }
    for key in list(fields):
        if key in signature_fields:
            signature_fields[key] = fields.pop(key)
    keys = " / ".join(
        str(signature_fields[part])
        for part in ("key_count", "indkey", "indclass", "indcollation", "indoption")
    )
    signature_fields["key_columns"] = keys
    values: dict[str, Any] = {
        "oid": oid,
        "schema": "public",
        "table": "orders",
        "table_oid": signature_fields["table_oid"],
        "name": name,
        "method": signature_fields["method"],
        "index_bytes": 8192,
        "size_is_estimate": False,
        "locked": False,
        "idx_scan": 5,
        "idx_tup_read": 5,
        "idx_tup_fetch": 5,
        "last_idx_scan": None,
        "is_unique": False,
        "is_primary": False,
        "is_exclusion": False,
        "backs_constraint": False,
        "is_valid": True,
        "is_ready": True,
        "signature": index_signature(signature_fields),
    }
    values.update(fields)
    return IndexInfo(**values)


def test_same_columns_on_the_same_table_are_duplicates_of_the_oldest() -> None:
    a, b, c = index(10, "a"), index(11, "b"), index(12, "c")
    found = find_duplicates([c, a, b])
    assert {oid: kept.name for oid, kept in found.items()} == {11: "a", 12: "a"}


def test_the_index_kept_is_the_one_that_enforces_something() -> None:
    plain = index(10, "orders_email_idx")
    unique = index(20, "orders_email_key", is_unique=True, backs_constraint=True)
    found = find_duplicates([plain, unique])
    assert found[10].name == "orders_email_key"
    primary = index(30, "orders_pkey", is_unique=True, is_primary=True, backs_constraint=True)
    found = find_duplicates([plain, unique, primary])
    assert {oid: kept.name for oid, kept in found.items()} == {
        10: "orders_pkey",
        20: "orders_pkey",
    }


def test_an_invalid_index_is_never_the_one_kept() -> None:
    leftover = index(10, "orders_email_idx_ccnew", is_valid=False)
    valid = index(20, "orders_email_idx")
    assert find_duplicates([leftover, valid])[10].name == "orders_email_idx"


@pytest.mark.parametrize(
    "difference",
    [
        {"table_oid": 101},
        {"indkey": "3"},
        {"indkey": "2 3"},
        {"key_count": 2, "indkey": "2 3"},
        {"indclass": "10043"},
        {"indcollation": "950"},
        {"indoption": "3"},
        {"method": "hash"},
        {"pred": "{OPEXPR :opno 521 :location 40}"},
        {"nulls_not_distinct": True},
    ],
    ids=lambda d: ",".join(d),
)
def test_indexes_that_differ_in_any_part_of_their_key_are_not_duplicates(
    difference: dict[str, Any],
) -> None:
    assert find_duplicates([index(10, "a"), index(11, "b", **difference)]) == {}


def test_expressions_match_whatever_their_position_in_the_statement() -> None:
    expr = "({FUNCEXPR :funcid 870 :args ({VAR :varattno 2 :location %d}) :location %d})"
    a = index(10, "a", indkey="0", exprs=expr % (30, 24))
    b = index(11, "b", indkey="0", exprs=expr % (77, 71))
    other = index(12, "c", indkey="0", exprs=expr.replace("870", "871") % (30, 24))
    assert set(find_duplicates([a, b, other])) == {11}
    assert normalize_node_tree(None) == normalize_node_tree("") == ""


def test_unused_means_no_scans_and_no_constraint() -> None:
    assert index(1, "a", idx_scan=0).unused
    assert not index(1, "a", idx_scan=1).unused
    for enforcing in (
        {"is_unique": True},
        {"is_primary": True, "is_unique": True},
        {"is_exclusion": True},
        {"backs_constraint": True},
    ):
        assert not index(1, "a", idx_scan=0, **enforcing).unused, enforcing
    assert index(1, "a", is_valid=False).invalid


# -- the xmin horizon ------------------------------------------------------------------------


def holder(kind: str, ident: str, age: int, **fields: Any) -> HorizonHolder:
    values: dict[str, Any] = {
        "pid": int(ident) if kind == "session" else None,
        "database": "shop",
        "user": "app",
        "application_name": "",
        "backend_type": "client backend" if kind == "session" else "",
        "state": "active",
        "since": None,
        "state_change": None,
        "xid": None,
        "xmin": "1000",
        "catalog_xmin": None,
        "detail": "",
    }
    values.update(fields)
    return HorizonHolder(kind=kind, ident=ident, age=age, **values)


def test_sessions_idle_in_transaction_come_first_then_the_oldest() -> None:
    holders = [
        holder("session", "1", 900),
        holder("slot", "replica", 5000, database=None),
        holder("session", "2", 10, state="idle in transaction"),
        holder("prepared", "tx-7", 700, state="prepared"),
        holder("session", "3", 20, state="idle in transaction (aborted)"),
        holder("session", "4", 99_999, database="other"),
    ]
    order = [h.ident for h in horizon_order(holders, "shop")]
    assert order == ["3", "2", "replica", "1", "tx-7", "4"]


def test_standby_feedback_holds_back_every_database() -> None:
    walsender = holder("session", "5", 50, backend_type="walsender", database=None)
    other = holder("session", "6", 500, database="other")
    assert [h.ident for h in horizon_order([other, walsender], "shop")] == ["5", "6"]


# -- vacuum progress -------------------------------------------------------------------------


def progress(phase: str, **fields: Any) -> VacuumProgress:
    values: dict[str, Any] = {
        "pid": 1,
        "database": "shop",
        "relid": 100,
        "relation": "orders",
        "command": "autovacuum",
        "phase": phase,
        "heap_blks_total": 200,
        "heap_blks_scanned": 50,
        "heap_blks_vacuumed": 20,
        "index_vacuum_count": 0,
        "max_dead_tuples": None,
        "num_dead_tuples": None,
        "max_dead_tuple_bytes": None,
        "dead_tuple_bytes": None,
        "num_dead_item_ids": None,
        "indexes_total": None,
        "indexes_processed": None,
        "started": datetime(2026, 1, 1, tzinfo=timezone.utc),
    }
    values.update(fields)
    return VacuumProgress(**values)


def test_progress_of_each_phase() -> None:
    assert vacuum_percent(progress("scanning heap")) == 25
    assert vacuum_percent(progress("vacuuming heap")) == 10
    assert vacuum_percent(progress("seq scanning heap", command="VACUUM FULL")) == 25
    assert vacuum_percent(progress("vacuuming indexes")) is None
    assert vacuum_percent(progress("vacuuming indexes", indexes_total=4, indexes_processed=1)) == 25
    assert vacuum_percent(progress("scanning heap", heap_blks_total=0)) is None
    assert vacuum_percent(progress("initializing")) is None


def test_dead_item_store_before_and_after_17() -> None:
    old = progress("scanning heap", max_dead_tuples=1000, num_dead_tuples=250)
    assert (old.dead_items, old.dead_store_fill) == (250, 0.25)
    new = progress(
        "scanning heap", max_dead_tuple_bytes=4096, dead_tuple_bytes=1024, num_dead_item_ids=77
    )
    assert (new.dead_items, new.dead_store_fill) == (77, 0.25)
    assert progress("scanning heap").dead_store_fill is None


# -- small helpers ---------------------------------------------------------------------------


def test_rates_need_a_previous_read_and_a_counter_that_did_not_go_back() -> None:
    assert per_second(100, 160, 30.0) == 2.0
    assert per_second(None, 160, 30.0) is None
    assert per_second(200, 100, 30.0) is None
    assert per_second(100, 160, 0.0) is None


def test_largest_estimates_are_sized_first() -> None:
    assert top_by([(1, 10), (2, 30), (3, 20), (4, 30)], 3) == [2, 4, 3]


def test_a_slow_read_is_reused_on_the_refreshes_between_two_reads() -> None:
    kept: EveryNth[str] = EveryNth(every=3)
    assert kept.reuse("app") is None, "nothing read yet"
    kept.keep("app", "first")
    assert [kept.reuse("app"), kept.reuse("app"), kept.reuse("app")] == ["first", "first", None]
    kept.keep("app", "second")
    assert kept.reuse("app") == "second"
    kept.update("app", "worked out")
    assert kept.reuse("app") == "worked out"
    assert kept.reuse("app") is None, "working the value out again does not delay the read"
    kept.keep("app", "third")
    assert kept.reuse("shop") is None, "another database is read at once"
    kept.keep("app", "fourth")
    kept.update("shop", "not this one")
    kept.expire()
    assert kept.reuse("app") is None, "expired: read on the next refresh"
