"""The Agent Plugins format (agent-plugins.org 1.0.0): its ``plugin.json`` and ``mcp.json``.

Its components live under ``dev.openhands/`` (:data:`EXTENSION_DIR`) and are read by the same
readers as the Claude Code layout's.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from isolator._errors import PluginLoadError
from isolator.content._context import MISSING, ComponentReader, type_name
from isolator.content._manifest import ManifestReader
from isolator.content._mcp import McpReader, is_str_map
from isolator.content._model import Author, Manifest

if TYPE_CHECKING:
    from isolator.content._context import LoadContext
    from isolator.content._model import McpServer

AGENT_PLUGINS_SCHEMA = "https://agent-plugins.org/schemas/1.0.0/plugin.schema.json"
EXTENSION_DIR = "dev.openhands"
_AGENT_PLUGINS_NAME = re.compile(r"^(?!.*(?:--|\.\.))[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?\Z")
_AGENT_PLUGINS_FIELDS = frozenset({"$schema", "name", "version", "description", "author",
                                   "homepage", "repository", "license", "keywords",
                                   "extensions"})


class AgentPluginsReader(ComponentReader):
    """The Agent Plugins ``plugin.json`` (strict, as its schema) and ``mcp.json``."""

    def __init__(self, ctx: LoadContext) -> None:
        super().__init__(ctx)
        self.manifests = ManifestReader(ctx)
        self.mcp_servers = McpReader(ctx)

    def manifest(self) -> Manifest:
        rel = "plugin.json"
        path = self.fs.abspath(rel)
        data = self.manifests.read_manifest(rel)
        if data.get("$schema") != AGENT_PLUGINS_SCHEMA:
            raise PluginLoadError(path, f"unsupported or missing $schema {data.get('$schema')!r}"
                                  f" (expected {AGENT_PLUGINS_SCHEMA})")
        unknown = sorted(set(data) - _AGENT_PLUGINS_FIELDS)
        if unknown:
            self._report(rel, f"unknown top-level field(s) ignored: {', '.join(unknown)}")
            data = {k: v for k, v in data.items() if k not in unknown}
        if "extensions" in data and not isinstance(data["extensions"], dict):
            self._report(rel, "field 'extensions' is not an object; ignored")
            del data["extensions"]
        name = data.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 64 or not \
                _AGENT_PLUGINS_NAME.match(name):
            raise PluginLoadError(path, f"field 'name' {name!r} is not a valid Agent Plugins "
                                  "name (lowercase letters, digits, '.' and '-', at most 64)")
        for key in ("version", "description", "homepage", "repository", "license"):
            if key in data and not isinstance(data[key], str):
                raise PluginLoadError(path, f"field '{key}' must be a string, not "
                                      f"{type_name(data[key])}")
        keywords = data.get("keywords", [])
        if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
            raise PluginLoadError(path, "field 'keywords' must be a list of strings")
        author = data.get("author")
        if author is not None and (not isinstance(author, dict) or set(author) - {
                "name", "email", "url"} or not all(isinstance(v, str) for v in author.values())):
            raise PluginLoadError(path, "field 'author' must be an object with string "
                                      "'name', 'email' and 'url' only")
        extensions = data.get("extensions", {})
        if not all(isinstance(v, dict) for v in extensions.values()):
            raise PluginLoadError(path, "every value of 'extensions' must be an object")
        entry_command = None
        ours = extensions.get(EXTENSION_DIR) or {}
        if ours.get("entry_command") is not None:
            if isinstance(ours["entry_command"], str):
                entry_command = ours["entry_command"] or None
            else:
                self._report(rel, "extensions['dev.openhands'].entry_command is not a "
                             "string; ignored")
        known = {"name", "version", "description", "author"}
        return Manifest(
            name=name,
            version=data.get("version", "1.0.0"),
            description=data.get("description", ""),
            author=Author(**author) if isinstance(author, dict) else None,
            entry_command=entry_command,
            extra={k: v for k, v in data.items() if k not in known},
            path=rel,
            format="agent-plugins",
        )

    def mcp(self) -> dict[str, McpServer]:
        rel = "mcp.json"
        if self.fs.kind(rel, report=False) != "file":
            if self.fs.lexists(rel):
                self.fs.read_bytes(rel)
            return {}
        data = self.ctx.json_file(rel)
        if data is MISSING:
            return {}
        expected = "https://agent-plugins.org/schemas/1.0.0/mcp.schema.json"
        if not isinstance(data, dict) or data.get("$schema") != expected or not isinstance(
                data.get("mcpServers"), dict) or set(data) - {"$schema", "mcpServers"}:
            self._report(rel, f"is not an Agent Plugins mcp.json (an object with $schema "
                         f"{expected} and 'mcpServers' only); MCP disabled")
            return {}
        servers = {}
        for name, entry in data["mcpServers"].items():
            problem = _server_problem(entry)
            if problem:
                self._report(rel, f"MCP server {name!r} skipped: {problem}")
                continue
            server = self.mcp_servers.server(rel, name, entry)
            if server is not None:
                servers[name] = server
        return servers


def _server_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "not an object"
    kind = entry.get("type")
    allowed = {"stdio": {"type", "command", "args", "env", "cwd"},
               "streamable-http": {"type", "url", "headers"},
               "sse": {"type", "url", "headers"}}
    if kind not in allowed:
        return f"unknown type {kind!r}"
    if kind == "sse":
        return "unsupported transport 'sse'"
    extra = set(entry) - allowed[kind]
    if extra:
        return f"unexpected field(s) {', '.join(sorted(extra))}"
    if kind == "stdio":
        command = entry.get("command")
        if not isinstance(command, str) or not command:
            return "'command' must be a non-empty string"
        if not command.startswith("./") and ("/" in command or "\\" in command):
            return "'command' must be a bare name or a './' path inside the plugin"
        if command.startswith("./") and ".." in command.split("/"):
            return "'command' leaves the plugin root"
        env = entry.get("env", {})
        if not is_str_map(env) or {"PLUGIN_ROOT", "PLUGIN_DATA"} & set(env):
            return "'env' must map names to strings and cannot set PLUGIN_ROOT or PLUGIN_DATA"
        cwd = entry.get("cwd")
        if cwd is not None and not (isinstance(cwd, str) and re.match(
                r"^(?:\./|\$\{PLUGIN_ROOT\}(?:/|\Z)|\$\{PLUGIN_DATA\}(?:/|\Z))", cwd)):
            return "'cwd' must start with './', '${PLUGIN_ROOT}' or '${PLUGIN_DATA}'"
    else:
        url = entry.get("url")
        if not isinstance(url, str) or not re.match(r"^https?://[^/@#]+", url) or "#" in url:
            return "'url' must be an absolute http(s) URL without credentials or fragment"
        if url.startswith("http://") and not re.match(
                r"^http://(localhost|127\.[0-9.]+|\[::1\])(?:[:/]|\Z)", url):
            return "'url' must use https for a remote host"
        if not is_str_map(entry.get("headers", {})):
            return "'headers' must map names to strings"
    return None
