"""The flight recorder: what pgtop read, kept, written to a file and played back.

A recording is one more source (``pgtop.source``): ``replay.ReplaySource`` answers the
tabs, ``--once`` and every request from what was read, so no tab knows whether it shows a
server or a recording. Readings are written in three ways, all through one
``store.Writer``:

* ``memory.Memory``: the interface keeps its last minutes in memory, and writes them to a
  file when asked (``W``);
* ``headless.record``: ``pgtop --record FILE`` reads every tab at its own cadence into a
  file, without an interface;
* a file appended to by a later ``--record`` (after a gap).

``store`` is the file format (SQLite, compressed, only what changed between readings);
``codec`` turns frozen snapshots into text and back, exactly, without running code to read
a file someone else made.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgtop.recording.memory import Memory, Saved
    from pgtop.recording.replay import ReplaySource, parse_when
    from pgtop.recording.store import Recording, RecordingError, Writer

__all__ = ["Memory", "Recording", "RecordingError", "ReplaySource", "Saved", "Writer", "parse_when"]

_HOMES = {
    "Memory": "memory",
    "Saved": "memory",
    "ReplaySource": "replay",
    "parse_when": "replay",
    "Recording": "store",
    "RecordingError": "store",
    "Writer": "store",
}
"""Where each name is: its module loads when the name is first asked for, so that the
interface, which only records, does not load what plays back."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
