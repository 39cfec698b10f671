"""Recordings made of canned data, and checks that what reads back from a recording is
exactly what was read."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import fields, is_dataclass, replace
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from canned import NOW, backend, incident_snapshot

from pgtop.collectors.locks import LocksData
from pgtop.model import ActivitySnapshot
from pgtop.recording.codec import Decoder, Encoder, TypeTable, pgtop_types
from pgtop.recording.store import Writer, open_for_append


def same(a: object, b: object, where: str = "value") -> None:
    """``b`` is ``a``: same types all the way down, same values (NaN is NaN), same order,
    same time zones and folds."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} became {type(b).__name__}"
    if isinstance(a, Decimal):
        assert str(a) == str(b), where
    elif isinstance(a, float):
        assert isinstance(b, float)
        assert (math.isnan(a) and math.isnan(b)) or (a == b and str(a) == str(b)), where
    elif isinstance(a, datetime | time):
        assert isinstance(b, datetime | time)
        assert a == b, where
        assert a.fold == b.fold, f"{where}: fold"
        assert type(a.tzinfo) is type(b.tzinfo), f"{where}: zone"
        assert a.tzinfo == b.tzinfo or str(a.tzinfo) == str(b.tzinfo), f"{where}: zone"
        assert a.isoformat() == b.isoformat(), where
    elif isinstance(a, dict):
        assert isinstance(b, dict)
        assert list(a) == list(b), f"{where}: keys or their order"
        for key in a:
            same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, tuple | list):
        assert isinstance(b, tuple | list)
        assert len(a) == len(b), where
        for n, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{n}]")
    elif is_dataclass(a) and not isinstance(a, type):
        for f in fields(a):
            same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    else:
        assert a == b, where


def round_trip(
    value: object, allowed: Callable[[str], type | None] = pgtop_types
) -> tuple[object, int]:
    """``value`` written and read back, and how many chunks it took."""
    types = TypeTable()
    encoder = Encoder(types)
    node = encoder.encode(value)
    chunks = encoder.take_new()
    decoder = Decoder(dict(enumerate(types.kinds)), allowed)
    decoder.extend(chunks)
    return decoder.value(node), len(chunks)


def at(seconds: float, pids: tuple[int, ...] = ()) -> ActivitySnapshot:
    """The incident snapshot ``seconds`` after NOW, with sessions ``pids`` added."""
    base = incident_snapshot()
    counters = replace(base.counters, collected_at=NOW + timedelta(seconds=seconds))
    return replace(base, counters=counters, backends=base.backends + tuple(map(backend, pids)))


def write(
    path: Path, readings: list[tuple[ActivitySnapshot, dict[str, object]]], **kw: float
) -> Writer:
    """A recording of ``readings`` (each an Activity snapshot and the tabs read with it)."""
    db = open_for_append(path)
    writer = Writer(db, {"server": "app@db:5432/shop", "refresh": "1"}, **kw)
    for activity, tabs in readings:
        assert writer.add(activity, tabs) == []
    db.close()
    return writer


def canned_recording(path: Path) -> Path:
    """40 readings of the canned incident a second apart from NOW, keyframes every 10 s;
    Locks read at 0-19, a session 5000 from 10 s on; a gap between 29 and 30."""
    db = open_for_append(path)
    writer = Writer(db, {"server": "app@db:5432/shop", "refresh": "1"}, keyframe_seconds=10)
    for second in range(40):
        activity = at(second, (5000,) if second >= 10 else ())
        tabs: dict[str, object] = {"locks": LocksData(activity, ())} if second < 20 else {}
        if second == 30:
            writer.lost("connection lost: the server restarted")
        assert writer.add(activity, tabs) == []
    db.close()
    return path
