"""How a progress view's row reads in a session's detail, without a server: the figure that
measures the current phase comes first, with its percentage."""

from __future__ import annotations

from pgtop.collectors.session import progress_from_row
from pgtop.formats import done_of
from pgtop.screens.session import progress_text


def headline(kind: str, values: dict[str, object]) -> str:
    figure = progress_from_row(kind, values, "public.t").figures[0]
    return f"{figure.label} {done_of(figure.done, figure.total, figure.unit)}"


def test_vacuum_follows_its_phase() -> None:
    row = {
        "phase": "scanning heap",
        "heap_blks_total": 5678,
        "heap_blks_scanned": 1234,
        "heap_blks_vacuumed": 0,
        "index_vacuum_count": 0,
    }
    assert headline("vacuum", row) == "heap blocks scanned 1,234 of 5,678 (21.7 %)"
    row |= {"phase": "vacuuming heap", "heap_blks_scanned": 5678, "heap_blks_vacuumed": 100}
    assert headline("vacuum", row) == "heap blocks vacuumed 100 of 5,678 (1.8 %)"
    # 17 counts the indexes processed.
    row |= {"phase": "vacuuming indexes", "indexes_total": 4, "indexes_processed": 1}
    assert headline("vacuum", row) == "indexes processed 1 of 4 (25.0 %)"


def test_create_index_analyze_cluster_copy_and_base_backup() -> None:
    build = {
        "command": "REINDEX CONCURRENTLY",
        "phase": "building index: loading tuples in tree",
        "blocks_total": 0,
        "blocks_done": 0,
        "tuples_total": 800,
        "tuples_done": 200,
        "lockers_total": 0,
        "lockers_done": 0,
        "partitions_total": 0,
        "partitions_done": 0,
    }
    progress = progress_from_row("create_index", build, "public.t")
    assert progress.command == "REINDEX CONCURRENTLY"
    assert [f.label for f in progress.figures] == ["tuples done"]  # nothing else to show
    assert headline("create_index", build) == "tuples done 200 of 800 (25.0 %)"
    sample = {
        "phase": "computing extended statistics",
        "sample_blks_total": 30,
        "sample_blks_scanned": 30,
        "ext_stats_total": 3,
        "ext_stats_computed": 2,
        "child_tables_total": 0,
        "child_tables_done": 0,
    }
    assert headline("analyze", sample) == "extended statistics computed 2 of 3 (66.7 %)"
    full = {"command": "VACUUM FULL", "phase": "seq scanning heap", "heap_blks_total": 10,
            "heap_blks_scanned": 5, "heap_tuples_scanned": 70, "heap_tuples_written": 60,
            "index_rebuild_count": 0}  # fmt: skip
    assert progress_from_row("cluster", full, "public.t").command == "VACUUM FULL"
    assert headline("cluster", full) == "heap blocks scanned 5 of 10 (50.0 %)"
    copy = {"command": "COPY FROM", "type": "PIPE", "bytes_processed": 3 * 1024**2,
            "bytes_total": 0, "tuples_processed": 1000, "tuples_excluded": 0}  # fmt: skip
    progress = progress_from_row("copy", copy, "public.t")
    assert (progress.command, progress.phase) == ("COPY FROM", "pipe")
    assert headline("copy", copy) == "bytes processed 3.0 MiB"  # from a pipe: no total
    backup = {"phase": "streaming database files", "backup_total": 4 * 1024**3,
              "backup_streamed": 1024**3, "tablespaces_total": 1,
              "tablespaces_streamed": 0}  # fmt: skip
    assert headline("basebackup", backup) == "bytes streamed 1.0 GiB of 4.0 GiB (25.0 %)"


def test_what_another_roles_session_hides_is_left_out() -> None:
    """Without the privilege to see a session, its progress row has only nulls."""
    hidden = {"phase": None, "heap_blks_total": None, "heap_blks_scanned": None}
    progress = progress_from_row("vacuum", hidden, None)
    assert (progress.command, progress.phase, progress.figures) == ("VACUUM", "", ())
    assert progress_text((progress,)).plain == "Progress\nVACUUM"


def test_the_progress_section_is_plain_text() -> None:
    row = {"phase": "[bold]scanning heap", "heap_blks_total": 2, "heap_blks_scanned": 1}
    text = progress_text((progress_from_row("vacuum", row, "public.[red]t"),))
    assert text.plain.splitlines() == [
        "Progress",
        "VACUUM public.[red]t · [bold]scanning heap",
        "  heap blocks scanned 1 of 2 (50.0 %)",
    ]
