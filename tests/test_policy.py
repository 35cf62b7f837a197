"""Operator policy: the file policy, hook plugins, profile choice and the JSON-lines audit log.

Stores install for real (uv, the example wheelhouse); the audit log is written by real
concurrent processes and threads.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
from typing import TYPE_CHECKING, Any

import pytest
from wheelhouse import EXAMPLES_DIR, wheel_for

from isolator import (
    PluginSource,
    PluginStore,
    Policy,
    PolicyDeniedError,
    PolicyError,
    StoreError,
    hookimpl,
)
from isolator.policy._permissions import Permissions, PermissionsError

if TYPE_CHECKING:
    from pathlib import Path

OHP = [sys.executable, "-m", "isolator.cli"]


def offline(wheelhouse: Path) -> dict[str, Any]:
    return {"find_links": [wheelhouse], "no_index": True}


def write_policy(root: Path, data: object) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "policy.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def audit_events(root: Path, event: str | None = None) -> list[dict[str, Any]]:
    path = root / "audit.jsonl"
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    return [e for e in events if event is None or e["event"] == event]


def snapshot(root: Path) -> dict[str, Any]:
    """What an operation must leave alone: pointers, generation directories, wheelhouse."""
    plugins = root / "plugins"
    wheelhouse = root / "wheelhouse"
    return {
        "plugins": sorted(str(p.relative_to(root)) for p in plugins.glob("*/*"))
        if plugins.is_dir() else [],
        "pointers": {p.parent.name: p.read_text() for p in plugins.glob("*/current")}
        if plugins.is_dir() else {},
        "wheelhouse": sorted(p.name for p in wheelhouse.glob("*/*"))
        if wheelhouse.is_dir() else [],
    }


class Recorder:
    """A policy plugin, registered explicitly: records what it is asked, denies on demand."""

    def __init__(self, deny_packages: frozenset[str] = frozenset(),
                 profile: str | None = None) -> None:
        self.deny_packages = deny_packages
        self.profile = profile
        self.sources: list[str] = []
        self.indexes: list[tuple[str, str]] = []
        self.packages: list[tuple[str, str, str, str | None]] = []
        self.events: list[dict[str, Any]] = []

    @hookimpl
    def isolator_check_source(self, source: PluginSource) -> str | None:
        self.sources.append(source.source)
        return None

    @hookimpl
    def isolator_check_index(self, plugin: str, url: str) -> str | None:
        self.indexes.append((plugin, url))
        return None

    @hookimpl
    def isolator_check_package(self, plugin: str, name: str, version: str,
                               index: str | None) -> str | None:
        self.packages.append((plugin, name, version, index))
        return f"{name} is on the recorder's list" if name in self.deny_packages else None

    @hookimpl
    def isolator_choose_profile(self, plugin: str, requested: str) -> str | None:
        del plugin, requested
        return self.profile

    @hookimpl
    def isolator_audit(self, event: dict[str, Any]) -> None:
        self.events.append(event)


# ---- sources ---------------------------------------------------------------------------------


def test_sources_are_denied_before_anything_is_fetched_and_allow_lists_are_exclusive(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    root = tmp_path / "store"
    write_policy(root, {"sources": {"allow": ["pypi:openhands-plugin-*", "dir:*"],
                                    "deny": ["pypi:openhands-plugin-shout", "git:*"]}})
    store = PluginStore(root)

    with pytest.raises(PolicyDeniedError, match=r"source 'pypi:openhands-plugin-shout': "
                       r"denied by policy: policy.json sources.deny has 'pypi:openhands-plugin-"
                       r"shout'") as denied:
        store.install("pypi:openhands-plugin-shout", **offline(example_wheelhouse))
    assert denied.value.what == "source"
    # github: sources are git sources: denied before any clone is tried (no network here).
    with pytest.raises(PolicyDeniedError, match=r"sources.deny has 'git:\*'"):
        store.install("github:example/never-cloned")
    # Not on the allow list: a local wheel.
    wheel = wheel_for(example_wheelhouse, "openhands-plugin-greetings")
    with pytest.raises(PolicyDeniedError, match=r"sources.allow has no pattern for wheel:"):
        store.install(str(wheel))
    assert snapshot(root) == {"plugins": [], "pointers": {}, "wheelhouse": []}

    # Allowed: a pypi name matching the pattern (in any spelling) and a directory.
    assert store.install("pypi:OpenHands_Plugin.Greetings",
                         **offline(example_wheelhouse)).name == "greetings"
    assert store.install(str(EXAMPLES_DIR / "content-only-plugin")).name == "notes"

    denies = audit_events(root, "deny")
    assert [(e["what"], e["source"]) for e in denies] == [
        ("source", "pypi:openhands-plugin-shout"), ("source", "github:example/never-cloned"),
        ("source", str(wheel))]
    assert all(e["reason"].startswith("policy.json sources.") for e in denies)


# ---- packages and indexes --------------------------------------------------------------------


def test_a_denied_dependency_is_refused_before_any_file_is_fetched(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    # welcome depends on greetings; greetings is denied by a version rule.
    root = tmp_path / "store"
    write_policy(root, {"packages": {"deny": ["evil-*", "openhands-plugin-greetings>=1"]}})
    with pytest.raises(PolicyDeniedError, match=r"package 'openhands-plugin-greetings 1.0.0': "
                       r"denied by policy: policy.json packages.deny has "
                       r"'openhands-plugin-greetings>=1'"):
        PluginStore(root).install("pypi:openhands-plugin-welcome", **offline(example_wheelhouse))
    assert snapshot(root) == {"plugins": [], "pointers": {}, "wheelhouse": []}
    [deny] = audit_events(root, "deny")
    assert deny["what"] == "package"
    assert (deny["plugin"], deny["package"], deny["version"], deny["index"]) == (
        "openhands-plugin-welcome", "openhands-plugin-greetings", "1.0.0",
        example_wheelhouse.as_uri())

    # A rule for other versions lets it through.
    write_policy(root, {"packages": {"deny": ["openhands-plugin-greetings<1"]}})
    installed = PluginStore(root).install("pypi:openhands-plugin-welcome",
                                          **offline(example_wheelhouse))
    before = snapshot(root)

    # The policy tightens: an upgrade and a reinstall are refused; the generation stays.
    write_policy(root, {"packages": {"allow": ["openhands-plugin-welcome"]}})
    store = PluginStore(root)
    with pytest.raises(PolicyDeniedError, match=r"packages.allow has no rule for "
                       r"openhands-plugin-greetings 1.0.0"):
        store.upgrade("welcome")
    with pytest.raises(PolicyDeniedError, match="openhands-plugin-greetings"):
        store.reinstall("welcome")
    assert snapshot(root) == before
    assert store.get("welcome").generation == installed.generation
    assert [e["event"] for e in audit_events(root)] == ["deny", "install", "deny", "deny"]


def test_indexes_are_checked_before_resolution_and_per_package(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    # Only PyPI allowed: the local wheelhouse (a find-links directory) is not.
    root = tmp_path / "pypi-only"
    write_policy(root, {"indexes": {"allow": ["https://pypi.org/simple"]}})
    with pytest.raises(PolicyDeniedError, match=r"index 'file://.*': denied by policy: "
                       r"policy.json indexes.allow has no pattern for file://"):
        PluginStore(root).install("pypi:openhands-plugin-greetings",
                                  **offline(example_wheelhouse))
    assert snapshot(root)["wheelhouse"] == []

    # A denied index is refused before the resolver contacts it (nothing listens on port 9:
    # reaching it would be a ResolutionError).
    root = tmp_path / "no-local-index"
    write_policy(root, {"indexes": {"deny": ["http://127.0.0.1:*"]}})
    with pytest.raises(PolicyDeniedError, match=r"index 'http://127.0.0.1:9/simple'"):
        PluginStore(root).install("pypi:openhands-plugin-greetings",
                                  index_url="http://127.0.0.1:9/simple")
    # ...and before a local project is built (the build would fetch its build backend).
    write_policy(root, {"indexes": {"deny": ["https://pypi.org/*"]}})
    recorder = Recorder()
    store = PluginStore(root, policy=Policy.load(root, [recorder]))
    with pytest.raises(PolicyDeniedError, match=r"index 'https://pypi.org/simple'"):
        store.install(str(EXAMPLES_DIR / "openhands-plugin-greetings"))
    assert recorder.indexes == [("openhands-plugin-greetings", "https://pypi.org/simple")]
    assert not (root / "tmp").exists() or not any((root / "tmp").iterdir())

    # A path stands for its file:// URL; every resolved package says where it comes from.
    root = tmp_path / "wheelhouse-only"
    write_policy(root, {"indexes": {"allow": [str(example_wheelhouse) + "/"]}})
    recorder = Recorder()
    store = PluginStore(root, policy=Policy.load(root, [recorder]))
    store.install("pypi:openhands-plugin-welcome", **offline(example_wheelhouse))
    where = example_wheelhouse.as_uri()
    assert recorder.sources == ["pypi:openhands-plugin-welcome"]
    assert recorder.indexes == [("openhands-plugin-welcome", where)] * 2  # source, resolution
    assert sorted(recorder.packages) == [
        ("openhands-plugin-welcome", "openhands-plugin-greetings", "1.0.0", where),
        ("openhands-plugin-welcome", "openhands-plugin-welcome", "1.0.0", where)]


def test_an_explicit_plugin_denies_and_a_raising_hook_fails_closed(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    root = tmp_path / "store"
    recorder = Recorder(deny_packages=frozenset({"example-textkit"}))
    store = PluginStore(root, policy=Policy.load(root, [recorder]))
    with pytest.raises(PolicyDeniedError, match="example-textkit is on the recorder's list"):
        store.install("pypi:openhands-plugin-shout", **offline(example_wheelhouse))
    assert [e["event"] for e in recorder.events] == ["deny"]
    assert audit_events(root) == recorder.events  # the log got the same event

    class Broken:
        @hookimpl
        def isolator_check_package(self, name: str) -> str | None:
            raise RuntimeError(f"policy database unreachable while checking {name}")

    store = PluginStore(root, policy=Policy.load(root, [Broken()]))
    with pytest.raises(PolicyError, match="isolator_check_package: raised RuntimeError"):
        store.install("pypi:openhands-plugin-greetings", **offline(example_wheelhouse))
    assert snapshot(root) == {"plugins": [], "pointers": {}, "wheelhouse": []}

    class Misspelt:
        @hookimpl
        def isolator_check_pakage(self, name: str) -> str | None:
            return None

    with pytest.raises(PolicyError, match="isolator_check_pakage"):
        Policy.load(root, [Misspelt()])

    class WrongArgument:
        @hookimpl
        def isolator_check_index(self, index_url: str) -> str | None:
            return None

    with pytest.raises(PolicyError, match="index_url"):
        Policy.load(root, [WrongArgument()])


def test_a_policy_plugin_from_a_host_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    module = "isolator_test_policy_entry_point"
    (site / f"{module}-1.0.dist-info").mkdir(parents=True)
    (site / f"{module}-1.0.dist-info" / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (site / f"{module}-1.0.dist-info" / "entry_points.txt").write_text(
        f"[isolator.policy]\nno-github = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent("""
        from isolator import hookimpl

        @hookimpl
        def isolator_check_source(source):
            if source.source.startswith("github:"):
                return "github sources are not allowed on this host"
            return None
    """))
    monkeypatch.syspath_prepend(str(site))
    policy = Policy.load(tmp_path / "store")
    assert policy.plugins == ["audit-log", "no-github"]
    with pytest.raises(PolicyDeniedError, match="github sources are not allowed on this host"):
        PluginStore(tmp_path / "store", policy=policy).install("github:example/repo")
    policy.check_source(PluginSource("pypi:anything"))


# ---- profiles --------------------------------------------------------------------------------


def test_profile_choice_file_plugins_and_minimum(tmp_path: Path) -> None:
    assert Policy.load(tmp_path / "none").profile_for("any", "off") == "off"

    root = tmp_path / "store"
    write_policy(root, {"profile": {"default": "standard", "minimum": "standard",
                                    "plugins": {"untrusted-*": "strict", "trusted-*": "off"}}})
    policy = Policy.load(root)
    assert policy.profile_for("untrusted-scanner", "off") == "strict"
    assert policy.profile_for("other", "strict") == "standard"  # the file's default decides
    assert policy.profile_for("trusted-tool", "strict") == "standard"  # off, raised to minimum

    # An explicit plugin is asked before the file; the minimum still applies to its answer.
    assert Policy.load(root, [Recorder(profile="strict")]).profile_for("x", "off") == "strict"
    assert Policy.load(root, [Recorder(profile="off")]).profile_for("x", "off") == "standard"
    assert Policy.load(root, [Recorder(profile=None)]).profile_for("untrusted-1", "off") == \
        "strict"

    with pytest.raises(PolicyError, match=r"a policy hook chose for plugin 'x'.*'paranoid' "
                       r"is not a profile; expected one of off, standard, strict"):
        Policy.load(root, [Recorder(profile="paranoid")]).profile_for("x", "off")
    with pytest.raises(PolicyError, match="'sometimes' is not a profile"):
        policy.profile_for("x", "sometimes")

    write_policy(root, {"profile": {"minimum": "strict"}})
    assert Policy.load(root).profile_for("x", "standard") == "strict"


# ---- bad policy files ------------------------------------------------------------------------

BAD_POLICIES = [
    ('{"sources": {"deny": ["git:*"]', r"is not valid JSON: .* \(line 1, column \d+\)"),
    ('["pypi:*"]', r"the top level must be an object, not list"),
    ({"source": {"deny": ["git:*"]}}, r"unknown key 'source'; expected 'sources' or"),
    ({"sources": {"allw": ["pypi:*"]}}, r"unknown key 'sources.allw'; expected 'sources.allow' "
                                         r"or 'sources.deny'"),
    ({"sources": {"allow": "pypi:*"}}, r"sources.allow must be a list of non-empty strings, "
                                       r"not str"),
    ({"sources": {"deny": ["pip:*"]}}, r"sources.deny entry 'pip:\*' must start with one of "
                                       r"pypi:, git:"),
    ({"packages": {"deny": ["requests<<2"]}}, r"packages.deny entry 'requests<<2' is not NAME "
                                             r"or NAME with a version specifier"),
    ({"packages": {"deny": ["requests[socks]"]}}, r"has extras, a marker or a URL"),
    ({"indexes": []}, r"indexes must be an object"),
    ({"profile": {"default": "paranoid"}}, r"profile.default is \"paranoid\"; expected one of "
                                           r"off, standard, strict"),
    ({"profile": {"plugins": {"x-*": None}}}, r"profile.plugins.x-\* is null; expected one of"),
    ({"profile": {"minimum": "strict", "maximum": "off"}}, r"unknown key 'profile.maximum'"),
]


def test_a_bad_policy_file_is_a_clear_error_and_changes_nothing(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    root = tmp_path / "store"
    PluginStore(root).install("pypi:openhands-plugin-greetings", **offline(example_wheelhouse))
    before = snapshot(root)
    for content, message in BAD_POLICIES:
        path = write_policy(root, content)
        store = PluginStore(root)
        for attempt in (
            lambda s=store: s.install("pypi:openhands-plugin-welcome",
                                      **offline(example_wheelhouse)),
            lambda s=store: s.upgrade("greetings"),
            lambda s=store: s.reinstall("greetings"),
            lambda s=store: s.uninstall("greetings"),
        ):
            with pytest.raises(PolicyError, match=message) as error:
                attempt()
            assert str(error.value).startswith(f"{path}: "), error.value
            assert isinstance(error.value, StoreError)
        assert snapshot(root) == before, content
        assert [p.name for p in store.list_installed()] == ["greetings"]  # reading still works

    # The CLI says it in one line and exits 1.
    write_policy(root, {"sources": {"allw": []}})
    result = subprocess.run([*OHP, "uninstall", "greetings", "--root", str(root)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "policy.json: unknown key 'sources.allw'" in result.stderr
    assert snapshot(root) == before


def test_a_denied_install_from_the_cli_is_one_line(tmp_path: Path) -> None:
    root = tmp_path / "store"
    write_policy(root, {"sources": {"deny": ["github:*"]}})
    result = subprocess.run([*OHP, "install", "github:example/repo", "--root", str(root)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1
    assert result.stderr == ("ohp: error: source 'github:example/repo': denied by policy: "
                             "policy.json sources.deny has 'github:*'\n")


# ---- the audit log ---------------------------------------------------------------------------


def test_audit_events_for_install_reinstall_uninstall_and_deny(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    root = tmp_path / "store"
    store = PluginStore(root)
    installed = store.install("pypi:openhands-plugin-welcome", **offline(example_wheelhouse))
    store.install("pypi:openhands-plugin-welcome", **offline(example_wheelhouse))  # a no-op
    store.upgrade("welcome")  # the same files: a no-op too
    reinstalled = store.reinstall("welcome")
    content = store.install(str(EXAMPLES_DIR / "content-only-plugin"))
    store.uninstall("welcome")
    store.uninstall("notes")

    log = root / "audit.jsonl"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    events = audit_events(root)
    assert [(e["event"], e["plugin"]) for e in events] == [
        ("install", "welcome"), ("reinstall", "welcome"), ("install", "notes"),
        ("uninstall", "welcome"), ("uninstall", "notes")]
    first = events[0]
    assert list(first)[:4] == ["time", "event", "pid", "uid"]
    assert first["time"].endswith("Z") and len(first["time"]) == len("2025-01-01T00:00:00.000000Z")
    assert (first["pid"], first["uid"]) == (os.getpid(), os.getuid())
    assert {k: first[k] for k in ("plugin", "package", "kind", "source", "version",
                                  "generation", "distributions")} == {
        "plugin": "welcome", "package": "openhands-plugin-welcome", "kind": "package",
        "source": "pypi:openhands-plugin-welcome", "version": "1.0.0",
        "generation": installed.generation, "distributions": 2}
    assert events[1]["generation"] == reinstalled.generation != installed.generation
    assert events[2]["kind"] == "content-only" and events[2]["distributions"] == 0
    assert events[2]["generation"] == content.generation
    assert events[3]["generation"] == reinstalled.generation

    # Fields are made JSON-ready; the keys the log sets itself cannot be given.
    policy = store.policy
    policy.audit("custom", path=tmp_path, names={"b", "a"}, source=PluginSource("pypi:x"))
    custom = audit_events(root, "custom")[0]
    assert (custom["path"], custom["names"]) == (str(tmp_path), ["a", "b"])
    assert custom["source"]["source"] == "pypi:x"
    with pytest.raises(ValueError, match=r"\['pid'\]"):
        policy.audit("custom", pid=1)


_WRITER = """
import os, sys, threading, time
from isolator import Policy

