"""Lock files, sync and verify: real uv and venvs, from the example wheelhouse."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from helpers_build import make_wheel
from wheelhouse import EXAMPLES_DIR

from isolator import HashMismatchError, PluginNotFoundError, PluginStore, ResolutionError
from isolator._errors import CommandError, LockfileError
from isolator.metadata._distinfo import find_site_packages
from isolator.store._lockfile import dumps_lock, loads_lock, parse_lock, read_lock, write_lock

if TYPE_CHECKING:
    from pathlib import Path

OHP = [sys.executable, "-m", "isolator.cli"]
CONTENT = EXAMPLES_DIR / "content-only-plugin"
SHA_A = "a" * 64


def offline(wheelhouse: Path) -> dict[str, Any]:
    return {"find_links": [wheelhouse], "no_index": True}


def generations(store: PluginStore) -> dict[str, str]:
    return {p.name: p.generation for p in store.list_installed() if p.brought_by is None}


def gen_dirs(root: Path) -> list[str]:
    return sorted(f"{d.parent.name}/{d.name}" for d in (root / "plugins").glob("*/gen-*"))


def ohp(*args: str, root: Path, check: bool = True,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [*OHP, *args, "--root", str(root)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False,
                            input=stdin)
    if check and result.returncode != 0:
        raise AssertionError(f"{argv} exited {result.returncode}: {result.stderr}")
    return result


@pytest.fixture
def source_store(tmp_path: Path, example_wheelhouse: Path) -> PluginStore:
    """welcome (which brings greetings), shout (and its textkit) and a content-only plugin."""
    store = PluginStore(tmp_path / "source")
    for package in ("openhands-plugin-welcome", "openhands-plugin-shout"):
        store.install(f"pypi:{package}", **offline(example_wheelhouse))
    store.install(str(CONTENT))
    return store


# ---- lock and sync -----------------------------------------------------------------------------


def test_lock_round_trip_and_sync_into_an_empty_store(
    tmp_path: Path, source_store: PluginStore
) -> None:
    data = source_store.lock()
    assert data["version"] == 1 and sorted(data["plugins"]) == ["notes", "shout", "welcome"]
    welcome = data["plugins"]["welcome"]
    assert welcome["kind"] == "package" and welcome["package"] == "openhands-plugin-welcome"
    assert [d["name"] for d in welcome["distributions"]] == [
        "openhands-plugin-greetings", "openhands-plugin-welcome"]
    assert set(welcome["distributions"][0]) == {"name", "version", "file", "sha256", "url"}
    assert welcome["python"].count(".") == 1
    notes = data["plugins"]["notes"]
    assert notes["kind"] == "content-only" and len(notes["content_sha256"]) == 64

    # Stable: the same store writes the same bytes; the file reads back to the same data.
    text = dumps_lock(data)
    assert text == dumps_lock(source_store.lock()) and text.endswith("}\n")
    write_lock(data, tmp_path / "plugins.lock")
    assert (tmp_path / "plugins.lock").read_text() == text
    assert read_lock(tmp_path / "plugins.lock").to_dict() == data
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    target = PluginStore(tmp_path / "target")
    report = target.sync(tmp_path / "plugins.lock")
    assert report.installed == ("notes", "shout", "welcome")
    assert report.replaced == report.removed == report.unchanged == ()
    assert dumps_lock(target.lock()) == text
    assert target.verify().ok
    assert target.load("greetings").installation.brought_by == "welcome"  # type: ignore[union-attr]
    assert target.get("shout").python == source_store.get("shout").python

    # Synced again: nothing to do, nothing touched.
    before = generations(target)
    again = target.sync(data)
    assert again.unchanged == ("notes", "shout", "welcome") and not again.changed
    assert generations(target) == before


def test_sync_replaces_changed_plugins_removes_extra_ones_and_keeps_the_rest(
    tmp_path: Path, example_wheelhouse: Path, source_store: PluginStore
) -> None:
    links = tmp_path / "links"
    links.mkdir()
    make_wheel(links, "openhands-plugin-greetings", "1.1.0", files={
        "openhands_plugin_greetings/__init__.py": "",
        "openhands_plugin_greetings/skills/hello/SKILL.md": "---\nname: hello\n"
                                                             "description: Say hi\n---\nHi\n",
    }, entry_points={"openhands.plugins": {"greetings": "openhands_plugin_greetings"}})
    target = PluginStore(tmp_path / "target")
    shout = target.install("pypi:openhands-plugin-shout", **offline(example_wheelhouse))
    target.install("pypi:openhands-plugin-greetings", **offline(links))
    target.install("pypi:openhands-plugin-whisper", **offline(example_wheelhouse))

    lock = source_store.lock()
    greetings = PluginStore(tmp_path / "other")
    greetings.install("pypi:openhands-plugin-greetings", **offline(example_wheelhouse))
    lock["plugins"]["greetings"] = greetings.lock()["plugins"]["greetings"]

    report = target.sync(lock)
    assert report.installed == ("notes", "welcome")
    assert report.replaced == ("greetings",)
    assert report.removed == ("whisper",)
    assert report.unchanged == ("shout",)
    assert target.get("shout").generation == shout.generation
    assert target.get("greetings").version == "1.0.0"
    assert dumps_lock(target.lock()) == dumps_lock(lock)
    with pytest.raises(PluginNotFoundError):
        target.get("whisper")
    assert target.verify().ok


def test_sync_with_a_tampered_hash_in_the_middle_is_refused_and_changes_nothing(
    tmp_path: Path, example_wheelhouse: Path, source_store: PluginStore
) -> None:
    target = PluginStore(tmp_path / "target")
    target.install("pypi:openhands-plugin-whisper", **offline(example_wheelhouse))
    target.install("pypi:openhands-plugin-greetings", **offline(example_wheelhouse))
    before, dirs = generations(target), gen_dirs(target.root)

    lock = source_store.lock()
    # notes (first) and welcome (last) are fine; shout (in the middle) names other bytes.
    textkit = lock["plugins"]["shout"]["distributions"][0]
    assert textkit["name"] == "example-textkit"
    textkit["sha256"] = SHA_A
    with pytest.raises(HashMismatchError, match=r"expected a{64}"):
        target.sync(lock)
    assert generations(target) == before and gen_dirs(target.root) == dirs
    assert not list((target.root / "tmp").iterdir())
    assert not list((target.root / "wheelhouse").glob(f"{SHA_A}/*"))  # the bytes were refused
    assert target.verify().ok

    # A content-only plugin whose source no longer has the locked content: refused too.
    lock = source_store.lock()
    lock["plugins"]["notes"]["content_sha256"] = SHA_A
    with pytest.raises(HashMismatchError, match="plugin 'notes'"):
        target.sync(lock)
    assert generations(target) == before and gen_dirs(target.root) == dirs


def test_a_failure_after_every_file_was_checked_leaves_each_plugin_old_or_new(
    tmp_path: Path, example_wheelhouse: Path, source_store: PluginStore,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    target = PluginStore(tmp_path / "target")
    target.install("pypi:openhands-plugin-whisper", **offline(example_wheelhouse))
    old_whisper = target.get("whisper").generation
    real_install = target.backend.install
    calls: list[Path] = []

    def failing_second_install(venv: Path, *args: Any, **kwargs: Any) -> None:
        calls.append(venv)
        if len(calls) == 2:
            raise CommandError(["uv", "pip", "install"], 2, "", "error: injected failure")
        real_install(venv, *args, **kwargs)

    monkeypatch.setattr(target.backend, "install", failing_second_install)
    with pytest.raises(CommandError, match="injected failure"):
        target.sync(source_store.lock())
    # shout was installed (new), welcome failed (absent, as before), whisper was not removed
    # (old): no half-built generation anywhere.
    assert generations(target) == {"notes": target.get("notes").generation,
                                   "shout": target.get("shout").generation,
                                   "whisper": old_whisper}
    assert sorted(gen_dirs(target.root)) == sorted(
        f"{n}/{g}" for n, g in generations(target).items())
    assert target.verify().ok
    for name in ("notes", "shout", "whisper"):
        target.load(name)
    monkeypatch.setattr(target.backend, "install", real_install)
    report = target.sync(source_store.lock())
    assert report.installed == ("welcome",) and report.removed == ("whisper",)


def test_sync_finds_locked_files_in_find_links_and_refuses_what_it_cannot_find(
    tmp_path: Path, example_wheelhouse: Path, source_store: PluginStore
) -> None:
    lock = source_store.lock()
    moved = tmp_path / "moved"
    moved.mkdir()
    for entry in lock["plugins"].values():
        for dist in entry.get("distributions", []):
            shutil.copy(example_wheelhouse / dist["file"], moved)
            dist["url"] = (tmp_path / "gone" / dist["file"]).as_uri()
    target = PluginStore(tmp_path / "target")
    with pytest.raises(ResolutionError, match="not in a find-links directory"):
        target.sync(lock)
    assert generations(target) == {}
    report = target.sync(lock, find_links=[moved])
    assert report.installed == ("notes", "shout", "welcome")
    assert dumps_lock(target.lock()) == dumps_lock(lock)  # the lock's URLs are kept


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_content_only_git_plugin_is_synced_at_its_locked_commit(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(CONTENT, repo)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "trunk")
    git("add", "-A")
    git("commit", "-q", "-m", "one")
    source = PluginStore(tmp_path / "source")
    source.install(f"git+{repo.as_uri()}")
    lock = source.lock()
    assert len(lock["plugins"]["notes"]["git_commit"]) == 40
    # The branch moves on; the lock still names the first commit, and sync checks it out.
    (repo / "commands" / "note.md").write_text("changed\n")
    git("commit", "-q", "-am", "two")
    target = PluginStore(tmp_path / "target")
    assert target.sync(lock).installed == ("notes",)
    assert dumps_lock(target.lock()) == dumps_lock(lock)
    assert target.verify().ok


# ---- verify ------------------------------------------------------------------------------------


def test_verify_reports_modified_missing_and_unexpected_files(
    source_store: PluginStore,
) -> None:
    clean = source_store.verify()
    assert clean.ok and clean.plugins == ("notes", "shout", "welcome") and clean.files > 20
    assert clean.to_dict()["changes"] == []

    shout = source_store.get("shout")
    assert shout.venv is not None
    site = find_site_packages(shout.venv)

    def rewrite(path: Path, text: str) -> None:
        # A new inode: the venv's files are hardlinks into uv's cache and the bytecode pool.
        path.unlink()
        path.write_text(text)

    rewrite(site / "openhands_plugin_shout" / "tools.py", "import os  # changed\n")
    (site / "openhands_plugin_shout" / "skills" / "shout" / "SKILL.md").unlink()
    (site / "evil.pth").write_text("import os\n")
    init_py = site / "openhands_plugin_shout" / "__init__.py"
    init_py.unlink()
    init_py.symlink_to("/dev/zero")  # never read: not a regular file
    (site / "openhands_plugin_shout" / "extra.py").write_text("")
    pyc = next((site / "example_textkit" / "__pycache__").glob("__init__.*.pyc"))
    tag = pyc.name.split(".")[1]
    rewrite(pyc, "not bytecode")
    # A file changed together with its RECORD row is still caught: the wheel's RECORD decides.
    init = site / "example_textkit" / "__init__.py"
    rewrite(init, "print('hi')\n")
    record = next(site.glob("example_textkit-*.dist-info")) / "RECORD"
    rows = [r if not r.startswith("example_textkit/__init__.py,") else
            "example_textkit/__init__.py,sha256=x,1" for r in record.read_text().splitlines()]
    rewrite(record, "\n".join(rows) + "\n")
    notes = source_store.get("notes").content_dir
    rewrite(notes / "commands" / "note.md", "changed")
    (notes / "README.md").unlink()
    (notes / "new.md").write_text("new")

    report = source_store.verify()
    assert not report.ok
    got = {(c.plugin, c.distribution, c.path, c.change) for c in report.changes}
    shout_pkg, textkit = "openhands-plugin-shout", "example-textkit"
    assert got == {
        ("shout", shout_pkg, "openhands_plugin_shout/tools.py", "modified"),
        ("shout", shout_pkg, f"openhands_plugin_shout/__pycache__/tools.{tag}.pyc", "modified"),
        ("shout", shout_pkg, "openhands_plugin_shout/skills/shout/SKILL.md", "missing"),
        ("shout", shout_pkg, "openhands_plugin_shout/extra.py", "unexpected"),
        ("shout", None, "evil.pth", "unexpected"),
        ("shout", shout_pkg, "openhands_plugin_shout/__init__.py", "modified"),
        ("shout", shout_pkg, f"openhands_plugin_shout/__pycache__/__init__.{tag}.pyc",
         "modified"),
        ("shout", textkit, f"example_textkit/__pycache__/{pyc.name}", "modified"),
        ("shout", textkit, "example_textkit/__init__.py", "modified"),
        ("shout", textkit, f"{record.parent.name}/RECORD", "modified"),
        ("notes", None, "commands/note.md", "modified"),
        ("notes", None, "README.md", "missing"),
        ("notes", None, "new.md", "unexpected"),
    }
    only = source_store.verify("welcome")
    assert only.ok and only.plugins == ("welcome",)
    with pytest.raises(PluginNotFoundError):
        source_store.verify("nope")
    with pytest.raises(PluginNotFoundError, match="brought by plugin 'welcome'"):
        source_store.verify("greetings")


def test_a_plugin_without_per_file_hashes_is_reported_not_verified(
    source_store: PluginStore,
) -> None:
    meta_path = source_store.get("notes").path / "metadata.json"
    meta = json.loads(meta_path.read_text())
    del meta["files"]  # as recorded before per-file hashes existed
    os.chmod(meta_path, 0o644)
    meta_path.write_text(json.dumps(meta))
    report = PluginStore(source_store.root).verify()
    assert not report.ok and report.changes == ()
    assert report.unverified == ("notes: plugin 'notes': installed before per-file hashes "
                                 "were recorded; reinstall it to record them",)


def test_verify_accepts_what_the_virtualenv_backend_seeds(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    store = PluginStore(tmp_path / "store", backend="virtualenv")
    store.install("pypi:openhands-plugin-shout", **offline(example_wheelhouse))
    assert store.verify().ok


# ---- bad lock files ----------------------------------------------------------------------------


def _good() -> dict[str, Any]:
    return {"version": 1, "plugins": {
        "shout": {
            "kind": "package", "package": "openhands-plugin-shout", "version": "1.0.0",
            "python": "3.12", "allow_build": False, "git_commit": None,
            "source": {"source": "pypi:openhands-plugin-shout"},
            "distributions": [
                {"name": "openhands-plugin-shout", "version": "1.0.0", "sha256": SHA_A,
                 "file": "openhands_plugin_shout-1.0.0-py3-none-any.whl",
                 "url": "https://example.org/openhands_plugin_shout-1.0.0-py3-none-any.whl"},
                {"name": "example-textkit", "version": "1.0.0", "sha256": "b" * 64,
                 "file": "example_textkit-1.0.0-py3-none-any.whl",
                 "url": "file:///w/example_textkit-1.0.0-py3-none-any.whl"}]},
        "notes": {"kind": "content-only", "version": "0.1.0", "content_sha256": SHA_A,
                  "source": {"source": "/srv/notes"}},
    }}


def _edit(path: str, value: Any) -> dict[str, Any]:
    """The good lock with *path* (dotted; [n] for list items) set, or deleted for ``...``."""
    data = copy.deepcopy(_good())
    *parents, last = path.replace("[", ".").replace("]", "").split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return data


D0 = "plugins.shout.distributions[0]"


@pytest.mark.parametrize(("data", "key", "reason"), [
    ([], "", "expected a JSON object, got a list"),
    (_edit("version", ...), "version", "missing"),
    (_edit("version", 2), "version", "lock format 2"),
    (_edit("version", True), "version", "lock format True"),
    (_edit("plugins", ...), "plugins", "missing"),
    (_edit("extra", 1), "extra", "unknown key"),
    (_edit("plugins", []), "plugins", "expected a JSON object"),
    (_edit("plugins.bad name", _good()["plugins"]["notes"]), "plugins.bad name",
     "not a plugin name"),
    (_edit("plugins.shout.kind", ...), "plugins.shout.kind", "missing"),
    (_edit("plugins.shout.kind", "venv"), "plugins.shout.kind", "is not 'package'"),
    (_edit("plugins.shout.source", ...), "plugins.shout.source", "missing"),
    (_edit("plugins.shout.source", {"source": "nonsense:::"}), "plugins.shout.source",
     "invalid plugin source"),
    (_edit("plugins.shout.python", "three"), "plugins.shout.python", "not a Python version"),
    (_edit("plugins.shout.allow_build", "yes"), "plugins.shout.allow_build", "true or false"),
    (_edit("plugins.shout.surprise", 1), "plugins.shout.surprise", "unknown key"),
    (_edit("plugins.shout.distributions", []), "plugins.shout.distributions", "non-empty"),
    (_edit("plugins.shout.package", "other"), "plugins.shout.package", "not among"),
    (_edit(f"{D0}.sha256", "A" * 64), f"{D0}.sha256", "is not a sha256"),
    (_edit(f"{D0}.sha256", "ab12"), f"{D0}.sha256", "is not a sha256"),
    (_edit(f"{D0}.sha256", None), f"{D0}.sha256", "expected a non-empty string, got null"),
    (_edit(f"{D0}.url", "ftp://x/y.whl"), f"{D0}.url", "https:, http: or file: URL"),
    (_edit(f"{D0}.file", "../x-1.0-py3-none-any.whl"), f"{D0}.file", "not a plain file name"),
    (_edit(f"{D0}.file", "shout.tar.gz"), f"{D0}.file", "not a wheel file name"),
    (_edit(f"{D0}.file", "example_textkit-1.0.0-py3-none-any.whl"), f"{D0}.file",
     "is a wheel of example-textkit 1.0.0"),
    (_edit(f"{D0}.name", ...), f"{D0}.name", "missing"),
    (_edit("plugins.shout.distributions[1]", _good()["plugins"]["shout"]["distributions"][0]),
     "plugins.shout.distributions[1].name", "listed twice"),
    (_edit("plugins.notes.content_sha256", "x"), "plugins.notes.content_sha256",
     "is not a sha256"),
    (_edit("plugins.notes.source", {"source": "pypi:notes"}), "plugins.notes.source",
     "a pypi source is a package"),
    (_edit("plugins.notes.source", {"source": "git+https://example.org/r.git"}),
     "plugins.notes.git_commit", "needs the commit"),
])
def test_each_bad_lock_input_names_the_file_and_the_key(
    tmp_path: Path, data: Any, key: str, reason: str
) -> None:
    path = tmp_path / "bad.lock"
    path.write_text(json.dumps(data))
    with pytest.raises(LockfileError) as caught:
        read_lock(path)
    assert caught.value.key == key and reason in caught.value.reason, str(caught.value)
    assert str(caught.value).startswith(f"{path}: {key}: " if key else f"{path}: ")


@pytest.mark.parametrize(("text", "key", "reason"), [
    ("{not json", "", "not JSON: Expecting property name enclosed in double quotes (line 1"),
    ("", "", "not JSON"),
    ('{"version": 1, "plugins": {"a": {}, "a": {}}}', "plugins.a", "listed twice"),
    ('{"version": 1, "version": 1, "plugins": {}}', "version", "appears twice"),
    ("[" * 100000, "", "not JSON"),
])
def test_bad_lock_text_names_the_file(text: str, key: str, reason: str) -> None:
    with pytest.raises(LockfileError) as caught:
        loads_lock(text, "my.lock")
    assert caught.value.path == "my.lock" and caught.value.key == key
    assert reason in caught.value.reason


def test_a_missing_lock_file_and_a_good_one(tmp_path: Path) -> None:
    with pytest.raises(LockfileError, match="no such file"):
        read_lock(tmp_path / "nope.lock")
    lock = parse_lock(_good())
    assert list(lock.to_dict()["plugins"]) == ["notes", "shout"]
    # Distributions come out sorted by name, whatever order the file has.
    assert [d.name for d in lock.plugins["shout"].distributions] == [
        "example-textkit", "openhands-plugin-shout"]
    assert loads_lock(dumps_lock(lock)).to_dict() == lock.to_dict()


# ---- the command line --------------------------------------------------------------------------


def test_cli_lock_sync_verify_and_their_exit_codes(
    tmp_path: Path, source_store: PluginStore
) -> None:
    lock_text = ohp("lock", root=source_store.root).stdout
    assert lock_text == dumps_lock(source_store.lock())
    out = tmp_path / "plugins.lock"
    assert ohp("lock", "-o", str(out), root=source_store.root).stdout == \
        f"locked 3 plugins in {out}\n"
    assert out.read_text() == lock_text

    target = tmp_path / "target"
    synced = ohp("sync", str(out), root=target)
    assert synced.stdout.splitlines() == [
        "installed notes", "installed shout", "installed welcome",
        "synced: 3 installed, 0 replaced, 0 removed, 0 unchanged"]
    assert synced.stderr == ""
    again = json.loads(ohp("sync", "-", "--json", root=target, stdin=lock_text).stdout)
    assert again == {"installed": [], "replaced": [], "removed": [],
                     "unchanged": ["notes", "shout", "welcome"]}

    ok = ohp("verify", root=target)
    assert ok.stdout.startswith("ok: 3 plugins, ") and ok.returncode == 0
    shout = PluginStore(target).get("shout")
    assert shout.venv is not None
    skill = "openhands_plugin_shout/skills/shout/SKILL.md"
    (find_site_packages(shout.venv) / skill).unlink()
    bad = ohp("verify", root=target, check=False)
    assert bad.returncode == 1
    assert bad.stdout == f"shout openhands-plugin-shout {skill} missing\n"
    assert bad.stderr.startswith("ohp: 1 changes, 0 plugins not verified")
    assert ohp("verify", "welcome", root=target).returncode == 0
    report = json.loads(ohp("verify", "shout", "--json", root=target, check=False).stdout)
    assert report["ok"] is False and report["changes"] == [
        {"plugin": "shout", "distribution": "openhands-plugin-shout",
         "path": skill, "change": "missing"}]

    broken = tmp_path / "broken.lock"
    broken.write_text(lock_text.replace('"version": 1\n', '"version": 7\n'))
    for args, expected in ((["sync", str(broken)], f"{broken}: version: lock format 7"),
                           (["verify", "nope"], "not installed")):
        failed = ohp(*args, root=target, check=False)
        assert failed.returncode == 1 and failed.stdout == ""
        assert failed.stderr.startswith("ohp: error: ") and expected in failed.stderr
        assert len(failed.stderr.splitlines()) == 1
