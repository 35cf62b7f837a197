"""Every validator matches the whole value: a trailing newline is never part of a valid one.

``re.match(r"^...$", text)`` accepts ``"text\\n"`` (``$`` matches before a final newline). A name
with a newline in it reaches file names, log lines, terminal output and lock files. Each
validator of outside input is tested with a value it accepts and the same value with ``"\\n"``
added. (The permission validators are in test_policy.py.)
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

import pytest

from isolator import LockfileError, PluginLoadError, PluginSource, SourceError, load_plugin
from isolator.store._lockfile import parse_lock

if TYPE_CHECKING:
    from pathlib import Path

SHA = "a" * 64
AP_SCHEMA = "https://agent-plugins.org/schemas/1.0.0/plugin.schema.json"
MCP_SCHEMA = "https://agent-plugins.org/schemas/1.0.0/mcp.schema.json"


@pytest.mark.parametrize("source", ["pypi:requests", "github:octo-org/my.repo",
                                    "git@example.org:team/repo.git"])
def test_a_newline_never_becomes_part_of_a_source(source: str) -> None:
    good = PluginSource.parse(source)
    # Surrounding white space of an argument is dropped: the newline is not in the result.
    assert PluginSource.parse(source + "\n") == good
    with pytest.raises(SourceError):
        PluginSource.parse(source + "\nx")


@pytest.mark.parametrize("source", ["github:octo-org\n/my.repo", "github:octo-org/my.repo\n/x"])
def test_a_newline_inside_a_source_is_refused(source: str) -> None:
    with pytest.raises(SourceError):
        PluginSource.parse(source)


def _lock(name: str = "shout", sha256: str = SHA, python: str = "3.12",
          commit: str | None = None) -> dict[str, Any]:
    return {"version": 1, "plugins": {name: {
        "kind": "package", "package": "openhands-plugin-shout", "version": "1.0.0",
        "python": python, "allow_build": False, "git_commit": commit,
        "source": {"source": "pypi:openhands-plugin-shout"},
        "distributions": [{"name": "openhands-plugin-shout", "version": "1.0.0",
                           "sha256": sha256, "file": "openhands_plugin_shout-1.0.0-py3-none-any"
                           ".whl", "url": "https://example.org/x.whl"}]}}}


@pytest.mark.parametrize("field", ["name", "sha256", "python", "commit"])
def test_a_lock_field_with_a_trailing_newline_is_refused(field: str) -> None:
    good = {"name": "shout", "sha256": SHA, "python": "3.12", "commit": "c" * 40}
    parse_lock(_lock(**good))
    bad = copy.deepcopy(good)
    bad[field] += "\n"
    with pytest.raises(LockfileError):
        parse_lock(_lock(**bad))


def _agent_plugin(root: Path, name: str, servers: dict[str, Any] | None = None) -> Path:
    root.mkdir(parents=True)
    (root / "plugin.json").write_text(json.dumps({"$schema": AP_SCHEMA, "name": name}))
    if servers is not None:
        (root / "mcp.json").write_text(json.dumps({"$schema": MCP_SCHEMA,
                                                   "mcpServers": servers}))
    return root


def test_an_agent_plugins_name_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    assert load_plugin(_agent_plugin(tmp_path / "ok", "my-plugin")).name == "my-plugin"
    with pytest.raises(PluginLoadError, match="not a valid Agent Plugins name"):
        load_plugin(_agent_plugin(tmp_path / "bad", "my-plugin\n"))


@pytest.mark.parametrize("server", [
    {"type": "stdio", "command": "./srv", "cwd": "${PLUGIN_ROOT}"},
    {"type": "streamable-http", "url": "http://localhost"},
])
def test_an_mcp_field_with_a_trailing_newline_is_skipped(tmp_path: Path,
                                                         server: dict[str, Any]) -> None:
    good = load_plugin(_agent_plugin(tmp_path / "ok", "ok", {"s": server}))
    assert list(good.mcp_servers) == ["s"]
    key = "cwd" if "cwd" in server else "url"
    bad = load_plugin(_agent_plugin(tmp_path / "bad", "bad", {"s": {**server,
                                                                    key: server[key] + "\n"}}))
    assert list(bad.mcp_servers) == []
    assert any("'s' skipped" in d.reason for d in bad.diagnostics), bad.diagnostics
