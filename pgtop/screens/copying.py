"""The text a detail screen shows, as plain text, for a copy."""

from __future__ import annotations

from rich.text import Text
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static


def shown_text(root: Widget) -> str:
    """The text of every ``Static`` under ``root``, in screen order, without styles: the
    detail's headings, query, locks and fields as they read on screen (wrapped lines
    whole, not cut to the terminal's width)."""
    parts: list[str] = []
    for static in root.query(Static):
        content = static.content
        if isinstance(content, (Text, Content)):
            parts.append(content.plain)
        elif isinstance(content, str):
            parts.append(content)
    return "\n".join(part.rstrip("\n") for part in parts if part.strip()) + "\n"
