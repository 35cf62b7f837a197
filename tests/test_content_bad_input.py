"""Bad input: each kind gets a clear error or diagnostic, never a crash, a hang or a blow-up."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest
from plugin_fixtures import manifest, write_tree

from isolator import PluginLoadError, load_plugin
from isolator.cli import main as ohp

if TYPE_CHECKING:
    from pathlib import Path


def _reasons(plugin) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(f"{d.path}: {d.reason}" for d in plugin.diagnostics)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(PluginLoadError, match="no such plugin directory"):
        load_plugin(tmp_path / "nope")


def test_a_file_is_not_a_plugin_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(PluginLoadError, match="not a directory"):
        load_plugin(tmp_path / "f")


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object, not a list"),
    ('{"version": "1.0"}', "lacks the required field 'name'"),
    ('{"name": 42}', "'name' must be a string, not a number"),
    ("[" * 100000 + "]" * 100000, "nested too deeply|not valid JSON"),
    (b"\xff\xfe{", "not valid UTF-8"),
])
def test_bad_manifest_is_fatal_with_one_line(tmp_path: Path, text: str | bytes,
                                             message: str) -> None:
    root = write_tree(tmp_path / "p", {".claude-plugin/plugin.json": text})
    with pytest.raises(PluginLoadError, match=message) as info:
        load_plugin(root)
    assert "\n" not in str(info.value)
    assert "plugin.json" in str(info.value)


def test_bad_manifest_cli_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_tree(tmp_path / "p", {".claude-plugin/plugin.json": "{oops"})
    assert ohp(["show", str(root)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ohp: error:") and "not valid JSON" in err and "\n" not in err
    assert ohp(["show", str(tmp_path / "missing")]) == 1


def test_wrongly_typed_manifest_fields_become_diagnostics(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", {".claude-plugin/plugin.json": json.dumps(
        {"name": "p", "version": 3, "description": ["x"], "author": 5})})
    plugin = load_plugin(root)
    assert (plugin.version, plugin.description, plugin.manifest.author) == ("1.0.0", "", None)
    reasons = _reasons(plugin)
    assert "'version' must be a string" in reasons
    assert "'description' must be a string" in reasons
    assert "'author' must be an object or a string" in reasons


def test_invalid_yaml_gets_a_lenient_reading(tmp_path: Path) -> None:
    text = ("---\nname: hunter\ndescription: Use this agent when x. Examples:\\n<example>"
            "Context: a: b</example>\nmodel: inherit\n---\nPrompt\n")
    root = write_tree(tmp_path / "p", {"agents/hunter.md": text})
    plugin = load_plugin(root)
    agent = plugin.agents[0]
    assert agent.name == "hunter" and agent.model == "inherit"
    assert agent.description.startswith("Use this agent when x. Examples:\\n<example>")
    assert agent.when_to_use_examples == ("Context: a: b",)
    assert "not valid YAML" in _reasons(plugin)


def test_yaml_alias_bomb_is_refused(tmp_path: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    root = write_tree(tmp_path / "p", {"commands/bomb.md": f"---\n{bomb}description: d\n---\nB\n"})
    plugin = load_plugin(root)
    assert plugin.commands[0].metadata == {}  # metadata ignored, the body still loads
    assert plugin.commands[0].content == "B"
    assert "aliases" in _reasons(plugin)


# Nesting deeper than LoadLimits.max_yaml_depth (64) is refused, whichever layer notices it: our
# walk of the parsed tree (65 levels), Python's recursion limit under the pure-Python loader, or
# libyaml itself, which (as bundled with PyYAML 6.0.4) refuses more than 1,000 levels as invalid
# YAML. Either way: no crash, no unbounded recursion, the body loads, the metadata is ignored,
# and one warning names the file, the same for flow and block style and for every layer.
_DEEP = {
    "flow-65": "a: " + "[" * 65 + "]" * 65 + "\n",
    "flow-10000": "a: " + "[" * 10_000 + "]" * 10_000 + "\n",
    "block-65": "".join("  " * i + f"k{i}:\n" for i in range(65)) + "  " * 65 + "v\n",
    # block style grows quadratically with depth; 1,500 levels stay under the size cap
    "block-1500": "".join("  " * i + f"k{i}:\n" for i in range(1_500)) + "  " * 1_500 + "v\n",
    "compact-5000": "- " * 5_000 + "x\n",
}


def _assert_deep_files_refused(root: Path) -> None:
    plugin = load_plugin(root)
    assert {c.name: c.content for c in plugin.commands} == {
        name: f"Body of {name}" for name in [*_DEEP, "shallow"]}
    assert all(c.metadata == {} for c in plugin.commands if c.name != "shallow")
    shallow = next(c for c in plugin.commands if c.name == "shallow")
    assert shallow.description == "d" and shallow.metadata["a"] == [[[1]]]
    by_file = {}
    for d in plugin.diagnostics:
        assert d.path not in by_file, f"two diagnostics for {d.path}"
        by_file[d.path] = (d.level, d.reason)
    assert by_file == {f"commands/{name}.md": (
        "warning", "frontmatter nested deeper than 64 levels; metadata ignored") for name in _DEEP}


def _write_deep(root: Path) -> Path:
    files = {f"commands/{name}.md": f"---\n{yaml}---\nBody of {name}\n"
             for name, yaml in _DEEP.items()}
    files["commands/shallow.md"] = "---\ndescription: d\na: [[[1]]]\n---\nBody of shallow\n"
    return write_tree(root, files)


@pytest.mark.parametrize("loader", ["default", "pure-python"])
def test_deeply_nested_frontmatter_is_refused(tmp_path: Path, loader: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    from isolator.content import _frontmatter

    if loader == "pure-python":
        monkeypatch.setattr(_frontmatter, "_Loader", yaml.SafeLoader)
    _assert_deep_files_refused(_write_deep(tmp_path / "p"))


def test_a_yaml_layer_refusing_deep_nesting_itself_gives_the_same_diagnostic(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A libyaml that refuses nesting past its own limit (as the one PyYAML 6.0.4 bundles does
    past 1,000 levels, whatever its message): simulated here at 10 levels, so the test does not
    depend on the installed release. Invalid YAML that is not deep is still read leniently."""
    import yaml

    from isolator.content import _frontmatter

    class Refusing(yaml.SafeLoader):  # type: ignore[misc]
        def get_single_node(self) -> yaml.Node:
            depth = 0
            for event in yaml.parse(self.buffer.rstrip("\0"), Loader=yaml.SafeLoader):
                depth += isinstance(event, yaml.CollectionStartEvent)
                depth -= isinstance(event, yaml.CollectionEndEvent)
                if depth > 10:
                    raise yaml.YAMLError("some library's own words for too deep")
            return super().get_single_node()

    monkeypatch.setattr(_frontmatter, "_Loader", Refusing)
    root = _write_deep(tmp_path / "p")
    (root / "commands" / "invalid.md").write_text("---\nname: n\ndescription: a: b\n---\nI\n")
    plugin = load_plugin(root)
    invalid = next(c for c in plugin.commands if c.name == "invalid")
    assert (invalid.description, invalid.content) == ("a: b", "I")
    assert [d.level for d in plugin.diagnostics if d.path == "commands/invalid.md"] == ["info"]
    root.joinpath("commands", "invalid.md").unlink()
    _assert_deep_files_refused(root)


