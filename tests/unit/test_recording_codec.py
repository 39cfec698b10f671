"""The recording codec: every frozen snapshot reads back exactly, and nothing in a file can
make it build anything but pgtop's own data or run code."""

from __future__ import annotations

import ipaddress
import math
import sys
import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest
from canned import NOW, backend, incident_snapshot
from recorded import round_trip, same

from pgtop.collectors.catalog import AutovacuumVerdict, CatalogHeader, IndexesData, IndexInfo
from pgtop.collectors.locks import LocksData, LockWait
from pgtop.collectors.statements import (
    COUNTER_FIELDS,
    Counters,
    Mode,
    Reading,
    Statement,
    StatementsSnapshot,
    StatementsUnavailable,
)
from pgtop.recording.codec import (
    PIECE_CUT,
    PIECE_MAX,
    CodecError,
    Decoder,
    Encoder,
    Kind,
    TypeTable,
    dumps,
    pgtop_types,
)

# -- test-only kinds (allowed explicitly: the default allows pgtop's own only) -------------------


class Colour(Enum):
    RED = "red"
    BLUE = ("blue", 2)


class Level(IntEnum):
    LOW = 1
    HIGH = 2


class Pair(NamedTuple):
    left: object
    right: object = None


@dataclass(frozen=True, slots=True)
class Base:
    name: str
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Derived(Base):
    inner: Pair | None = None
    colour: Colour = Colour.RED
    extra: tuple[object, ...] = field(default=(), kw_only=True)


@dataclass(frozen=True)
class Guarded:
    """Its construction would fail: reading never constructs."""

    value: int

    def __post_init__(self) -> None:
        raise AssertionError("__post_init__ ran while reading")


def here(name: str) -> type | None:
    found = vars(sys.modules[__name__]).get(name.partition(":")[2])
    return found if isinstance(found, type) else None


EDGES: list[object] = [
    None,
    True,
    False,
    0,
    -(2**80),
    (True, 1, 1.0, "1"),
    0.1,
    -0.0,
    math.inf,
    -math.inf,
    math.nan,
    "",
    "x" * 65,
    "a lone surrogate \udc80 and \ud800, a NUL \x00, 日本語 😀 e\u0301, \u202e",
    '[bold]not markup[/] ${x} \\u0041 "quoted"',
    (),
    ((),),
    [1, [2, (3,)]],
    {"a": 1, 2: "b", (3, None): [4], None: frozenset({5})},
    {"z": 1, "a": 2},
    frozenset({1, "1", (1,), frozenset({2})}),
    frozenset(range(20)),
    {1, 2, 3},
    set(),
    datetime(2026, 11, 26, 9, 30, 0, 123456),
    datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc),
    datetime(2026, 11, 26, 9, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2026, 11, 26, 9, 30, tzinfo=timezone(timedelta(hours=-3), "BRT")),
    datetime(2026, 11, 26, 9, 30, tzinfo=ZoneInfo("Europe/Paris")),
    datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Paris")),
    datetime(2026, 10, 25, 2, 30, fold=0, tzinfo=ZoneInfo("Europe/Paris")),
    datetime.min,
    datetime.max.replace(tzinfo=ZoneInfo("Etc/UTC")),
    date(2026, 2, 28),
    time(23, 59, 59, 999999),
    time(1, 2, tzinfo=timezone.utc),
    timedelta(days=-3, seconds=5, microseconds=7),
    Decimal("12.3400"),
    Decimal("NaN"),
    b"\x00\xff bytes",
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    ipaddress.ip_address("10.0.0.7"),
    ipaddress.ip_address("::1"),
    ipaddress.ip_interface("10.0.0.7/24"),
    ipaddress.ip_network("fe80::/64"),
    Colour.BLUE,
    Level.HIGH,
    Pair(1),
    Pair(Pair("a", Level.LOW), [Colour.RED]),
    Derived("d", frozenset({"x", "y"}), Pair(1.5, None), Colour.BLUE, extra=(1, "2", None)),
    Base("b"),
]


@pytest.mark.parametrize(
    "value", EDGES, ids=[f"{type(v).__name__}-{n}" for n, v in enumerate(EDGES)]
)
def test_every_kind_of_value_reads_back_exactly(value: object) -> None:
    back, _ = round_trip(value, here)
    same(value, back)


def counters(**values: Any) -> Counters:
    base: dict[str, Any] = dict.fromkeys(COUNTER_FIELDS, None)
    base.update(calls=3, exec_ms=1.5, rows=3)
    base.update(values)
    return Counters(**base)


