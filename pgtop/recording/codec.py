"""Frozen snapshots to a stable text and back, exactly, without ever running code to read.

A value is written as JSON where every value that JSON cannot say by itself is a tagged
list (``["t", ...]`` a tuple, ``["T", "2026-11-26T09:30:00", ["z", "Etc/UTC"]]`` a datetime,
``["@", 3, ...]`` an instance of the data class numbered 3 in the recording's type table).
Strings go through ``json``'s ASCII escapes, so texts with bytes that did not decode (lone
surrogates, see ``pg._LenientText``) come back as they were.

Values are hash-consed into *chunks*: every data class instance, named tuple, long string
and container of more than a few items is written once, as its own JSON text, and referred
to by number (``["r", 12]``) wherever it appears again. Identical values therefore cost one
chunk, however often they are read: an idle session that did not change from one refresh to
the next is the same chunk, and so is a tuple of 500 such sessions. A long tuple or list is
written in pieces (``PIECES_FROM``): where a few of its items changed, only the pieces
holding them are new chunks. Numbers start again at each keyframe (``Encoder.reset``), so
that a keyframe and what follows it read alone.

Reading back builds only what the type table names and this process allows
(``pgtop_types``: data classes, named tuples and enums defined in pgtop's own modules),
field by field, without calling any of their code: a recording someone else made is data,
never code (which is why this is not pickle).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import importlib
import ipaddress
import json
import pkgutil
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from enum import Enum
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo

Node = Any
"""A JSON value: None, bool, int, float, str, or a tagged list."""

INLINE_TEXT = 64
"""Strings longer than this are chunks of their own (query texts repeat from one refresh to
the next, in rows that changed otherwise)."""
INLINE_ITEMS = 4
"""Containers of more items than this are chunks of their own."""
PIECES_FROM = 256
"""Tuples and lists of at least this many items are written in pieces (``["p", "t", ...]``:
the concatenation of the pieces its references name), so that a list of 5,000 sessions in
which a few changed is a few new pieces, not 5,000 references again."""
PIECE_CUT = 31
"""A piece ends after an item whose ``id`` is a multiple of this: where pieces end depends
on the items, not on their positions, so that an item added or taken out changes the piece
it is in, not every piece after it."""
PIECE_MAX = 256
"""A piece holds at most this many items: a reference in a list of pieces stands for that
many items at most, so that a forged recording cannot make a few references read back as
a huge list."""
_MUTABLE = frozenset({dict, list, set})

_ADDRESSES: dict[str, type] = {
    "4": ipaddress.IPv4Address,
    "6": ipaddress.IPv6Address,
    "4i": ipaddress.IPv4Interface,
    "6i": ipaddress.IPv6Interface,
    "4n": ipaddress.IPv4Network,
    "6n": ipaddress.IPv6Network,
}
_ADDRESS_KINDS = {cls: kind for kind, cls in _ADDRESSES.items()}


class CodecError(ValueError):
    """What was read is not a valid encoding (a damaged or forged recording)."""


def dumps(node: Node) -> str:
    """The one JSON text of ``node``: compact, ASCII only (lone surrogates escaped)."""
    return json.dumps(node, separators=(",", ":"), ensure_ascii=True, allow_nan=True)


def loads(text: str | bytes) -> Node:
    """``dumps`` read back.

    Raises:
        CodecError: it is not JSON (or nested beyond reason).
    """
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CodecError(f"not a valid encoding ({exc})") from None


# -- kinds of objects -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Kind:
    """A class whose instances are written field by field: a data class, a named tuple or
    an enum (whose one "field" is its value)."""

    name: str
    """``module:qualified.name``."""
    fields: tuple[str, ...]


def kind_of(cls: type) -> Kind:
    """How ``cls``'s instances are written (``fields`` in declaration order)."""
    name = f"{cls.__module__}:{cls.__qualname__}"
    if issubclass(cls, Enum):
        return Kind(name, ())
    if dataclasses.is_dataclass(cls):
        return Kind(name, tuple(f.name for f in dataclasses.fields(cls)))
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return Kind(name, tuple(cls._fields))
    raise TypeError(f"cannot record a value of type {name}")


@functools.cache
def load_data_modules() -> None:
    """Import every module whose classes a recording may hold: each collector's module
    loads with its tab's first collection, and a recording may hold tabs not shown yet."""
    import pgtop.collectors
    import pgtop.model

    for found in pkgutil.walk_packages(pgtop.collectors.__path__, "pgtop.collectors."):
        importlib.import_module(found.name)


