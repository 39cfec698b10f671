"""Every key can be set in the config file by an id the README names."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

from textual.binding import Binding
from textual.dom import DOMNode

import pgtop.panes
import pgtop.screens
from pgtop.tabs import POOLER_TABS, TABS

README = Path(__file__).resolve().parents[2] / "README.md"


def binding_ids() -> set[str]:
    """The id of every binding of pgtop's apps (live and replay), screens and panes."""
    modules = ["pgtop.app", "pgtop.player"]
    for package in (pgtop.screens, pgtop.panes):
        modules += [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]
    ids = {f"tab-{tab.name}" for tab in (*TABS, *POOLER_TABS)}
    for name in modules:
        for value in vars(importlib.import_module(name)).values():
            if isinstance(value, type) and issubclass(value, DOMNode):
                ids |= {b.id for b in value.BINDINGS if isinstance(b, Binding) and b.id}
    return ids


def test_every_binding_id_is_in_the_readme() -> None:
    ids = binding_ids()
    assert {"filter", "sort-next", "cancel-query", "analyze", "tab-indexes"} <= ids
    named = set(re.findall(r"`([a-z][a-z-]*)`", README.read_text()))
    assert sorted(ids - named) == []
