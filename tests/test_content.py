"""The content loader on small plugins written by the tests (formats, oddities, extensions)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import oracle
import pytest
from plugin_fixtures import CASES, manifest, write_tree
from test_corpus import compare, deliberate_differences

import isolator
from isolator import expand_variables, load_plugin
from isolator.content._variables import plugin_variables

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def case(tmp_path: Path):  # type: ignore[no-untyped-def]
    def make(name: str) -> isolator.Plugin:
        return load_plugin(write_tree(tmp_path / name, CASES[name]))
    return make


def test_full_plugin(case) -> None:  # type: ignore[no-untyped-def]
    plugin = case("full")
    assert (plugin.name, plugin.version, plugin.description) == ("full", "2.0.1", "All parts")
    assert plugin.manifest.author == isolator.Author("Ada Lovelace", "ada@example.org")
    assert plugin.manifest.entry_command == "run"
    assert plugin.manifest.extra["keywords"] == ["a", "b"]
    skills = {s.name: s for s in plugin.skills}
    assert sorted(skills) == ["alpha", "beta", "legacy", "rule", "task"]
    alpha = skills["alpha"]
    assert alpha.is_agentskills_format and alpha.content == "# Alpha\n\nBody."
    assert alpha.allowed_tools == ("Read", "Grep")
    assert alpha.metadata == {"owner": "me", "level": "3"}
    assert alpha.resources is not None
    assert alpha.resources.scripts == ("run.sh",)
    assert alpha.resources.references == ("deep/notes.md",)
    assert skills["beta"].trigger == isolator.Trigger("keyword", ("beta", "b2"))
    assert skills["rule"].trigger == isolator.Trigger("path", ("src/**", "tests/*"))
    assert skills["rule"].disable_model_invocation
    task = skills["task"]
    assert task.trigger == isolator.Trigger("task", ("/task",))
    assert task.inputs == (isolator.SkillInput("repo", "which repo"),)
    assert task.content.startswith("Work on ${repo}.") and "ask the user" in task.content
    commands = {c.name: c for c in plugin.commands}
    assert sorted(commands) == ["plain", "run"]
    assert commands["run"].argument_hint == "target mode"
    assert commands["run"].allowed_tools == ("Bash",)
    assert commands["run"].metadata == {"model": "fast"}
    assert commands["plain"].content == "No frontmatter here."
    agents = {a.name: a for a in plugin.agents}
    helper = agents["helper-agent"]
    assert helper.when_to_use_examples == ("a", "b")
    assert helper.skills == ("alpha", "beta") and helper.tools == ("Read",)
    assert helper.permission_mode == "never_confirm" and helper.max_iteration_per_run == 5
    assert helper.metadata == {"extra_key": 1}
    assert agents["nameless"].system_prompt == "Prompt"
    assert plugin.hooks is not None
    pre = plugin.hooks["pre_tool_use"][0]
    assert pre.matcher == "Bash|Edit" and pre.hooks[0].timeout == 10
    assert plugin.hooks["session_start"][0].matcher == "*"
    assert plugin.hooks["session_start"][0].hooks[0].timeout == 60
    assert plugin.mcp_servers["remote"].transport == "http"
    assert plugin.mcp_servers["local"].command == "${CLAUDE_PLUGIN_ROOT}/server"


def test_variables_stay_raw_and_expand_on_request(case) -> None:  # type: ignore[no-untyped-def]
    plugin = case("full")
    local = plugin.mcp_servers["local"]
    values = plugin_variables(plugin)
    assert expand_variables(local.command, values) == f"{plugin.root}/server"
    assert expand_variables(local.env, values) == {"TOKEN": "none"}
    assert expand_variables(local.env, values, apply_defaults=False) == {"TOKEN": "${TOKEN:-none}"}
    assert expand_variables("${TOKEN}", env={"TOKEN": "t"}) == "t"
    assert expand_variables("${TOKEN}") == "${TOKEN}"
    # one pass: a value that contains a variable is not expanded again
    assert expand_variables("${A}", {"A": "${B}", "B": "no"}) == "${B}"
    assert expand_variables(["$A", {"${A}": "x"}], {"A": "k"}) == ["$A", {"k": "x"}]


def test_no_manifest_uses_directory_name(case) -> None:  # type: ignore[no-untyped-def]
    plugin = case("no-manifest")
    assert plugin.name == "no-manifest" and plugin.version == "1.0.0"
    assert plugin.manifest.path is None
    assert plugin.hooks is None and plugin.mcp_servers == {}


def test_root_skill_only_without_skills_folder(case) -> None:  # type: ignore[no-untyped-def]
    plugin = case("root-skill")
    assert [s.name for s in plugin.skills] == ["solo"]
    assert plugin.skills[0].resources is not None
    assert plugin.skills[0].resources.references == ("r.md",)


def test_dot_plugin_wins_and_duplicates_are_reported(case) -> None:  # type: ignore[no-untyped-def]
    plugin = case("third-party-and-dupes")
    assert plugin.name == "dupes"
    skills = {s.name: s for s in plugin.skills}
    assert skills["same"].content == "second"
    assert skills["agents"].content.startswith("---\nname: ignored")
    assert len(skills["long.md".removesuffix(".md")].description or "") == 1024
    reasons = [d.reason for d in plugin.diagnostics]
    assert any("used again" in r for r in reasons)
    assert any("clipped" in r for r in reasons)


def test_crlf_and_unicode(case) -> None:  # type: ignore[no-untyped-def]
    plugin = case("crlf-and-unicode")
    assert plugin.description == "日本語の説明"
    command = plugin.commands[0]
    assert command.name == "日本語" and command.content == "本文\nline 2"
    assert command.description == "コマンド"
    assert plugin.skills[0].description == "CRLF skill"


def test_flat_hooks_and_author_object(case) -> None:  # type: ignore[no-untyped-def]
    plugin = case("flat-hooks-and-mcp")
    assert plugin.manifest.author == isolator.Author("Bob", None, "https://b")
    assert plugin.hooks is not None
    assert plugin.hooks["stop"][0].hooks[0].type == "prompt"
    assert plugin.mcp_servers["a"].transport == "sse"


def test_agent_plugins_format(case) -> None:  # type: ignore[no-untyped-def]
    plugin = case("agent-plugins")
    assert plugin.manifest.format == "agent-plugins"
    assert (plugin.name, plugin.version, plugin.manifest.entry_command) == (
        "ap-plugin", "0.3.0", "go")
    assert [c.name for c in plugin.commands] == ["go"]  # commands/ is not read in this format
    assert [a.name for a in plugin.agents] == ["a"]
    assert plugin.hooks is not None and "stop" in plugin.hooks


def test_agent_plugins_mcp_json(tmp_path: Path) -> None:
    schema = "https://agent-plugins.org/schemas/1.0.0/mcp.schema.json"
    root = write_tree(tmp_path / "ap", {
        "plugin.json": manifest(**{
            "$schema": "https://agent-plugins.org/schemas/1.0.0/plugin.schema.json",
            "name": "ap"}),
        "mcp.json": json.dumps({"$schema": schema, "mcpServers": {
            "ok": {"type": "stdio", "command": "./bin/server", "args": ["${PLUGIN_ROOT}/x"]},
            "bad": {"type": "stdio", "command": "/abs/path"},
            "old": {"type": "sse", "url": "https://x/sse"}}}),
    })
    plugin = load_plugin(root)
    assert list(plugin.mcp_servers) == ["ok"]
    assert plugin.mcp_servers["ok"].args == ("${PLUGIN_ROOT}/x",)
    reasons = " ".join(d.reason for d in plugin.diagnostics)
    assert "'bad' skipped" in reasons and "'old' skipped" in reasons


def test_root_plugin_json_without_schema_is_claude_code(case) -> None:  # type: ignore[no-untyped-def]
    plugin = case("copilot-root-manifest")
    assert plugin.manifest.format == "claude-code"
    assert plugin.name == "copilot-root-manifest"


def test_manifest_component_paths_only_add(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", {
        ".claude-plugin/plugin.json": manifest(
            name="p", commands=["./commands/", "./extra/more.md"], agents="./team",
            skills=["./extra-skills/one", "./commands"],
            hooks={"Stop": [{"hooks": [{"command": "inline"}]}]},
            mcpServers={"inline": {"command": "srv"}}),
        "commands/a.md": "A\n",
        "extra/more.md": "More\n",
        "team/t.md": "---\nname: t\n---\nT\n",
        "extra-skills/one/SKILL.md": "---\nname: one\n---\nOne\n",
        "hooks/hooks.json": json.dumps({"Stop": [{"hooks": [{"command": "file"}]}]}),
    })
    plugin = load_plugin(root)
    assert [c.name for c in plugin.commands] == ["a", "more"]  # ./commands/ read once
    assert [a.name for a in plugin.agents] == ["t"]
    assert [s.name for s in plugin.skills] == ["one"]
    assert plugin.hooks is not None
    assert [h.command for m in plugin.hooks["stop"] for h in m.hooks] == ["file", "inline"]
    assert list(plugin.mcp_servers) == ["inline"]


# The entry forms plugins write in a list-style hooks.json (seen in public plugins and tools).
LIST_STYLE_HOOKS: dict[str, Any] = {
    "description": "list-style hooks",
    "hooks": [
        {"event": "Stop", "command": "echo stop"},
        {"event": "PreToolUse", "matcher": "Bash",
         "hooks": [{"type": "command", "command": "check.sh", "timeout": 5}]},
        {"event": "PostToolUse", "type": "command", "command": "fmt.sh", "timeout": 30,
         "name": "fmt", "description": "formats"},
        {"event": "stop", "type": "prompt", "prompt": "Done?"},
        {"event": "PreCompact", "command": "save.sh"},
    ],
}


def _commands(plugin: isolator.Plugin) -> dict[str, list[tuple[str, str, int]]]:
    assert plugin.hooks is not None
    return {event: [(m.matcher, h.command or h.prompt or "", h.timeout)
                    for m in matchers for h in m.hooks]
            for event, matchers in plugin.hooks.items()}


def test_list_style_hooks_keep_their_commands(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", {"hooks/hooks.json": json.dumps(LIST_STYLE_HOOKS)})
    plugin = load_plugin(root)
    assert _commands(plugin) == {
        "stop": [("*", "echo stop", 60), ("*", "Done?", 60)],
        "pre_tool_use": [("Bash", "check.sh", 5)],
        "post_tool_use": [("*", "fmt.sh", 30)],
        "pre_compact": [("*", "save.sh", 60)],
    }
    assert "hooks" not in (plugin.hooks or {})  # never an event made from the wrapper's key
    fmt = (plugin.hooks or {})["post_tool_use"][0].hooks[0]
    assert (fmt.name, fmt.extra) == ("fmt", {"description": "formats"})
    assert plugin.hooks["stop"][1].hooks[0].type == "prompt"  # type: ignore[index]
    by_level = {(d.level, d.reason) for d in plugin.diagnostics}
    assert ("info", "hooks written as a list of entries with an 'event' each: read (the "
            "OpenHands SDK drops this file)") in by_level
    assert ("info", "event 'PreCompact' is not one the OpenHands SDK runs; kept") in by_level
    assert not [d for d in plugin.diagnostics if d.level == "warning"]
    data = plugin.to_dict()["hooks"]
    assert data["pre_tool_use"][0]["hooks"][0]["command"] == "check.sh"


def test_list_style_hooks_bare_in_the_manifest_and_in_an_agent(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", {
        ".claude-plugin/plugin.json": manifest(
            name="p", hooks=[{"event": "SessionStart", "command": "inline.sh"}, "./more.json"]),
        "hooks/hooks.json": json.dumps([{"event": "Stop", "command": "bare.sh"}]),
        "more.json": json.dumps({"hooks": [{"event": "Stop", "command": "more.sh"}]}),
        "agents/a.md": "---\nname: a\nhooks:\n  - event: PreToolUse\n    matcher: Edit\n"
                       "    command: agent.sh\n---\nPrompt\n",
    })
    plugin = load_plugin(root)
    assert _commands(plugin) == {"stop": [("*", "bare.sh", 60), ("*", "more.sh", 60)],
                                 "session_start": [("*", "inline.sh", 60)]}
    agent_hooks = plugin.agents[0].hooks
    assert agent_hooks is not None
    assert [(m.matcher, m.hooks[0].command) for m in agent_hooks["pre_tool_use"]] == [
        ("Edit", "agent.sh")]


def test_agents_carry_level_as_the_sdk_sets_it(tmp_path: Path) -> None:
    """The SDK sets ``level`` during discovery, never from frontmatter; ``Plugin.load`` sets
    none. A frontmatter ``level`` stays in metadata, as the SDK keeps it."""
    root = write_tree(tmp_path / "p", {"agents/a.md": "---\nname: a\nlevel: user\n---\nA\n",
                                       "agents/b.md": "B\n"})
    agents = {a.name: a for a in load_plugin(root).agents}
    assert agents["a"].level is None and agents["a"].metadata == {"level": "user"}
    assert agents["b"].level is None and agents["b"].to_dict()["level"] is None
    assert isolator.Agent("x", "p", "/s", level="plugin").to_dict()["level"] == "plugin"


@pytest.mark.corpus
def test_list_style_hooks_and_agent_level_against_the_sdk(tmp_path: Path,
                                                          oracle_python: Path) -> None:
    """The SDK drops a list-style hooks file (hooks null) and we keep it: the comparison names
    that deliberate difference. Agents' ``level`` is compared, a frontmatter one included."""
    plain = {"hooks": [e for e in LIST_STYLE_HOOKS["hooks"] if e["event"] != "PreCompact"]}
    one_bad = {"hooks": {"Stop": [{"hooks": [{"command": "ok.sh"}, {"command": 5}]}]}}
    roots = [write_tree(tmp_path / name, {"hooks/hooks.json": json.dumps(data),
                                          "agents/a.md": "---\nname: a\nlevel: user\n---\nA\n",
                                          "agents/b.md": "B\n"})
             for name, data in (("list", LIST_STYLE_HOOKS), ("plain", plain),
                                ("one-bad", one_bad))]
    dump = oracle.oracle_dump(roots)
    found = {}
    for root in roots:
        record = dump[str(root)]
        assert record["ok"], record
        sdk = record["plugin"]
        assert sdk["hooks"] is None, root.name
        assert sorted((a["name"], a["level"]) for a in sdk["agents"]) == [("a", None),
                                                                         ("b", None)]
        plugin = load_plugin(root)
        assert compare(plugin, sdk) == [], root.name
        found[root.name] = deliberate_differences(plugin, sdk)
    assert found == {
        "list": ["difference 2: the SDK drops the hooks (an event the SDK does not know); we "
                 "keep 5 handlers",
                 "difference 13: the SDK drops the hooks (a list-style hooks file); we keep 5 "
                 "handlers"],
        "plain": ["difference 13: the SDK drops the hooks (a list-style hooks file); we keep 4 "
                  "handlers"],
        "one-bad": ["difference 3: the SDK drops the hooks (a bad handler or matcher, which we "
                    "drop alone); we keep 1 handlers"],
    }


def test_to_dict_is_json(case) -> None:  # type: ignore[no-untyped-def]
    data = case("full").to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["hooks"]["pre_tool_use"][0]["hooks"][0]["command"].endswith("check.sh")


@pytest.mark.corpus
def test_fixtures_match_the_sdk(tmp_path: Path, oracle_python: Path) -> None:
    """Every fixture plugin loads as the SDK loads it (ours may add, never differ)."""
    dirs = [write_tree(tmp_path / name, files) for name, files in CASES.items()]
    dump = oracle.oracle_dump(dirs)
    assert len(dump) == len(dirs)
    for directory in dirs:
        record = dump[str(directory)]
        assert record["ok"], record
        assert compare(load_plugin(directory), record["plugin"]) == [], directory.name
