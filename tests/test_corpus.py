"""Acceptance: our loader against the OpenHands SDK 1.58.0 (the oracle) on 141 real plugins.

The rule is a strict superset: everything the SDK loads, we load identically; we may load more.
Our model keeps variables raw, so a value is compared after :func:`isolator.expand_variables`
applies what the SDK applies at load time (``${SKILL_ROOT}`` and the oracle's environment).
"""

from __future__ import annotations

import io
import json
import os
from contextlib import redirect_stdout
from typing import TYPE_CHECKING, Any

import oracle
import pytest

import isolator
from isolator.cli import main as ohp

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

pytestmark = pytest.mark.corpus

# Fields of MCPServer in the SDK; others are dropped by its coerce_mcp_config.
_SDK_MCP_FIELDS = {"url", "transport", "command", "args", "env", "cwd", "description", "icon",
                   "timeout", "sse_read_timeout", "keep_alive", "headers", "auth", "enabled"}
_SKILL_FIELDS = ("description", "content", "allowed_tools", "trigger", "license",
                 "compatibility", "metadata", "disable_model_invocation",
                 "is_agentskills_format", "inputs", "resources")
_COMMAND_FIELDS = ("description", "content", "allowed_tools", "argument_hint", "metadata",
                   "source")
_AGENT_FIELDS = ("description", "system_prompt", "tools", "model", "color", "skills",
                 "when_to_use_examples", "permission_mode", "max_iteration_per_run",
                 "max_budget_per_run", "metadata", "source", "profile_store_dir", "level")
# Where we keep hooks that the SDK drops, on purpose (docs/content.md, "Deliberate differences
# from the SDK"): each is announced by a diagnostic that says which difference it is.
_HOOK_DIFFERENCES: tuple[tuple[Callable[[isolator.Diagnostic], bool], int, str], ...] = (
    (lambda d: "is not one the OpenHands SDK runs" in d.reason, 2,
     "an event the SDK does not know"),
    (lambda d: d.level == "warning" and d.path.endswith("hooks.json"), 3,
     "a bad handler or matcher, which we drop alone"),
    (lambda d: d.reason.startswith("hooks written as a list of entries"), 13,
     "a list-style hooks file"),
)


def _relative(value: Any, root: str) -> Any:
    return json.loads(json.dumps(value).replace(root, "${PLUGIN_DIR}"))


def _as_sdk_mcp(servers: dict[str, Any], skill_root: str, root: str) -> dict[str, Any]:
    """Our raw server entries as the SDK's MCPServer dump shows them."""
    expanded = isolator.expand_variables(servers, {"SKILL_ROOT": skill_root},
                                         env=oracle.oracle_env(), apply_defaults=False)
    result = {}
    for name, entry in expanded.items():
        server = dict(entry)
        kind = server.pop("type", None)
        if "transport" not in server and kind is not None:
            server["transport"] = "http" if kind == "shttp" else kind
        server = {k: v for k, v in server.items() if k in _SDK_MCP_FIELDS and v is not None}
        server.setdefault("enabled", True)
        result[name] = server
    return _relative(result, root)


def deliberate_differences(plugin: isolator.Plugin, sdk: dict[str, Any]) -> list[str]:
    """Where ``plugin`` holds more than the SDK loaded on purpose, each as ``"difference N:
    ..."`` (N: the row of docs/content.md's table), or ``"unexplained: ..."`` when no
    diagnostic names a deliberate difference for it. Covers hooks files the SDK dropped."""
    found: list[str] = []
    if sdk["hooks"] is None and plugin.hooks:
        handlers = sum(len(m.hooks) for matchers in plugin.hooks.values() for m in matchers)
        named = [(number, what) for said, number, what in _HOOK_DIFFERENCES
                 if any(said(d) for d in plugin.diagnostics)]
        for number, what in named:
            found.append(f"difference {number}: the SDK drops the hooks ({what}); we keep "
                         f"{handlers} handlers")
        if not named:
            found.append(f"unexplained: the SDK drops the hooks; we keep {handlers} handlers "
                         "and no diagnostic says why")
    return found


