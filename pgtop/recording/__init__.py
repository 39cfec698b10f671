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

from pgtop.recording.memory import Memory, Saved
from pgtop.recording.replay import ReplaySource, parse_when
from pgtop.recording.store import Recording, RecordingError, Writer

__all__ = ["Memory", "Recording", "RecordingError", "ReplaySource", "Saved", "Writer", "parse_when"]
