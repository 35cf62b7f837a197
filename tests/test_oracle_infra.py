"""Tests of the test infrastructure: finding ../shared, cache keys, the oracle itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import oracle
import pytest

# -- the ISOLATOR_SHARED setting ---------------------------------------------------------------


def _fake_shared(root: Path) -> Path:
    """A minimal shared tree: what shared_dir() checks for, and a two-plugin corpus."""
    (root / "oracle").mkdir(parents=True)
    (root / "oracle" / "setup.sh").write_text("#!/bin/sh\necho setup v1\n")
    (root / "oracle" / "oh_dump.py").write_text("print('dump v1')\n")
    corpus = root / "corpus"
    for name in ("alpha", "beta"):
        (corpus / name / "skills" / "s").mkdir(parents=True)
        (corpus / name / "skills" / "s" / "SKILL.md").write_text(f"---\nname: s\n---\n{name}\n")
    (corpus / "INDEX.tsv").write_text("path\tsource_repo\nalpha/\tx\nbeta/\ty\n\n")
    return root


def test_shared_dir_default_is_beside_the_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(oracle.SHARED_ENV, raising=False)
    assert oracle.configured_shared_path() == oracle.REPO_ROOT.parent / "shared"


def test_shared_dir_follows_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shared = _fake_shared(tmp_path / "elsewhere")
    monkeypatch.setenv(oracle.SHARED_ENV, str(shared))
    assert oracle.shared_dir() == shared
    assert oracle.require_shared() == shared
    assert oracle.corpus_dirs() == [shared / "corpus" / "alpha", shared / "corpus" / "beta"]


def test_incomplete_shared_dir_is_absent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shared = _fake_shared(tmp_path / "shared")
    (shared / "corpus" / "INDEX.tsv").unlink()
    monkeypatch.setenv(oracle.SHARED_ENV, str(shared))
    assert oracle.shared_dir() is None
    with pytest.raises(oracle.OracleError, match=r"INDEX\.tsv"):
        oracle.corpus_dirs()


@pytest.mark.parametrize("ci", [None, "false"])
def test_missing_shared_skips_outside_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str | None
) -> None:
    monkeypatch.setenv(oracle.SHARED_ENV, str(tmp_path / "missing"))
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    assert oracle.shared_dir() is None
    with pytest.raises(pytest.skip.Exception, match="missing"):
        oracle.require_shared()


def test_missing_shared_fails_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(oracle.SHARED_ENV, str(tmp_path / "missing"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        oracle.require_shared()


def test_cache_dir_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(oracle.CACHE_ENV, str(tmp_path / "c"))
    assert oracle.cache_dir() == tmp_path / "c"
    monkeypatch.delenv(oracle.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert oracle.cache_dir() == tmp_path / "xdg" / "isolator-tests"


# -- cache keys ----------------------------------------------------------------------------------


def test_tree_digest_tracks_content_not_mtime(tmp_path: Path) -> None:
    tree = _fake_shared(tmp_path / "shared") / "corpus"
    skill = tree / "alpha" / "skills" / "s" / "SKILL.md"
    first = oracle.tree_digest(tree)

    os.utime(skill, (1_000_000, 1_000_000))
    assert oracle.tree_digest(tree) == first, "mtimes differ between clones: not part of the key"

    original = skill.read_bytes()
    skill.write_bytes(original.replace(b"alpha", b"ALPHA"))  # same size, other content
    assert oracle.tree_digest(tree) != first
    skill.write_bytes(original)
    assert oracle.tree_digest(tree) == first

    (tree / "alpha" / "commands").mkdir()  # an empty folder can change what a loader does
    assert oracle.tree_digest(tree) != first
    (tree / "alpha" / "commands").rmdir()

    skill.rename(skill.with_name("skill.md"))
    assert oracle.tree_digest(tree) != first


def test_tree_digest_is_independent_of_location(tmp_path: Path) -> None:
    a = _fake_shared(tmp_path / "a") / "corpus"
    b = _fake_shared(tmp_path / "b") / "corpus"
    assert oracle.tree_digest(a) == oracle.tree_digest(b)
    (b / "alpha" / "link").symlink_to("../beta")
    assert oracle.tree_digest(a) != oracle.tree_digest(b)


def test_cache_keys_follow_their_inputs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(oracle.CACHE_ENV, str(tmp_path / "cache"))
    shared = _fake_shared(tmp_path / "shared")
    venv, dump = oracle.venv_key(shared), oracle.corpus_oracle_key(shared)

    (shared / "corpus" / "beta" / "skills" / "s" / "SKILL.md").write_text("changed\n")
    assert oracle.venv_key(shared) == venv
    assert oracle.corpus_oracle_key(shared) != dump

    dump = oracle.corpus_oracle_key(shared)
    (shared / "oracle" / "oh_dump.py").write_text("print('dump v2')\n")
    assert oracle.venv_key(shared) == venv
    assert oracle.corpus_oracle_key(shared) != dump

    dump = oracle.corpus_oracle_key(shared)
    (shared / "oracle" / "setup.sh").write_text("#!/bin/sh\necho setup v2\n")
    assert oracle.venv_key(shared) != venv
    assert oracle.corpus_oracle_key(shared) != dump


def test_oracle_env_is_fixed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(oracle.CACHE_ENV, str(tmp_path / "cache"))
    env = oracle.oracle_env()
    monkeypatch.setenv("PATH", "/somewhere/else")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert oracle.oracle_env() == env
    assert env["LANG"] == "C.UTF-8"
    assert Path(env["OH_PERSISTENCE_DIR"]).is_dir()


# -- building (with a stand-in setup.sh: this tests the caching, not the SDK) --------------------

_FAKE_SETUP = """#!/usr/bin/env bash
set -eu
echo run >> "$(dirname "$0")/runs.log"
[ -e "$(dirname "$0")/fail" ] && { echo "setup exploded" >&2; exit 3; }
sleep 0.5
mkdir -p "$1/bin"
printf '#!/bin/sh\\necho %s\\n' "$VERSION" > "$1/bin/python"
chmod +x "$1/bin/python"
"""


def _fake_oracle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str) -> Path:
    shared = _fake_shared(tmp_path / "shared")
    setup = shared / "oracle" / "setup.sh"
    setup.write_text(_FAKE_SETUP.replace("$VERSION", version))
    monkeypatch.setenv(oracle.CACHE_ENV, str(tmp_path / "cache"))
    return shared


def _runs(shared: Path) -> int:
    log = shared / "oracle" / "runs.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_failed_build_raises_and_is_retried(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shared = _fake_oracle(tmp_path, monkeypatch, oracle.SDK_VERSION)
    (shared / "oracle" / "fail").touch()
    with pytest.raises(oracle.OracleError, match="setup exploded"):
        oracle.oracle_python(shared)
    (shared / "oracle" / "fail").unlink()

    python = oracle.oracle_python(shared)
    assert python.parent.parent.name == f"oracle-venv-{oracle.venv_key(shared)}"
    assert oracle.oracle_python(shared) == python
    assert _runs(shared) == 2, "a built venv is reused, a failed one rebuilt"


def test_wrong_sdk_version_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shared = _fake_oracle(tmp_path, monkeypatch, "0.0.1")
    with pytest.raises(oracle.OracleError, match=r"'0\.0\.1', expected"):
        oracle.oracle_python(shared)


def test_concurrent_builds_build_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shared = _fake_oracle(tmp_path, monkeypatch, oracle.SDK_VERSION)
    code = "import sys, oracle; print(oracle.oracle_python(oracle.Path(sys.argv[1])))"
    env = {**os.environ, "PYTHONPATH": str(Path(oracle.__file__).parent)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(shared)], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outputs = {proc.communicate(timeout=60)[0].strip() for proc in procs}
    assert [proc.returncode for proc in procs] == [0, 0, 0]
    assert len(outputs) == 1
    assert _runs(shared) == 1


# -- the environment-leak guard ------------------------------------------------------------------


def test_environ_leak_is_reported(pytester: pytest.Pytester) -> None:
    here = Path(__file__).parent
    pytester.makeconftest((here / "conftest.py").read_text(encoding="utf-8"))
    pytester.makepyfile(oracle=(here / "oracle.py").read_text(encoding="utf-8"))
    pytester.makepyfile(
        test_leaks=textwrap.dedent(
            """
            import os

            def test_leaks():
                os.environ["ISOLATOR_LEAK_PROBE"] = "1"

            def test_clean(monkeypatch):
                monkeypatch.setenv("ISOLATOR_LEAK_PROBE", "2")
                assert "ISOLATOR_LEAK_PROBE" in os.environ
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.re_match_lines(
        [r".*leaked changes to os\.environ: added \['ISOLATOR_LEAK_PROBE'\]"]
    )