def test_pgtops_snapshots_read_back_exactly() -> None:
    """Each kind a tab's collector returns (the catalog tabs' are read from a real server in
    the integration tests): data classes with slots, inherited and keyword-only fields,
    named tuples, dicts keyed by tuples, enums, frozensets, zoned times."""
    activity = incident_snapshot()
    paris = replace(
        activity.backends[0],
        backend_start=datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Paris")),
    )
    activity = replace(activity, backends=(paris, *activity.backends[1:]))
    wait = LockWait(
        4102, "transactionid", "ShareLock", None, None, None, "7781", None, None, None, None, NOW
    )
    statement = Statement(10, 16384, True, 101, "app", "shop", counters(), stats_since=NOW)
    hidden = Statement(
        11, 16384, None, None, None, None, counters(wal_bytes=Decimal(12)), entries=4
    )
    reading = Reading(NOW, {statement.key: statement, hidden.key: hidden}, 3, NOW)
    header = CatalogHeader("shop", NOW, 8192, 10**9, 27, None, listed_at=NOW)
    index = IndexInfo(
        1, "public", "orders", 2, "orders_idx", "btree", 8192, True, False, 0, 0, 0, None,
        False, False, False, False, True, True, ("orders", (1, 2), None), duplicate_of="x",
    )  # fmt: skip
    values: list[object] = [
        activity,
        LocksData(activity, (wait,)),
        StatementsSnapshot(
            reading,
            reading,
            {101: "SELECT 1", 7: "x" * 5000},
            "1.10",
            150018,
            "shop",
            "postgres",
            True,
        ),
        StatementsUnavailable("no extension", "CREATE EXTENSION pg_stat_statements", recheck=True),
        IndexesData(header, (index,), sizes_problem="locked"),
        AutovacuumVerdict("dead rows", False, True, 50.0, None, 50.0, 200_000_000, 400_000_000),
        Mode.LIFETIME,
    ]
    for value in values:
        back, _ = round_trip(value)
        same(value, back, type(value).__name__)


def test_the_same_object_is_the_same_chunk_and_reads_back_as_one_object() -> None:
    activity = incident_snapshot()
    types = TypeTable()
    encoder = Encoder(types)
    first = encoder.encode(activity)
    chunks = encoder.take_new()
    # A second poll of an idle server: the same sessions, new counters.
    later = replace(activity, counters=replace(activity.counters, xact_total=999), tps=1.0)
    second = encoder.encode(later)
    added = encoder.take_new()
    assert len(added) == 2, "only the snapshot and its counters are new"
    assert sum(map(len, added)) < sum(map(len, chunks)) / 5
    # A value equal to one written, though another object, is that chunk again.
    again = encoder.encode(replace(later, backends=tuple(list(later.backends))))
    assert again == second
    assert encoder.take_new() == []
    decoder = Decoder(dict(enumerate(types.kinds)))
    decoder.extend(chunks + added)
    a, b = decoder.value(first), decoder.value(second)
    assert a.backends is b.backends, "unchanged sessions are shared, as the collector shares them"
    same(later, b)


def test_thousands_of_sessions_are_written_in_pieces_and_a_change_is_a_few_chunks() -> None:
    sessions = [backend(pid) for pid in range(1, 3001)]
    activity = replace(incident_snapshot(), backends=tuple(sessions))
    types = TypeTable()
    encoder = Encoder(types)
    first = encoder.encode(activity)
    chunks = encoder.take_new()
    # One session changed, one ended, one began, as in a poll of a busy server.
    sessions[1500] = replace(sessions[1500], state="active", query="select 2")
    del sessions[700]
    sessions.insert(2200, backend(9000))
    later = replace(activity, backends=tuple(sessions))
    second = encoder.encode(later)
    added = encoder.take_new()
    # The two new sessions, the pieces holding the three changes, the list of pieces and
    # the snapshot: not the 3,000 references again (some 33,000 characters).
    assert len(added) <= 10, f"{len(added)} chunks for 3 changes"
    assert sum(map(len, added)) < 6_000
    decoder = Decoder(dict(enumerate(types.kinds)))
    decoder.extend(chunks + added)
    same(activity, decoder.value(first))
    same(later, decoder.value(second))
    # Pieces are found by their sessions' identities: equal sessions in another tuple are
    # the same chunks, and a list of them reads back as a list.
    assert encoder.encode(replace(later, backends=tuple(sessions))) == second
    assert encoder.take_new() == []
    listed, _ = round_trip(sessions)
    same(sessions, listed)
    # The same object all along, whose identity ends no piece: cut at PIECE_MAX items
    # all the same (the reader refuses a longer piece).
    one = next(session for session in sessions if id(session) % PIECE_CUT)
    repeated, _ = round_trip((one,) * 1000)
    same((one,) * 1000, repeated)


def test_a_long_list_holding_mutable_values_is_never_taken_for_the_same_by_identity() -> None:
    rows = [{"n": n} for n in range(400)]
    encoder = Encoder(TypeTable())
    before = encoder.encode(tuple(rows))
    rows[10]["n"] = -1  # the same dict, changed
    after = encoder.encode(tuple(rows))
    assert after != before
    decoder = Decoder({})
    decoder.extend(encoder.take_new())
    assert decoder.value(after)[10] == {"n": -1}