def test_symlink_escaping_the_root_is_refused(tmp_path: Path) -> None:
    outside = write_tree(tmp_path / "outside", {
        "secret/SKILL.md": "---\nname: stolen\n---\nTOP-SECRET\n", "cmd.md": "TOP-SECRET\n"})
    root = write_tree(tmp_path / "p", {"skills/ok/SKILL.md": "---\nname: ok\n---\nok\n",
                                       "shared/linked/SKILL.md": "---\nname: l\n---\nl\n",
                                       "commands/fine.md": "fine\n"})
    (root / "skills" / "escape").symlink_to(outside / "secret")
    (root / "commands" / "leak.md").symlink_to(outside / "cmd.md")
    (root / "skills" / "inside").symlink_to(root / "shared" / "linked")
    plugin = load_plugin(root)
    assert sorted(s.source.rsplit("/", 2)[1] for s in plugin.skills) == ["inside", "ok"]
    assert [c.name for c in plugin.commands] == ["fine"]
    reasons = _reasons(plugin)
    assert "skills/escape: resolves outside the plugin root" in reasons
    assert "commands/leak.md: resolves outside the plugin root" in reasons
    assert "TOP-SECRET" not in json.dumps(plugin.to_dict())


def test_manifest_symlink_escaping_is_fatal(tmp_path: Path) -> None:
    outside = write_tree(tmp_path / "o", {"plugin.json": manifest(name="evil")})
    root = write_tree(tmp_path / "p", {"x.md": "x"})
    (root / ".claude-plugin").mkdir()
    (root / ".claude-plugin" / "plugin.json").symlink_to(outside / "plugin.json")
    with pytest.raises(PluginLoadError, match="outside the plugin root"):
        load_plugin(root)


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", {"commands/ok.md": "ok\n"})
    os.mkfifo(root / "commands" / "pipe.md")
    os.mkfifo(root / ".mcp.json")
    plugin = load_plugin(root)  # a read of a FIFO would block forever
    assert [c.name for c in plugin.commands] == ["ok"]
    reasons = _reasons(plugin)
    assert "commands/pipe.md: is not a regular file (a FIFO)" in reasons
    assert ".mcp.json: is not a regular file (a FIFO)" in reasons