# -- the oracle itself (needs ../shared) ---------------------------------------------------------


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


@pytest.fixture(scope="module")
def small_dumps(
    oracle_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, dict[str, Any]]]:
    """A few small plugin directories and the oracle's records of them, from one SDK process
    (importing the SDK alone takes several seconds)."""
    root = tmp_path_factory.mktemp("plugins")
    tiny = root / "tiny"
    _write(
        tiny / ".claude-plugin" / "plugin.json",
        '{"name": "tiny-plugin", "version": "0.3.0", "author": "Ada <ada@example.org>"}',
    )
    _write(
        tiny / "skills" / "hello" / "SKILL.md",
        """
        ---
        name: hello
        description: Says hello.
        triggers: [hello]
        ---
        Say hello.
        """,
    )
    _write(tiny / "commands" / "greet.md", "---\ndescription: Greets.\n---\nGreet $ARGUMENTS.\n")
    _write(root / "broken" / ".claude-plugin" / "plugin.json", "{not json")
    envy = root / "envy"
    _write(envy / ".claude-plugin" / "plugin.json", '{"name": "envy"}')
    servers = {"s": {"command": "x", "args": ["${LANG}", "${ISOLATOR_UNSET_VAR}", "${Y:-d}"]}}
    _write(envy / ".mcp.json", json.dumps({"mcpServers": servers}))
    names = ("tiny", "broken", "absent", "envy")
    return root, oracle.oracle_dump([root / name for name in names])