root, worker, threads, per, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \\
    int(sys.argv[4]), sys.argv[5]
policy = Policy.load(root)
while not os.path.exists(go):
    time.sleep(0.001)

def write(thread):
    for seq in range(per):
        size = (seq % 10) * 1500
        policy.audit("test", worker=worker, thread=thread, seq=seq, pad="x" * size)

pool = [threading.Thread(target=write, args=(t,)) for t in range(threads)]
for t in pool:
    t.start()
for t in pool:
    t.join()
"""


def test_the_audit_log_is_complete_under_concurrent_processes_and_threads(
    tmp_path: Path
) -> None:
    root = tmp_path / "store"
    go = tmp_path / "go"
    processes, threads, per = 8, 4, 50  # 8 processes x 200 events
    children = [subprocess.Popen([sys.executable, "-c", _WRITER, str(root), str(worker),
                                  str(threads), str(per), str(go)])
                for worker in range(processes)]
    # This process writes too, from its own threads, through its own Policy.
    here = Policy.load(root)

    def write(thread: int) -> None:
        for seq in range(per):
            here.audit("test", worker=-1, thread=thread, seq=seq, pad="y" * (seq * 300))

    pool = [threading.Thread(target=write, args=(t,)) for t in range(threads)]
    go.touch()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    for child in children:
        assert child.wait(timeout=120) == 0

    raw = (root / "audit.jsonl").read_bytes()
    assert raw.endswith(b"\n")
    lines = raw.split(b"\n")[:-1]
    assert len(lines) == (processes + 1) * threads * per
    seen = set()
    for line in lines:
        event = json.loads(line)  # a torn or interleaved line would not parse
        key = (event["worker"], event["thread"], event["seq"])
        expected = (event["seq"] % 10) * 1500 if event["worker"] >= 0 else event["seq"] * 300
        assert len(event["pad"]) == expected, key
        seen.add(key)
    assert len(seen) == len(lines)  # none lost, none doubled
    assert stat.S_IMODE((root / "audit.jsonl").stat().st_mode) == 0o600


# ---- matching, without a store ---------------------------------------------------------------


def test_how_sources_packages_and_indexes_are_matched(tmp_path: Path) -> None:
    root = tmp_path / "store"
    write_policy(root, {
        "sources": {"deny": ["git:https://github.com/evil/*", "github:bad/*", "sdist:*"]},
        "packages": {"deny": ["Evil_Pkg", "requests<2.20", "typo-squat-*>=0"]},
        "indexes": {"deny": ["https://mirror.example.com/*"]},
    })
    policy = Policy.load(root)
    for source in ("github:evil/tool", "git+https://github.com/evil/tool.git", "github:bad/x",
                   str(tmp_path / "pkg-1.0.tar.gz")):
        with pytest.raises(PolicyDeniedError):
            policy.check_source(PluginSource(source))
    policy.check_source(PluginSource("github:good/tool"))
    for name, version in (("evil-pkg", "1"), ("EVIL.PKG", "2"), ("requests", "2.19.1"),
                          ("typo-squat-requests", "0.1")):
        with pytest.raises(PolicyDeniedError):
            policy.check_package("p", name, version, None)
    policy.check_package("p", "requests", "2.31.0", None)
    policy.check_package("p", "evil-pkg-not", "1", None)
    with pytest.raises(PolicyDeniedError):
        policy.check_index("p", "https://mirror.example.com/simple/")
    policy.check_index("p", "https://pypi.org/simple")
    assert [e["what"] for e in audit_events(root, "deny")] == ["source"] * 4 + ["package"] * 4 + [
        "index"]


# ---- permission validators: the whole string, a trailing newline included ----------------------


@pytest.mark.parametrize(("kind", "good", "bad"), [
    ("environment", "HOME", "HOME\n"),
    ("environment", "API_TOKEN", "API_TOKEN\n\n"),
    ("capabilities", "llm.complete", "llm.complete\n"),
    ("network", "api.example.com", "api.example.com\n"),
    ("network", "api.example.com:443", "api.example.com:443\n"),
    ("network", "[::1]:8080", "[::1]\n:8080"),
    ("network", "*", "*\n"),
    ("network", "api.example.com:*", "api.example.com:²"),  # str.isdigit, not a port
])
def test_a_permission_with_a_trailing_newline_is_refused(kind: str, good: str, bad: str) -> None:
    """Each validator matches the whole item: ``$`` alone let ``'HOME\\n'`` through as a
    variable name (it matches before a final newline)."""
    assert getattr(Permissions.from_dict({kind: [good]}, "plugin.json"), kind) == (good,)
    with pytest.raises(PermissionsError, match="expected"):
        Permissions.from_dict({kind: [bad]}, "plugin.json")