def test_one_gibibyte_file_is_refused_unread(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", {"commands/ok.md": "ok\n"})
    with open(root / "commands" / "huge.md", "wb") as f:
        f.truncate(1 << 30)  # sparse: 1 GiB on paper, nothing on disk
    # Load in a child process capped at 100 MiB of extra address space over its baseline:
    # reading the file would fail there; refusing it by size costs nothing.
    code = textwrap.dedent(f"""
        import resource, sys
        import isolator
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        p = isolator.load_plugin({str(root)!r})
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print([c.name for c in p.commands], (peak - base) // 1024)
        print([d.reason for d in p.diagnostics])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.splitlines()
    names, grew_mib = out[0].rsplit(" ", 1)
    assert names == "['ok']"
    assert int(grew_mib) < 100
    assert "over the" in out[1] and "refused unread" in out[1]
    assert resource.getrlimit(resource.RLIMIT_AS)  # the host process itself read nothing


def test_invalid_utf8_is_replaced_and_reported(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", {
        "commands/bad.md": b"---\ndescription: caf\xe9\n---\nbody \xff end\n"})
    plugin = load_plugin(root)
    command = plugin.commands[0]
    assert command.description == "caf\ufffd" and command.content == "body \ufffd end"
    assert "not valid UTF-8" in _reasons(plugin)


def test_crlf_line_endings(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", {
        ".claude-plugin/plugin.json": manifest(name="p").replace(",", ",\r\n"),
        "skills/s/SKILL.md": "---\r\nname: s\r\ndescription: d\r\n---\r\na\r\nb\r\n",
        "hooks/hooks.json": '{\r\n"Stop": [{"hooks": [{"command": "x"}]}]\r\n}\r\n'})
    plugin = load_plugin(root)
    assert plugin.skills[0].content == "a\nb" and plugin.skills[0].description == "d"
    assert plugin.hooks is not None and "stop" in plugin.hooks


def test_bad_component_files_are_skipped_and_reported(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", {
        "hooks/hooks.json": "{broken",
        ".mcp.json": json.dumps({"mcpServers": {"x": {"type": "carrier-pigeon"},
                                                "y": {"command": 5}, "z": {"command": "ok"}}}),
        "skills/t/SKILL.md": "---\ntriggers: 5\n---\nT\n",
        "skills/u/SKILL.md": "---\nname: u\n---\nU\n",
        "agents/a.md": "---\nmax_iteration_per_run: -3\npermission_mode: sometimes\n---\nA\n",
    })
    plugin = load_plugin(root)
    assert plugin.hooks is None
    assert list(plugin.mcp_servers) == ["z"]
    assert [s.name for s in plugin.skills] == ["u"]
    agent = plugin.agents[0]
    assert agent.max_iteration_per_run is None and agent.permission_mode is None
    reasons = _reasons(plugin)
    for expected in ("hooks/hooks.json: is not valid JSON", "unknown transport 'carrier-pigeon'",
                     "wrongly typed command", "'triggers' must be a list", "must be positive",
                     "'permission_mode' 'sometimes'"):
        assert expected in reasons, expected


def test_loader_never_imports_or_runs_plugin_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    root = write_tree(tmp_path / "p", {
        "__init__.py": f"open({str(marker)!r}, 'w').close()\n",
        "tools.py": f"open({str(marker)!r}, 'w').close()\n",
        "commands/c.md": "c\n"})
    load_plugin(root)
    assert not marker.exists()
    assert "p" not in sys.modules


# -- list-style hooks.json: each entry names its event; what cannot be read is dropped, said --

def _hooks_of(tmp_path: Path, data: object) -> tuple[dict[str, list[str]], list[str]]:
    """The commands by event, and the warnings, of a plugin whose hooks.json holds *data*."""
    root = write_tree(tmp_path / "p", {"hooks/hooks.json": json.dumps(data)})
    plugin = load_plugin(root)
    commands = {event: [h.command for m in matchers for h in m.hooks]
                for event, matchers in (plugin.hooks or {}).items()}
    warnings = [f"{d.path}: {d.reason}" for d in plugin.diagnostics if d.level == "warning"]
    return commands, warnings


_GOOD = {"event": "Stop", "command": "good.sh"}


@pytest.mark.parametrize(("entry", "expected"), [
    (5, "hooks/hooks.json: hooks[1] must be an object with an 'event', not a number; ignored"),
    ("Stop", "hooks[1] must be an object with an 'event', not a string; ignored"),
    ({"command": "lost.sh"}, "hooks[1] has no 'event' (the event it runs on); ignored"),
    ({"event": 3, "command": "x"}, "hooks[1].event must be a string, not a number; ignored"),
    ({"event": None, "command": "x"}, "hooks[1].event must be a string, not null; ignored"),
    ({"event": ["Stop"], "command": "x"}, "hooks[1].event must be a string, not a list"),
    ({"event": "PreToolUse|PostToolUse", "command": "x"},
     "hooks[1].event 'PreToolUse|PostToolUse' is not an event name"),
    ({"event": "", "command": "x"}, "hooks[1].event '' is not an event name"),
    ({"event": "../../etc", "command": "x"}, "hooks[1].event '../../etc' is not an event name"),
    ({"event": "Stop", "command": 7}, "hooks[1].command must be a string; ignored"),
    ({"event": "Stop", "command": ["a", "b"]}, "hooks[1].command must be a string; ignored"),
    ({"event": "Stop"}, "hooks[1] is a command handler without a 'command'; ignored"),
    ({"event": "Stop", "matcher": 1, "command": "x"}, "hooks[1].matcher must be a string"),
    ({"event": "Stop", "type": 1, "command": "x"}, "hooks[1].type must be a string; ignored"),
    ({"event": "Stop", "hooks": {"command": "x"}}, "hooks[1].hooks must be a list; ignored"),
    ({"event": "Stop", "hooks": [{"command": 1}]}, "hooks[1].hooks[0].command must be a string"),
    ({"event": "Stop", "hooks": [{"command": "x"}], "command": "y"},
     "hooks[1] has both 'hooks' and 'command': a matcher or a handler, not both; ignored"),
    ({"event": "PreToolUse", "matchers": {"toolName": "Bash"}, "command": "x"},
     "hooks[1] limits when it runs with 'matchers', which is not read (use 'matcher'); ignored"),
    ({"event": "PreToolUse", "match": "Bash", "command": "x"},
     "hooks[1] limits when it runs with 'match'"),
])
def test_unreadable_list_entries_are_dropped_with_a_warning(
        tmp_path: Path, entry: object, expected: str) -> None:
    """One bad entry costs only itself; no event is made up; the warning names the entry."""
    commands, warnings = _hooks_of(tmp_path, {"hooks": [_GOOD, entry, _GOOD]})
    assert commands == {"stop": ["good.sh", "good.sh"]}
    assert len(warnings) == 1 and expected in warnings[0], warnings


def test_an_unknown_event_in_a_list_is_kept_and_said(tmp_path: Path) -> None:
    """An event the SDK does not run (Claude Code has many) is kept under its own name, as
    the map form keeps one, with a note; only names that are not event names are refused."""
    root = write_tree(tmp_path / "p", {"hooks/hooks.json": json.dumps(
        [{"event": "PreCompact", "command": "a"}, {"event": "notify_me", "command": "b"}])})
    plugin = load_plugin(root)
    assert plugin.hooks is not None
    assert {e: m[0].hooks[0].command for e, m in plugin.hooks.items()} == {
        "pre_compact": "a", "notify_me": "b"}
    notes = [d.reason for d in plugin.diagnostics if d.level == "info"]
    assert "event 'PreCompact' is not one the OpenHands SDK runs; kept" in notes
    assert "event 'notify_me' is not one the OpenHands SDK runs; kept" in notes


def test_a_disabled_list_entry_is_not_run(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", {"hooks/hooks.json": json.dumps({"hooks": [
        _GOOD, {"event": "Stop", "command": "off.sh", "enabled": False},
        {"event": "Stop", "command": "on.sh", "enabled": True}]})})
    plugin = load_plugin(root)
    assert plugin.hooks is not None
    assert [m.hooks[0].command for m in plugin.hooks["stop"]] == ["good.sh", "on.sh"]
    assert "hooks[1] is not enabled ('enabled': False); ignored" in _reasons(plugin)


@pytest.mark.parametrize(("data", "commands", "expected"), [
    # a list wrapper with an event map beside it: the keys beside are not read (nor by the SDK)
    ({"hooks": [_GOOD], "PreToolUse": [{"hooks": [{"command": "beside.sh"}]}]},
     {"stop": ["good.sh"]},
     "top-level keys beside 'hooks' are not read, so their hooks do not run: 'PreToolUse'"),
    # the map form inside the list
    ({"hooks": [_GOOD, {"PreToolUse": [{"hooks": [{"command": "inner.sh"}]}]}]},
     {"stop": ["good.sh"]},
     "hooks[1] has no 'event': a map of events inside the list is not read"),
    # list-style handlers inside the map form: kept as the SDK keeps them (running nothing)
    ({"hooks": {"Stop": [{"hooks": [{"command": "good.sh"}]}, {"command": "flat.sh"}]}},
     {"stop": ["good.sh"]},
     "Stop[1] is a handler where a matcher belongs (no 'hooks' list): it runs nothing"),
    ({"hooks": {"Stop": [{"event": "Stop", "type": "command", "command": "flat.sh"}]}},
     {"stop": []}, "Stop[0] is a handler where a matcher belongs"),
    # a 'hooks' that is neither a map nor a list; the events beside it are still read
    ({"hooks": "./hooks.sh", "Stop": [{"hooks": [{"command": "good.sh"}]}]},
     {"stop": ["good.sh"]},
     "'hooks' must be an object of events or a list of hook entries, not a string; ignored"),
    ("Stop: good.sh", {}, "hooks must be a JSON object or a list of hook entries, not a string"),
])
def test_mixed_list_and_map_hooks(tmp_path: Path, data: object, commands: dict[str, list[str]],
                                  expected: str) -> None:
    found, warnings = _hooks_of(tmp_path, data)
    assert found == commands
    assert len(warnings) == 1 and expected in warnings[0], warnings


@pytest.mark.parametrize("form", ["list", "map"])
def test_a_huge_hooks_list_gives_few_diagnostics(tmp_path: Path, form: str) -> None:
    """A hooks.json just under the 4 MiB size cap holds ~2 million bad entries: loading it stays
    cheap and lists the first 20 problems, then one line counting the rest (not 2 million
    diagnostics: that took 4 s and 770 MB in the map form). Over the cap it is refused unread."""
    from isolator.content._fsread import LoadLimits

    cap = LoadLimits().max_file_bytes
    n = (cap - 100) // 2
    items = ",".join(["1"] * n)
    text = f'{{"hooks":[{items}]}}' if form == "list" else f'{{"Stop":[{items}]}}'
    root = write_tree(tmp_path / "p", {"hooks/hooks.json": text})
    plugin = load_plugin(root)
    assert plugin.hooks == {} if form == "list" else plugin.hooks == {"stop": ()}
    warnings = [d.reason for d in plugin.diagnostics if d.level == "warning"]
    assert len(warnings) == 21
    assert warnings[-1] == f"{n - 20} more problems in this file are not listed (only the " \
                           "first 20 are)"
    # one byte over the cap: refused from its size, unread
    (root / "hooks" / "hooks.json").write_text(text + " " * (cap - len(text) + 1))
    plugin = load_plugin(root)
    assert plugin.hooks is None and "refused unread" in _reasons(plugin)


def test_a_huge_list_of_good_entries_loads_them_all(tmp_path: Path) -> None:
    """Good entries are not capped beyond the file size: ~140,000 under 4 MiB all load."""
    entry = json.dumps({"event": "Stop", "command": "x"}, separators=(",", ":"))
    n = (4 * 1024 * 1024 - 100) // (len(entry) + 1)
    root = write_tree(tmp_path / "p", {"hooks/hooks.json": "[" + ",".join([entry] * n) + "]"})
    plugin = load_plugin(root)
    assert plugin.hooks is not None and len(plugin.hooks["stop"]) == n
    assert [d.level for d in plugin.diagnostics] == ["info"]


def test_bad_hooks_in_an_agent_and_the_manifest_name_where_they_are(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", {
        ".claude-plugin/plugin.json": manifest(name="p", hooks=[{"event": 1}, "./none.json"]),
        "agents/a.md": "---\nname: a\nhooks:\n  - event: Stop\n    command: [x]\n"
                       "  - event: Stop\n    command: ok.sh\n---\nA\n",
        "agents/b.md": "---\nname: b\nhooks: 5\n---\nB\n",
    })
    plugin = load_plugin(root)
    agents = {a.name: a for a in plugin.agents}
    assert agents["a"].hooks is not None
    assert [m.hooks[0].command for m in agents["a"].hooks["stop"]] == ["ok.sh"]
    assert agents["b"].hooks is None
    reasons = _reasons(plugin)
    assert "agents/a.md: hooks[0].command must be a string; ignored" in reasons
    assert "agents/b.md: 'hooks' is a number, expected an object of events or a list" in reasons
    assert ".claude-plugin/plugin.json: hooks[0].event must be a string, not a number" in reasons
    assert plugin.hooks == {}
