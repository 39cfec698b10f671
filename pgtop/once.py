"""``--once TAB``: one report (``pgtop.reports``) on stdout, as JSON or an aligned text table."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pgtop.output import write_output
from pgtop.reports import Report, reports
from pgtop.servers import ServerSet
from pgtop.source import Source
from pgtop.text import lenient, one_line


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _plain_json(value: Any) -> Any:
    """``value`` with every byte that did not decode (a lone surrogate, see
    ``pg._LenientText``) replaced by U+FFFD: a JSON reader may reject lone surrogates."""
    if isinstance(value, str):
        return value if value.isascii() else lenient(value)
    if isinstance(value, dict):
        return {key: _plain_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_json(item) for item in value]
    return value


def render_text(report: Report) -> str:
    """An aligned table, under a line of the report's own fields if it has any; every server
    string made visible and kept on one line."""
    headers = [name for name, _ in report.text_columns]
    body = [[show(row) for _, show in report.text_columns] for row in report.rows]
    widths = [max([len(h), *(len(line[i]) for line in body)]) for i, h in enumerate(headers)]
    lines = []
    for cells in [headers, *body]:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])]
        lines.append("  ".join([*padded, cells[-1]]).rstrip())
    scalars = {k: v for k, v in report.extra.items() if not isinstance(v, Mapping)}
    if scalars:
        fields = "  ".join(f"{name} {one_line(str(value), 100)}" for name, value in scalars.items())
        lines.insert(0, fields)
    lines.extend(one_line(line, 400) for line in report.footer)
    return "\n".join(lines)


async def print_once(source: Source | ServerSet, tab: str, output_format: str) -> int:
    """Print one report of ``tab`` read from ``source`` (every server: ``ServerSet``);
    returns the exit code."""
    report = await reports()[tab](source)
    for note in report.notes:
        print(f"pgtop: warning: {note}", file=sys.stderr)
    if output_format == "json":
        if report.server is not None:
            server = {**report.server, "collected_at": report.collected_at}
        else:
            assert not isinstance(source, ServerSet)
            caps = source.capabilities
            assert caps is not None
            server = {
                "version": caps.server_version,
                "version_num": caps.server_version_num,
                "is_standby": caps.is_standby,
                "collected_at": report.collected_at,
            }
        document = {"tab": tab, "server": server, **report.extra, "rows": report.rows}
        output = json.dumps(_plain_json(document), default=_json_default) + "\n"
    else:
        output = render_text(report) + "\n"
    write_output(output)
    return report.exit_code