def pgtop_types(name: str) -> type | None:
    """The class ``module:qualname`` names, if it is a data class, named tuple or enum
    defined in one of pgtop's modules already imported; None otherwise.

    No module the name gives is imported (pgtop's data modules are, all of them, by
    ``load_data_modules``) and no attribute hook runs: names are looked up in the modules'
    and classes' own dictionaries.
    """
    load_data_modules()
    module_name, _, qualname = name.partition(":")
    if module_name != "pgtop" and not module_name.startswith("pgtop."):
        return None
    found: Any = sys.modules.get(module_name)
    if found is None or not qualname:
        return None
    for part in qualname.split("."):
        if not part.isidentifier() or part.startswith("_"):
            return None
        found = vars(found).get(part)
        if found is None:
            return None
    if not isinstance(found, type) or found.__module__ != module_name:
        return None
    if found.__qualname__ != qualname:
        return None
    try:
        kind_of(found)
    except TypeError:
        return None
    return found


def _getter(cls: type, kind: Kind) -> Callable[[Any], Any] | None:
    """Reads a data class instance's fields (None for an enum, a named tuple or no field)."""
    if not kind.fields or issubclass(cls, tuple):
        return None
    return attrgetter(*kind.fields)


class TypeTable:
    """The kinds a recording uses, numbered in the order they first appear."""

    def __init__(self) -> None:
        self.kinds: list[Kind] = []
        self._numbers: dict[type, tuple[int, Callable[[Any], Any] | None]] = {}
        self._written = 0

    def number(self, cls: type) -> tuple[int, Callable[[Any], Any] | None]:
        """``cls``'s number, and a getter of its fields' values as a tuple (None for an
        enum)."""
        found = self._numbers.get(cls)
        if found is None:
            kind = kind_of(cls)
            found = self._numbers[cls] = (len(self.kinds), _getter(cls, kind))
            self.kinds.append(kind)
        return found

    def take_new(self) -> list[tuple[int, Kind]]:
        """Kinds numbered since the last call, to be written with the chunks using them."""
        new = list(enumerate(self.kinds))[self._written :]
        self._written = len(self.kinds)
        return new

    def restore(self, kinds: Iterable[Kind]) -> None:
        """Continue numbering after ``kinds`` (a recording appended to)."""
        self.kinds = list(kinds)
        self._numbers = {}
        self._written = len(self.kinds)
        for number, kind in enumerate(self.kinds):
            cls = pgtop_types(kind.name)
            if cls is not None and kind_of(cls) == kind:
                self._numbers[cls] = (number, _getter(cls, kind))


# -- writing ----------------------------------------------------------------------------------


def _tz(value: tzinfo) -> Node:
    if isinstance(value, ZoneInfo) and value.key is not None:
        return ["z", value.key]
    if isinstance(value, timezone):
        offset = value.utcoffset(None)
        name = value.tzname(None)
        micros = offset // timedelta(microseconds=1)
        return ["o", micros] if value is timezone.utc else ["o", micros, name]
    raise TypeError(f"cannot record a time zone of type {type(value).__name__}")


