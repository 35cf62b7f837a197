"""The Claude Code / OpenHands manifest (``.plugin/plugin.json``, ``.claude-plugin/plugin.json``,
or one inferred from the directory), and which of the two plugin formats a directory is."""

from __future__ import annotations

import json
from typing import Any

from isolator._errors import PluginLoadError
from isolator.content._context import ComponentReader, type_name
from isolator.content._model import Author, Manifest


class ManifestReader(ComponentReader):
    """The manifest of the Claude Code layout; raises :class:`PluginLoadError` when unusable."""

    def is_agent_plugins(self) -> bool:
        if self.fs.kind("plugin.json", report=False) != "file":
            return False
        data = self.fs.read_bytes("plugin.json")
        if data is None:
            return True  # unreadable: let the manifest loader report it, as the SDK does
        try:
            parsed = json.loads(data.decode("utf-8-sig"))
        except (ValueError, RecursionError):
            return True
        return not isinstance(parsed, dict) or "$schema" in parsed

    def read_manifest(self, rel: str) -> dict[str, Any]:
        if self.fs.real(rel, report=False) is None:
            raise PluginLoadError(self.fs.abspath(rel), "manifest resolves outside the plugin "
                                  "root; refused")
        before = len(self.ctx.diagnostics)
        data = self.fs.read_bytes(rel)
        if data is None:
            diagnostics = self.ctx.diagnostics
            reason = diagnostics[-1].reason if len(diagnostics) > before else "unreadable"
            raise PluginLoadError(self.fs.abspath(rel), f"manifest {reason}")
        try:
            parsed = json.loads(data.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise PluginLoadError(self.fs.abspath(rel),
                                  f"manifest is not valid UTF-8 (byte {exc.start})") from None
        except RecursionError:
            raise PluginLoadError(self.fs.abspath(rel), "manifest is nested too deeply") from None
        except ValueError as exc:
            raise PluginLoadError(self.fs.abspath(rel),
                                  f"manifest is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise PluginLoadError(self.fs.abspath(rel), "manifest must be a JSON object, "
                                  f"not {type_name(parsed)}")
        return parsed

    def load(self) -> tuple[Manifest, dict[str, Any]]:
        rel = next((c for c in (".plugin/plugin.json", ".claude-plugin/plugin.json")
                    if self.fs.lexists(c)), None)
        if rel is None:
            name = self.ctx.root_name
            return Manifest(name=name, description=f"Plugin loaded from {name}"), {}
        self.ctx.manifest_rel = rel
        data = self.read_manifest(rel)
        if "name" not in data:
            raise PluginLoadError(self.fs.abspath(rel), "manifest lacks the required field "
                                  "'name' (a string, the plugin's kebab-case name)")
        name = data["name"]
        if not isinstance(name, str):
            raise PluginLoadError(self.fs.abspath(rel), "manifest field 'name' must be a "
                                  f"string, not {type_name(name)}")
        if not name:
            self._report(rel, "field 'name' is empty")
        version = self._manifest_str(rel, data, "version", "1.0.0")
        description = self._manifest_str(rel, data, "description", "")
        entry_command = self._manifest_str(rel, data, "entry_command", None)
        author = self._author(rel, data.get("author"))
        known = {"name", "version", "description", "author", "entry_command"}
        extra = {k: v for k, v in data.items() if k not in known}
        components: dict[str, Any] = {k: extra[k] for k in ("skills", "commands", "agents", "hooks",
                                            "mcpServers") if k in extra}
        manifest = Manifest(name=name, version=version, description=description,
                            author=author, entry_command=entry_command, extra=extra, path=rel)
        return manifest, components

    def _manifest_str(self, rel: str, data: dict[str, Any], key: str,
                      default: str | None) -> Any:
        if key not in data:
            return default
        value = data[key]
        if isinstance(value, str) or (value is None and default is None):
            return value
        self._report(rel, f"field '{key}' must be a string, not {type_name(value)}; "
                     f"using {default!r}")
        return default

    def _author(self, rel: str, value: Any) -> Author | None:
        if value is None:
            return None
        if isinstance(value, str):
            if "<" in value and ">" in value:
                return Author(name=value.split("<")[0].strip(),
                              email=value.split("<")[1].split(">")[0].strip())
            return Author(name=value.strip())
        if isinstance(value, dict):
            fields: dict[str, Any] = {}
            for key in ("name", "email", "url"):
                item = value.get(key)
                if key in value and not isinstance(item, str) and not (
                        item is None and key != "name"):
                    self._report(rel, f"field 'author.{key}' must be a string, not "
                                 f"{type_name(item)}; ignored")
                    continue
                if key in value:
                    fields[key] = item
            return Author(**fields)
        self._report(rel, f"field 'author' must be an object or a string, not "
                     f"{type_name(value)}; ignored")
        return None