@pytest.mark.corpus
def test_oracle_dumps_a_tiny_plugin(small_dumps: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    root, records = small_dumps
    record = records[str(root / "tiny")]
    assert record["ok"], record
    plugin: dict[str, Any] = record["plugin"]
    assert plugin["manifest"]["name"] == "tiny-plugin"
    assert plugin["manifest"]["version"] == "0.3.0"
    assert plugin["manifest"]["author"]["email"] == "ada@example.org"
    assert [s["name"] for s in plugin["skills"]] == ["hello"]
    assert plugin["skills"][0]["source"] == "${PLUGIN_DIR}/skills/hello/SKILL.md"
    assert plugin["skills"][0]["trigger"]["keywords"] == ["hello"]
    assert [c["name"] for c in plugin["commands"]] == ["greet"]
    assert plugin["commands"][0]["description"] == "Greets."


@pytest.mark.corpus
def test_oracle_reports_load_errors(small_dumps: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    root, records = small_dumps
    broken = records[str(root / "broken")]
    assert (broken["ok"], broken["dir"]) == (False, str(root / "broken"))
    assert broken["error"].startswith("ValueError: Invalid JSON")
    assert records[str(root / "absent")]["error"].startswith("FileNotFoundError")


@pytest.mark.corpus
def test_oracle_expands_variables_from_its_fixed_env(
    small_dumps: tuple[Path, dict[str, dict[str, Any]]],
) -> None:
    """Why the oracle runs with oracle_env(): the SDK fills ``${VAR}`` in MCP configs from it."""
    root, records = small_dumps
    args = records[str(root / "envy")]["plugin"]["mcp_config"]["s"]["args"]
    assert args == [oracle.oracle_env()["LANG"], "${ISOLATOR_UNSET_VAR}", "${Y:-d}"]


@pytest.mark.corpus
def test_corpus_oracle_covers_the_index(
    shared_dir: Path, corpus_oracle: dict[str, dict[str, Any]]
) -> None:
    root = oracle.corpus_root(shared_dir)
    expected = {d.relative_to(root).as_posix() for d in oracle.corpus_dirs(shared_dir)}
    assert set(corpus_oracle) == expected
    assert all(record["dir"] == rel for rel, record in corpus_oracle.items())
    assert sum(record["ok"] for record in corpus_oracle.values()) >= len(expected) * 0.9
    # The cached file is what a second session reads instead of running the SDK again.
    assert oracle.corpus_oracle_path(shared_dir).is_file()
    assert oracle.corpus_oracle(shared_dir) == corpus_oracle