class Encoder:
    """Writes values as chunks: each distinct one once per keyframe.

    Snapshots are frozen, so an object seen before in this keyframe is the same chunk
    again, found by identity without being written again (an idle session's Backend is
    the same object from one poll to the next).
    """

    def __init__(self, types: TypeTable) -> None:
        self.types = types
        self._numbers: dict[str, int] = {}
        self._seen: dict[int, tuple[object, Node]] = {}
        self._pieces: dict[tuple[int, ...], tuple[object, Node]] = {}
        self._new: list[str] = []
        self.count = 0
        """Chunks since the keyframe."""

    def reset(self) -> None:
        """Start a keyframe: nothing written before is referred to again."""
        self._numbers.clear()
        self._seen.clear()
        self._pieces.clear()
        self._new.clear()
        self.count = 0

    def take_new(self) -> list[str]:
        """The JSON texts of the chunks made since the last call, in order."""
        new, self._new = self._new, []
        return new

    def _chunk(self, node: Node) -> Node:
        text = dumps(node)
        number = self._numbers.get(text)
        if number is None:
            number = self._numbers[text] = self.count
            self.count += 1
            self._new.append(text)
        return ["r", number]

    def encode(self, value: object) -> Node:
        """``value`` as a node (a reference where it is a chunk).

        Raises:
            TypeError: a value of a type no recording can hold.
        """
        cls = type(value)
        if value is None or cls is bool or cls is int or cls is float:
            return value
        if cls is str:
            assert isinstance(value, str)
            if len(value) <= INLINE_TEXT:
                return value
        elif cls is datetime:
            assert isinstance(value, datetime)
            return self._datetime(value)
        seen = self._seen.get(id(value))
        if seen is not None:
            return seen[1]
        node = self._encode(value, cls)
        if cls not in (dict, list, set):  # mutable: never taken for the same by identity
            self._seen[id(value)] = (value, node)
        return node

    def _datetime(self, value: datetime) -> Node:
        wall = value.replace(tzinfo=None, fold=0).isoformat()
        if value.tzinfo is None:
            return ["T", wall] if not value.fold else ["T", wall, None, 1]
        node = ["T", wall, _tz(value.tzinfo)]
        if value.fold:
            node.append(1)
        return node

    def _items(self, tag: str, items: Iterable[object], size: int) -> Node:
        # Thousands of sessions on every poll, nearly all seen before: their nodes are
        # looked up here (``encode`` would find them in ``_seen`` too, after its tests of
        # the types it never keeps there).
        seen = self._seen.get
        encode = self.encode
        node: list[Node] = [tag]
        append = node.append
        for item in items:
            known = seen(id(item))
            append(known[1] if known is not None else encode(item))
        return self._chunk(node) if size > INLINE_ITEMS else node

    def _in_pieces(self, tag: str, items: tuple[Any, ...] | list[Any]) -> Node:
        # A piece of the same objects as one written before in this keyframe is that chunk
        # again: found by their identities, without looking at them. The entry keeps them
        # alive, so that their identities stay theirs; none of them is mutable.
        ids = list(map(id, items))
        ends = [end for end, ident in enumerate(ids, 1) if not ident % PIECE_CUT]
        if not ends or ends[-1] != len(ids):
            ends.append(len(ids))
        pieces = self._pieces
        joined: list[Node] = ["p", tag]
        start = 0
        for end in ends:
            while start < end:
                stop = min(end, start + PIECE_MAX)
                key = tuple(ids[start:stop])
                found = pieces.get(key)
                if found is None:
                    piece = items[start:stop]
                    found = pieces[key] = (piece, self._items(tag, piece, PIECES_FROM))
                joined.append(found[1])
                start = stop
        return self._chunk(joined)

    def _encode(self, value: Any, cls: type) -> Node:
        if cls is str:
            return self._chunk(value)
        if cls is tuple or cls is list:
            tag = "t" if cls is tuple else "l"
            if len(value) >= PIECES_FROM and _MUTABLE.isdisjoint(map(type, value)):
                return self._in_pieces(tag, value)
            return self._items(tag, value, len(value))
        if cls is frozenset or cls is set:
            ordered = sorted((self.encode(item) for item in value), key=dumps)
            node = ["f" if cls is frozenset else "s", *ordered]
            return self._chunk(node) if len(value) > INLINE_ITEMS else node
        if cls is dict:
            flat: list[Node] = ["d"]
            for key, item in value.items():
                flat.append(self.encode(key))
                flat.append(self.encode(item))
            return self._chunk(flat) if len(value) > INLINE_ITEMS else flat
        simple = self._simple(value, cls)
        if simple is not None:
            return simple
        number, getter = self.types.number(cls)
        if issubclass(cls, Enum):
            return ["e", number, self.encode(value.value)]
        if issubclass(cls, tuple):
            return self._chunk(["n", number, *(self.encode(item) for item in value)])
        values = getter(value) if getter is not None else ()
        if getter is not None and len(self.types.kinds[number].fields) == 1:
            values = (values,)
        return self._chunk(["@", number, *(self.encode(item) for item in values)])

    def _simple(self, value: Any, cls: type) -> Node | None:
        """Values of the standard library's other immutable types, or None."""
        if cls is date:
            return ["D", value.isoformat()]
        if cls is time:
            wall = value.replace(tzinfo=None, fold=0).isoformat()
            node = ["H", wall] if value.tzinfo is None else ["H", wall, _tz(value.tzinfo)]
            return node if not value.fold else [*node, *([None] if len(node) == 2 else []), 1]
        if cls is timedelta:
            return ["I", value.days, value.seconds, value.microseconds]
        if cls is Decimal:
            return ["N", str(value)]
        if cls is bytes:
            return ["b", base64.b64encode(value).decode("ascii")]
        if cls is uuid.UUID:
            return ["U", value.hex]
        kind = _ADDRESS_KINDS.get(cls)
        if kind is not None:
            return ["A", kind, str(value)]
        if isinstance(value, tzinfo):
            return ["Z", _tz(value)]
        return None


# -- reading ----------------------------------------------------------------------------------

_BUSY = object()
"""Marks a chunk being built: a chunk that refers to itself is a forgery."""


