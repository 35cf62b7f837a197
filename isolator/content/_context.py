"""What every component reader of the loader shares: the plugin root, the safe filesystem
reader, the diagnostics, and the value helpers that match the SDK's conversions.

A :class:`LoadContext` is made once per load; each component reader (``_manifest``,
``_skills``, ``_commands``, ``_hooks``, ``_mcp``, ``_agent_plugins``) holds it.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from isolator.content import _frontmatter
from isolator.content._fsread import PluginFS

if TYPE_CHECKING:
    from isolator.content._fsread import LoadLimits
    from isolator.content._model import Diagnostic

MISSING: Any = object()
"""What :meth:`LoadContext.json_file` returns for a file it could not read or parse."""

_BOOL_STRINGS = {"true": True, "false": False, "yes": True, "no": False, "on": True,
                 "off": False, "t": True, "f": False, "y": True, "n": False, "1": True,
                 "0": False}


class SkipFile(Exception):
    """A component file that cannot be loaded at all; the message is its diagnostic."""


class LoadContext:
    """One load of one plugin directory: its root, what was read, and what was reported."""

    def __init__(self, root: str, limits: LoadLimits, root_name: str) -> None:
        self.diagnostics: list[Diagnostic] = []
        self.fs = PluginFS(root, limits, self.diagnostics)
        self.root_name = root_name
        """The directory's name, as far as content goes (see :func:`load_plugin`)."""
        self.limits = limits
        self.manifest_rel = "."
        """The manifest file (relative), which diagnostics about its fields name."""
        self.loaded_paths: set[str] = set()
        """Resolved paths of component files already loaded, so manifest paths only add."""

    def report(self, rel: str, reason: str, level: str = "warning") -> None:
        self.fs.report(rel, reason, level)

    def markdown(self, rel: str) -> tuple[_frontmatter.Frontmatter, str] | None:
        text = self.fs.read_text(rel)
        if text is None:
            return None
        fm = _frontmatter.parse(text, self.limits.max_yaml_depth)
        if fm.problem:
            self.report(rel, fm.problem, "info" if fm.lenient else "warning")
        return fm, text

    def json_file(self, rel: str) -> Any:
        data = self.fs.read_bytes(rel)
        if data is None:
            return MISSING
        try:
            return json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            self.report(rel, f"is not valid UTF-8 (byte {exc.start}); ignored")
        except RecursionError:
            self.report(rel, "is nested too deeply; ignored")
        except ValueError as exc:
            self.report(rel, f"is not valid JSON ({exc}); ignored")
        return MISSING

    def component_files(self, folder: str) -> list[str]:
        """Top-level ``*.md`` files of a component folder (commands/, agents/), README aside."""
        kind = self.fs.kind(folder)
        if kind != "dir":
            return []
        found = []
        for entry in self.fs.listdir(folder):
            if entry.kind == "dir" or not entry.name.lower().endswith(".md") or \
                    entry.name in ("README.md", "readme.md"):
                continue
            if entry.name.lower() == ".md":
                continue  # no stem: not a component file (the SDK's suffix test agrees)
            if entry.kind == "other":
                self.fs.read_bytes(entry.rel)  # reports what it is
                continue
            found.append(entry.rel)
        return found

    def paths_from_manifest(self, key: str, value: Any) -> list[str]:
        """Relative paths named by a manifest component field (``"./x"`` or a list of them)."""
        rel = self.manifest_rel
        items = value if isinstance(value, list) else [value]
        paths = []
        for item in items:
            if not isinstance(item, str):
                self.report(rel, f"manifest field '{key}' holds {type_name(item)}; "
                            "expected './path' strings; ignored", "info")
                continue
            clean = os.path.normpath(item.strip())
            if os.path.isabs(clean) or clean == ".." or clean.startswith("../"):
                self.report(rel, f"manifest path {item!r} in '{key}' leaves the plugin root; "
                            "refused")
                continue
            paths.append("" if clean == "." else clean)
        return paths

    def frontmatter_name(self, rel: str, meta: dict[str, Any], default: str) -> str:
        if "name" not in meta:
            return default
        value = meta["name"]
        if value is None:
            self.report(rel, "frontmatter 'name' is empty; named 'None' as the SDK names it",
                        "info")
        return py_str(value)


class ComponentReader:
    """Base of the component readers: the shared context, and shorthands for its reader."""

    def __init__(self, ctx: LoadContext) -> None:
        self.ctx = ctx
        self.fs = ctx.fs

    def _report(self, rel: str, reason: str, level: str = "warning") -> None:
        self.ctx.report(rel, reason, level)


def type_name(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value),
                                                                       type(value).__name__)


def opt_str(value: Any) -> str | None:
    return None if value is None else py_str(value)


def py_str(value: Any) -> str:
    """``str()`` as the SDK applies it, but dates as ISO strings (as pydantic dumps them)."""
    if isinstance(value, str):
        return value
    return str(_frontmatter.to_json_value(value)) if isinstance(value, (dict, list)) else str(
        value)


def as_bool(value: Any) -> bool | None:
    """A YAML-ish boolean as the SDK reads one (``yes``, ``on``, ``1``...); None if it is not."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return _BOOL_STRINGS.get(value.strip().lower())
    return None