def test_a_new_keyframe_refers_to_nothing_before_it() -> None:
    encoder = Encoder(TypeTable())
    encoder.encode(incident_snapshot())
    encoder.take_new()
    encoder.reset()
    node = encoder.encode(incident_snapshot())
    assert node == ["r", encoder.count - 1]
    assert len(encoder.take_new()) == encoder.count


def test_a_value_no_recording_can_hold_is_refused_by_type() -> None:
    with pytest.raises(TypeError, match="cannot record a value of type"):
        Encoder(TypeTable()).encode(object())
    with pytest.raises(TypeError, match="cannot record"):
        Encoder(TypeTable()).encode({"conn": lambda: None})


# -- reading what someone else wrote ------------------------------------------------------------


def decode(node: object, chunks: list[str], kinds: dict[int, Kind] | None = None) -> object:
    decoder = Decoder(kinds or {})
    decoder.extend(chunks)
    return decoder.value(node)


@pytest.mark.parametrize(
    "name",
    [
        "builtins:eval",
        "os:system",
        "subprocess:Popen",
        "pickle:loads",
        "pgtop.cli:main",  # a function, not a class
        "pgtop.cli:UsageError",  # a class, but no data class
        "pgtop.model:ActivitySnapshot.__class__",
        "pgtop.model:__builtins__",
        "pgtop.model:_private",
        "pgtop.no_such_module:Thing",
        "pgtop.__main__:main",  # importing it would run pgtop: never imported
        "pgtop.collectors.activity:Backend",  # defined in pgtop.model, only imported there
        "pgtopx.model:Backend",
        "",
    ],
)
def test_only_pgtops_own_data_classes_are_ever_built(name: str) -> None:
    before = set(sys.modules)
    assert pgtop_types(name) is None
    with pytest.raises(CodecError):
        decode(["@", 0], [], {0: Kind(name, ())})
    assert set(sys.modules) == before, "reading imports nothing"


def test_reading_builds_objects_without_running_their_code() -> None:
    guarded = {0: Kind(f"{__name__}:Guarded", ("value",))}
    made = decode_object(["@", 0, 5], guarded)
    assert isinstance(made, Guarded)
    assert made.value == 5
    with pytest.raises(CodecError, match="not one"):
        decode_object(["n", 0, 5], guarded)  # a data class is no named tuple


def decode_object(node: object, kinds: dict[int, Kind]) -> object:
    decoder = Decoder(kinds, here)
    return decoder.value(node)


@pytest.mark.parametrize(
    ("node", "chunks"),
    [
        (["r", 0], []),
        (["r", 0], ['["t",["r",0]]']),  # a chunk that contains itself
        (["r", -1], ['"x"']),
        (["r", "0"], ['"x"']),
        (["?"], []),
        ([], []),
        ({"a": 1}, []),
        (["d", 1], []),
        (["T", 12], []),
        (["T", "not a time"], []),
        (["T", "2026-01-01T00:00:00", ["z", "../../etc/passwd"]], []),
        (["T", "2026-01-01T00:00:00", ["z", "No/Such_Zone"]], []),
        (["T", "2026-01-01T00:00:00", ["o", 10**12]], []),
        (["b", "!!!"], []),
        (["A", "9", "1.2.3.4"], []),
        (["@", 7], []),
        (["e", 0, "purple"], []),
        (["p", "d", ["t", 1]], []),  # pieces of a mapping
        (["p", "t", ["l", 1]], []),  # a list among the pieces of a tuple
        (["p", "l", 1], []),
        (["p", "t", ["r", 0], ["r", 0]], [dumps(["t", *range(PIECE_MAX + 1)])]),  # a bomb
    ],
)
def test_a_forged_or_damaged_encoding_is_a_codec_error(node: object, chunks: list[str]) -> None:
    decoder = Decoder({0: Kind(f"{__name__}:Colour", ())}, here)
    decoder.extend(chunks)
    with pytest.raises(CodecError):
        decoder.value(node)


@pytest.mark.parametrize("text", ["[" * 100_000, "not json", '["t",', "\ud800"])
def test_a_chunk_that_is_not_json_is_a_codec_error(text: str) -> None:
    with pytest.raises(CodecError):
        Decoder({}).extend([text])


def test_deep_nesting_is_a_codec_error_not_a_crash() -> None:
    node: object = 1
    for _ in range(50_000):
        node = ["t", node]
    with pytest.raises(CodecError, match="nested"):
        Decoder({}).value(node)


def test_a_field_added_by_a_newer_pgtop_takes_its_default_and_a_missing_one_fails() -> None:
    older = Kind(f"{__name__}:Derived", ("name", "inner"))
    made = decode_object(["@", 0, "n", None], {0: older})
    assert made == Derived("n")
    without_name = Kind(f"{__name__}:Derived", ("inner",))
    with pytest.raises(CodecError, match="without its field name"):
        decode_object(["@", 0, None], {0: without_name})


def test_an_unknown_kind_says_which() -> None:
    with pytest.raises(CodecError, match=r"pgtop\.collectors\.health:HealthData"):
        decode(["@", 0], [], {0: Kind("pgtop.collectors.health:HealthData", ())})