class Decoder:
    """Reads back what an ``Encoder`` wrote, chunk by chunk as they come.

    Args:
        kinds: the recording's type table.
        allowed: the class of a kind's name, or None when it may not be built.
    """

    def __init__(
        self,
        kinds: Mapping[int, Kind],
        allowed: Callable[[str], type | None] = pgtop_types,
    ) -> None:
        self.kinds = kinds
        self._allowed = allowed
        self._classes: dict[int, tuple[type, tuple[tuple[str, int, object], ...]]] = {}
        self.chunks: list[Node] = []
        self._made: dict[int, object] = {}

    def extend(self, chunks: Iterable[str]) -> None:
        """Chunks written after those already known (their JSON texts)."""
        self.chunks.extend(loads(text) for text in chunks)

    def extend_nodes(self, nodes: Iterable[Node]) -> None:
        """Chunks written after those already known, already parsed."""
        self.chunks.extend(nodes)

    def value(self, node: Node) -> Any:
        """The value ``node`` stands for.

        Raises:
            CodecError: ``node`` is not a valid encoding, or names a kind this pgtop does
                not know or may not build.
        """
        try:
            return self._value(node)
        except RecursionError:
            raise CodecError("nested beyond reason") from None
        except (TypeError, ValueError, KeyError, IndexError, OverflowError) as exc:
            if isinstance(exc, CodecError):
                raise
            raise CodecError(f"a value that does not read back ({type(exc).__name__})") from None

    def _value(self, node: Node) -> Any:
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if not isinstance(node, list) or not node or not isinstance(node[0], str):
            raise CodecError("a value that is not an encoding")
        tag = node[0]
        reader = _READERS.get(tag)
        if reader is None:
            raise CodecError(f"an unknown tag {tag[:10]!r}")
        return reader(self, node)

    def _ref(self, node: Node) -> Any:
        number = node[1]
        if type(number) is not int or not 0 <= number < len(self.chunks):
            raise CodecError("a reference to a chunk that is not there")
        made = self._made.get(number)
        if made is _BUSY:
            raise CodecError("a chunk that refers to itself")
        if made is None and number not in self._made:
            self._made[number] = _BUSY
            try:
                made = self._value(self.chunks[number])
            finally:
                del self._made[number]
            self._made[number] = made
        return made

    def _class(self, number: object) -> tuple[type, tuple[tuple[str, int, object], ...]]:
        if type(number) is not int:
            raise CodecError("a kind that is not a number")
        found = self._classes.get(number)
        if found is not None:
            return found
        kind = self.kinds.get(number)
        if kind is None:
            raise CodecError(f"kind {number} is not in the type table")
        cls = self._allowed(kind.name)
        if cls is None:
            raise CodecError(
                f"data of a kind this pgtop does not know ({kind.name[:120]}): "
                "recorded by another version of pgtop?"
            )
        current = kind_of(cls).fields
        plan: list[tuple[str, int, object]] = []
        for name in current:
            if name in kind.fields:
                plan.append((name, kind.fields.index(name), None))
            else:
                plan.append((name, -1, _default(cls, name, kind.name)))
        found = self._classes[number] = (cls, tuple(plan))
        return found

    def _fields(self, node: Node, plan: tuple[tuple[str, int, object], ...]) -> list[Any]:
        recorded = node[2:]
        values = []
        for _, index, default in plan:
            if index < 0:
                values.append(default() if callable(default) else default)
            elif index >= len(recorded):
                raise CodecError("an object with fewer fields than its kind")
            else:
                values.append(self._value(recorded[index]))
        return values

    def _object(self, node: Node) -> Any:
        cls, plan = self._class(node[1])
        if not dataclasses.is_dataclass(cls):
            raise CodecError("an object of a kind that is not a data class")
        made = object.__new__(cls)
        for (name, _, _), value in zip(plan, self._fields(node, plan), strict=True):
            object.__setattr__(made, name, value)
        return made

    def _named(self, node: Node) -> Any:
        cls, plan = self._class(node[1])
        if not (issubclass(cls, tuple) and hasattr(cls, "_fields")):
            raise CodecError("a named tuple of a kind that is not one")
        return tuple.__new__(cls, self._fields(node, plan))

    def _enum(self, node: Node) -> Any:
        cls, _ = self._class(node[1])
        if not issubclass(cls, Enum):
            raise CodecError("an enum of a kind that is not one")
        value = self._value(node[2])
        for member in cls.__members__.values():
            if type(member.value) is type(value) and member.value == value:
                return member
        raise CodecError(f"{cls.__qualname__} has no member of that value")

    def _datetime(self, node: Node) -> datetime:
        value = datetime.fromisoformat(_text(node[1]))
        tz = _read_tz(node[2]) if len(node) > 2 and node[2] is not None else None
        fold = 1 if len(node) > 3 and node[3] == 1 else 0
        return value.replace(tzinfo=tz, fold=fold)

    def _time(self, node: Node) -> time:
        value = time.fromisoformat(_text(node[1]))
        tz = _read_tz(node[2]) if len(node) > 2 and node[2] is not None else None
        fold = 1 if len(node) > 3 and node[3] == 1 else 0
        return value.replace(tzinfo=tz, fold=fold)

    def _pieces(self, node: Node) -> tuple[Any, ...] | list[Any]:
        kind = {"t": tuple, "l": list}.get(node[1])
        if kind is None:
            raise CodecError("pieces of a value that is not a tuple or a list")
        joined: list[Any] = []
        for item in node[2:]:
            piece = self._value(item)
            if type(piece) is not kind:
                raise CodecError("a piece that is not of the kind it joins")
            if len(piece) > PIECE_MAX:
                raise CodecError(f"a piece of more than {PIECE_MAX} items")
            joined.extend(piece)
        return tuple(joined) if kind is tuple else joined

    def _dict(self, node: Node) -> dict[Any, Any]:
        items = node[1:]
        if len(items) % 2:
            raise CodecError("a mapping with a key and no value")
        values = [self._value(item) for item in items]
        return dict(zip(values[::2], values[1::2], strict=True))


