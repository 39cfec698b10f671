"""The interface starts without the modules of the tabs not shown, and what loads them later
(a tab's first collection, a recording read) loads them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from recorded import canned_recording

from pgtop.collectors.base import DeferredCollector, collector_class
from pgtop.collectors.locks import LocksCollector
from pgtop.tabs import TABS

LOADED_LATER = (
    "pgtop.collectors.catalog",
    "pgtop.collectors.locks",
    "pgtop.collectors.pgbouncer",
    "pgtop.collectors.replication",
    "pgtop.collectors.servers",
    "pgtop.recording.replay",
    "pgtop.screens.confirm",
    "pgtop.servers",
)


def _loaded_after(code: str) -> set[str]:
    """The pgtop modules a fresh interpreter holds after running ``code``."""
    script = f"{code}\nimport sys\nprint(' '.join(m for m in sys.modules if m.startswith('pgtop')))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(done.stdout.split())


def test_the_interface_loads_no_module_of_the_tabs_not_shown() -> None:
    # What the command imports before its first snapshot is on screen: the interface (in a
    # thread), the source and its collectors, the action connection, the recorder.
    loaded = _loaded_after(
        "import pgtop.cli\n"
        "pgtop.cli._load_interface()\n"
        "from pgtop.source import LiveSource\n"
        "from pgtop.tabs import collectors\n"
        "from pgtop.actions import open_action_connection\n"
        "from pgtop.recording import Memory\n"
        "collectors()\n"
    )
    assert "pgtop.app" in loaded
    assert "pgtop.panes.locks" in loaded
    assert sorted(loaded.intersection(LOADED_LATER)) == []


def test_a_deferred_collector_is_the_class_it_names() -> None:
    deferred = DeferredCollector("pgtop.collectors.locks:LocksCollector")
    assert collector_class(deferred) is LocksCollector
    assert collector_class(LocksCollector) is LocksCollector
    for tab in TABS:
        if isinstance(tab.collector, DeferredCollector):
            made_by = collector_class(tab.collector)
            assert isinstance(made_by, type), tab.name
            assert made_by.__module__.startswith("pgtop.collectors."), tab.name


def test_a_recording_reads_back_where_its_tabs_were_never_loaded(tmp_path: Path) -> None:
    path = canned_recording(tmp_path / "r.pgtop")
    loaded = _loaded_after(
        "from pathlib import Path\n"
        "import sys\n"
        "from pgtop.recording import Recording\n"
        "assert 'pgtop.collectors.locks' not in sys.modules\n"
        f"recording = Recording.open(Path({str(path)!r}))\n"
        "index, data = recording.latest(35, 'locks')\n"
        "assert type(data).__qualname__ == 'LocksData', data\n"
        "assert index == 19\n"
    )
    assert "pgtop.collectors.locks" in loaded