def compare(plugin: isolator.Plugin, sdk: dict[str, Any]) -> list[str]:
    """Every way ``plugin`` differs from what the SDK loaded; empty when it is a superset.

    Going further than the SDK counts only where :func:`deliberate_differences` can name the
    deliberate difference; anything else it finds is a problem."""
    problems: list[str] = []
    root = plugin.root

    def check(what: str, ours: Any, theirs: Any) -> None:
        if ours != theirs:
            problems.append(f"{what}: ours={json.dumps(ours)[:200]} sdk={json.dumps(theirs)[:200]}")

    for key in ("name", "version", "description"):
        check(f"manifest.{key}", getattr(plugin.manifest, key), sdk["manifest"][key])

    skills = {(s.name, s.source): s for s in plugin.skills}
    for theirs in sdk["skills"]:
        skill = skills.get((theirs["name"], theirs["source"].replace("${PLUGIN_DIR}", root)))
        if skill is None:
            problems.append(f"skill {theirs['name']} ({theirs['source']}) missing")
            continue
        ours = _relative(skill.to_dict(), root)
        for key in _SKILL_FIELDS:
            check(f"skill {skill.name}.{key}", ours[key], theirs[key])
        mcp = skill.mcp_tools
        check(f"skill {skill.name}.mcp_tools",
              _as_sdk_mcp(mcp, os.path.dirname(skill.source), root) if mcp is not None else None,
              theirs["mcp_tools"])

    for kind, ours_list, fields in (("command", plugin.commands, _COMMAND_FIELDS),
                                    ("agent", plugin.agents, _AGENT_FIELDS)):
        by_name = {item.name: item for item in ours_list}
        for theirs in sdk[f"{kind}s"]:
            item = by_name.get(theirs["name"])
            if item is None:
                problems.append(f"{kind} {theirs['name']} missing")
                continue
            ours = _relative(item.to_dict(), root)
            for key in fields:
                check(f"{kind} {item.name}.{key}", ours[key], theirs[key])

    if sdk["hooks"] is not None:
        hooks = plugin.hooks or {}
        for event, matchers in sdk["hooks"].items():
            ours_h = [[m.matcher, [[h.type, h.command, h.timeout] for h in m.hooks]]
                      for m in hooks.get(event, ())]
            theirs_h = [[m["matcher"], [[h["type"], h["command"], h["timeout"]]
                                        for h in m["hooks"]]] for m in matchers]
            check(f"hooks.{event}", ours_h, theirs_h)
    problems += [f"hooks: {d}" for d in deliberate_differences(plugin, sdk)
                 if d.startswith("unexplained")]

    servers = _as_sdk_mcp({n: s.config for n, s in plugin.mcp_servers.items()}, root, root)
    for name, config in sdk["mcp_config"].items():
        check(f"mcp_servers.{name}", servers.get(name), config)
    return problems


def test_loader_is_a_superset_of_the_sdk_on_the_corpus(
    shared_dir: Path, corpus_oracle: dict[str, dict[str, Any]]
) -> None:
    corpus = oracle.corpus_root(shared_dir)
    assert len(corpus_oracle) == len(oracle.corpus_dirs(shared_dir)) > 100
    failures = {}
    deliberate = {}
    compared = 0
    for rel, record in sorted(corpus_oracle.items()):
        assert record["ok"], f"the SDK failed to load {rel}: {record.get('error')}"
        plugin = isolator.load_plugin(corpus / rel)
        problems = compare(plugin, record["plugin"])
        compared += 1
        if problems:
            failures[rel] = problems
        if differences := deliberate_differences(plugin, record["plugin"]):
            deliberate[rel.rsplit("/", 1)[-1]] = [d.split(":", 1)[0] for d in differences]
    assert compared == len(corpus_oracle)
    assert not failures, json.dumps(failures, indent=1, ensure_ascii=False)[:20000]
    # The hooks files the SDK drops and we keep, as docs/content.md lists them.
    assert deliberate == {"claude-security": ["difference 2"], "handover": ["difference 2"]}


def test_comparison_catches_a_difference(
    shared_dir: Path, corpus_oracle: dict[str, dict[str, Any]]
) -> None:
    """The comparison itself can fail: a changed body or a dropped skill is reported."""
    corpus = oracle.corpus_root(shared_dir)
    rel, record = next((r, rec) for r, rec in sorted(corpus_oracle.items())
                       if rec["plugin"]["skills"])
    sdk = json.loads(json.dumps(record["plugin"]))
    sdk["skills"][0]["content"] += " (changed)"
    sdk["manifest"]["version"] = "0.0.0-not-this"
    problems = compare(isolator.load_plugin(corpus / rel), sdk)
    assert any(".content" in p for p in problems)
    assert any("manifest.version" in p for p in problems)
    sdk["skills"][0]["name"] = "no-such-skill"
    assert any("missing" in p for p in compare(isolator.load_plugin(corpus / rel), sdk))

    # an agent's level
    rel, record = next((r, rec) for r, rec in sorted(corpus_oracle.items())
                       if rec["plugin"]["agents"])
    sdk = json.loads(json.dumps(record["plugin"]))
    sdk["agents"][0]["level"] = "plugin"
    assert any(p.startswith(f"agent {sdk['agents'][0]['name']}.level: ours=null")
               for p in compare(isolator.load_plugin(corpus / rel), sdk))
    # hooks we keep where the SDK has none, with no diagnostic naming a deliberate difference
    rel, record = next((r, rec) for r, rec in sorted(corpus_oracle.items())
                       if rec["plugin"]["hooks"] and any(rec["plugin"]["hooks"].values()))
    plugin = isolator.load_plugin(corpus / rel)
    assert compare(plugin, record["plugin"]) == []
    sdk = {**record["plugin"], "hooks": None}
    assert [p for p in compare(plugin, sdk) if p.startswith("hooks: unexplained")], rel


def test_ohp_show_json_on_every_corpus_plugin(shared_dir: Path) -> None:
    required = {"name", "version", "description", "skills", "commands", "agents", "hooks",
                "mcp_servers", "diagnostics"}
    for directory in oracle.corpus_dirs(shared_dir):
        out = io.StringIO()
        with redirect_stdout(out):
            code = ohp(["show", str(directory), "--json"])
        assert code == 0, directory
        data = json.loads(out.getvalue())
        assert required <= data.keys(), directory
        for key in ("skills", "commands", "agents"):
            assert all({"name", "description"} <= item.keys() for item in data[key])
        for event, matchers in data["hooks"].items():
            assert event == event.lower(), event
            for matcher in matchers:
                assert {"matcher", "hooks"} <= matcher.keys()
                assert all({"type", "command", "timeout"} <= h.keys() for h in matcher["hooks"])
        assert all({"path", "reason"} <= d.keys() for d in data["diagnostics"])