def _default(cls: type, name: str, kind: str) -> object:
    """The default of a field the recording does not have (a newer pgtop added it)."""
    if dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            if f.name == name:
                if f.default is not dataclasses.MISSING:
                    return _Constant(f.default)
                if f.default_factory is not dataclasses.MISSING:
                    return f.default_factory
    else:
        defaults = getattr(cls, "_field_defaults", {})
        if name in defaults:
            return _Constant(defaults[name])
    raise CodecError(f"{kind[:120]} was recorded without its field {name}: another pgtop?")


class _Constant:
    """A default value, called like a factory."""

    def __init__(self, value: object) -> None:
        self.value = value

    def __call__(self) -> object:
        return self.value


def _text(node: Node) -> str:
    if not isinstance(node, str):
        raise CodecError("a text where there should be one")
    return node


def _read_tz(node: Node) -> tzinfo:
    if not isinstance(node, list) or len(node) < 2:
        raise CodecError("a time zone that is not one")
    if node[0] == "z":
        try:
            return ZoneInfo(_text(node[1]))
        except (ValueError, OSError):
            raise CodecError(
                f"time zone {str(node[1])[:60]!r} is not known on this machine (pip install tzdata)"
            ) from None
    if node[0] == "o" and type(node[1]) is int:
        offset = timedelta(microseconds=node[1])
        if len(node) < 3:
            return timezone.utc if not node[1] else timezone(offset)
        return timezone(offset, _text(node[2]))
    raise CodecError("a time zone that is not one")


def _simple(read: Callable[[Node], Any]) -> Callable[[Decoder, Node], Any]:
    return lambda decoder, node: read(node)


def _address(node: Node) -> Any:
    make = _ADDRESSES.get(node[1]) if isinstance(node[1], str) else None
    if make is None:
        raise CodecError("an address of an unknown kind")
    return make(_text(node[2]))


_READERS: dict[str, Callable[[Decoder, Node], Any]] = {
    "r": Decoder._ref,
    "p": Decoder._pieces,
    "t": lambda d, node: tuple(d._value(item) for item in node[1:]),
    "l": lambda d, node: [d._value(item) for item in node[1:]],
    "f": lambda d, node: frozenset(d._value(item) for item in node[1:]),
    "s": lambda d, node: {d._value(item) for item in node[1:]},
    "d": Decoder._dict,
    "@": Decoder._object,
    "n": Decoder._named,
    "e": Decoder._enum,
    "T": Decoder._datetime,
    "H": Decoder._time,
    "D": _simple(lambda node: date.fromisoformat(_text(node[1]))),
    "I": _simple(lambda node: timedelta(int(node[1]), int(node[2]), int(node[3]))),
    "N": _simple(lambda node: Decimal(_text(node[1]))),
    "b": _simple(lambda node: base64.b64decode(_text(node[1]), validate=True)),
    "U": _simple(lambda node: uuid.UUID(hex=_text(node[1]))),
    "A": _simple(_address),
    "Z": _simple(lambda node: _read_tz(node[1])),
}
