"""MCP servers: ``.mcp.json`` (wrapped in ``mcpServers`` or flat), what a manifest's
``mcpServers`` adds, and a skill's own ``.mcp.json``."""

from __future__ import annotations

from typing import Any

from isolator.content._context import MISSING, ComponentReader, type_name
from isolator.content._model import McpServer

_MCP_TRANSPORTS = frozenset({"stdio", "http", "streamable-http", "sse"})


class McpReader(ComponentReader):
    """MCP server files and entries, read as the SDK reads them (plus flat maps, reported)."""

    def load(self, extra: Any) -> dict[str, McpServer]:
        servers: dict[str, McpServer] = {}
        rel = ".mcp.json"
        if self.fs.kind(rel, report=False) == "file":
            data = self.ctx.json_file(rel)
            self.ctx.loaded_paths.add(self.fs.real(rel) or "")
            if data is not MISSING:
                servers = self.servers(rel, data, wrapped_only=False)
        elif self.fs.lexists(rel):
            self.fs.read_bytes(rel)  # reports an escape or what it is
        if extra:
            sources: list[tuple[str, Any]] = []
            if isinstance(extra, dict):
                sources.append((self.ctx.manifest_rel, extra))
            else:
                for path in self.ctx.paths_from_manifest("mcpServers", extra):
                    real = self.fs.real(path)
                    if real is None or real in self.ctx.loaded_paths:
                        continue
                    self.ctx.loaded_paths.add(real)
                    data = self.ctx.json_file(path)
                    if data is not MISSING:
                        sources.append((path, data))
            for path, data in sources:
                for name, server in self.servers(path, data, wrapped_only=False).items():
                    if name in servers:
                        self._report(path, f"MCP server {name!r} is already defined; skipped")
                    else:
                        servers[name] = server
        return servers

    def servers(self, rel: str, data: Any, *, wrapped_only: bool) -> dict[str, McpServer]:
        if not isinstance(data, dict):
            self._report(rel, f"must be a JSON object, not {type_name(data)}; ignored")
            return {}
        if "mcpServers" in data:
            entries = data["mcpServers"]
            if entries is None:
                return {}
            if not isinstance(entries, dict):
                self._report(rel, "'mcpServers' must be an object; ignored")
                return {}
        elif wrapped_only:
            return {}
        else:
            entries = data
            if entries:
                self._report(rel, "servers are not wrapped in 'mcpServers'; read as a flat "
                             "map (the SDK loads none of them)", "info")
        servers = {}
        for name, entry in entries.items():
            server = self.server(rel, name, entry)
            if server is not None:
                servers[name] = server
        return servers

    def server(self, rel: str, name: str, entry: Any) -> McpServer | None:
        if not isinstance(entry, dict):
            self._report(rel, f"MCP server {name!r} must be an object; ignored")
            return None
        transport = entry.get("transport", entry.get("type"))
        if transport == "shttp":
            transport = "http"
        if transport is not None and transport not in _MCP_TRANSPORTS:
            self._report(rel, f"MCP server {name!r} has unknown transport {transport!r}; ignored")
            return None
        command, url = entry.get("command"), entry.get("url")
        if transport is None and command is None and url is None:
            self._report(rel, f"MCP server {name!r} has neither 'command' nor 'url'; ignored")
            return None
        if transport == "stdio" and not command:
            self._report(rel, f"MCP server {name!r} is stdio but has no 'command'; ignored")
            return None
        if transport in ("http", "streamable-http", "sse") and not url:
            self._report(rel, f"MCP server {name!r} is remote but has no 'url'; ignored")
            return None
        problems = []
        for key, ok in (("command", command is None or isinstance(command, str)),
                        ("url", url is None or isinstance(url, str)),
                        ("args", is_str_list(entry.get("args"))),
                        ("env", is_str_map(entry.get("env"))),
                        ("headers", is_str_map(entry.get("headers"))),
                        ("cwd", entry.get("cwd") is None or isinstance(entry.get("cwd"), str))):
            if not ok:
                problems.append(key)
        if problems:
            self._report(rel, f"MCP server {name!r} has wrongly typed {', '.join(problems)}; "
                         "ignored")
            return None
        args = entry.get("args")
        return McpServer(
            name=name,
            transport=transport,
            command=command,
            args=tuple(args) if args is not None else None,
            env=entry.get("env"),
            url=url,
            headers=entry.get("headers"),
            cwd=entry.get("cwd"),
            config=entry,
        )


def is_str_list(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def is_str_map(value: Any) -> bool:
    return value is None or (isinstance(value, dict) and all(
        isinstance(v, str) for v in value.values()))
