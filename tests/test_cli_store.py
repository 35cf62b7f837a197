"""``ohp`` store commands, run as a user runs them: a real process, real uv, a temporary root."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from wheelhouse import EXAMPLES_DIR

from isolator import IsolatorError, PluginSource, PluginStore
from isolator.store._listing import list_rows

OHP = [sys.executable, "-m", "isolator.cli"]


def ohp(*args: str, root: Path | None = None, check: bool = True,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = [*OHP, *args] + (["--root", str(root)] if root is not None else [])
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=cwd,
                            check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{argv} exited {result.returncode}: {result.stderr}")
    return result


def test_install_list_show_upgrade_reinstall_uninstall_clean(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    root = tmp_path / "store"
    wh = str(example_wheelhouse)
    done = ohp("install", "pypi:openhands-plugin-welcome", "--find-links", wh, "--no-index",
               root=root)
    assert done.stdout.startswith("installed welcome 1.0.0 (Python ")
    assert done.stderr == ""  # no progress display when stderr is not a terminal
    ohp("install", str(EXAMPLES_DIR / "content-only-plugin"), root=root)

    listed = json.loads(ohp("list", "--json", root=root).stdout)
    by_name = {item["name"]: item for item in listed}
    assert set(by_name) == {"welcome", "greetings", "notes"}
    for item in listed:
        assert {"name", "version", "package", "python"} <= set(item)
    assert by_name["welcome"]["package"] == "openhands-plugin-welcome"
    assert by_name["greetings"]["brought_by"] == "welcome"
    assert by_name["notes"]["package"] is None and by_name["notes"]["python"] is None
    table = ohp("list", root=root).stdout
    assert "brought by welcome" in table and "(content only)" in table

    shown = json.loads(ohp("show", "welcome", "--json", root=root).stdout)
    assert [s["name"] for s in shown["skills"]] == ["onboarding"]
    assert {d["name"] for d in shown["installed"]["distributions"]} == {
        "openhands-plugin-welcome", "openhands-plugin-greetings"}
    assert shown["root"].startswith(str(root))
    text = ohp("show", "greetings", root=root).stdout
    assert "brought by" in text and "resolved distributions (2)" in text
    # A path still shows a directory.
    path_shown = json.loads(ohp("show", str(EXAMPLES_DIR / "content-only-plugin"), "--json",
                                root=root).stdout)
    assert path_shown["name"] == "notes" and "installed" not in path_shown

    assert ohp("upgrade", "welcome", root=root).stdout.startswith("upgraded welcome 1.0.0")
    reinstalled = json.loads(ohp("reinstall", "welcome", "--json", root=root).stdout)
    assert reinstalled["generation"] != by_name["welcome"]["generation"]
    assert ohp("uninstall", "welcome", root=root).stdout == "uninstalled welcome 1.0.0\n"
    assert [i["name"] for i in json.loads(ohp("list", "--json", root=root).stdout)] == ["notes"]
    cleaned = json.loads(ohp("clean", "--json", root=root).stdout)
    assert cleaned["wheels"] == 2  # welcome's and greetings' wheels are no longer needed


def test_doctor_reports_backend_uv_interpreters_and_root(tmp_path: Path) -> None:
    data = json.loads(ohp("doctor", "--json", root=tmp_path / "r").stdout)
    assert data["backend"] == "uv"
    assert data["uv"]["version"].count(".") == 2 and Path(data["uv"]["path"]).exists()
    assert data["interpreters"] and all(Path(i["path"]).exists() for i in data["interpreters"])
    assert data["store_root"] == str(tmp_path / "r")
    assert data["problems"] == []


@pytest.mark.parametrize(("args", "expected"), [
    (["install", "nonsense:::"], "expected one of"),
    (["install", "pypi:openhands-plugin-greetings", "--no-index"], "needs find_links"),
    (["install", "./no/such/dir"], "does not exist"),
    (["install", "pypi:x", "--version", "not a version"], "version"),
    (["install", "pypi:openhands-plugin-greetings", "--python", "2.1"], "no Python"),
    (["uninstall", "nope"], "not installed"),
    (["show", "nope"], "not installed"),
    (["upgrade", "nope"], "not installed"),
    (["reinstall", "nope"], "not installed"),
    (["show", "../bad name"], "no such plugin directory"),
])
def test_bad_input_is_one_line_and_exit_1(tmp_path: Path, args: list[str],
                                          expected: str) -> None:
    result = ohp(*args, root=tmp_path / "store", check=False)
    assert result.returncode == 1, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ohp: error: ")
    assert expected in lines[0]
    assert not (tmp_path / "store" / "plugins").exists()


def test_a_directory_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    result = ohp("install", str(EXAMPLES_DIR / "content-only-plugin"), root=home, check=False)
    assert result.returncode == 1 and "not a plugin store" in result.stderr
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt"]


def test_progress_is_shown_on_a_terminal(tmp_path: Path, example_wheelhouse: Path) -> None:
    primary, secondary = pty.openpty()
    argv = [*OHP, "install", "pypi:openhands-plugin-greetings", "--find-links",
            str(example_wheelhouse), "--no-index", "--root", str(tmp_path / "store")]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=secondary, text=True) as proc:
        os.close(secondary)
        chunks = []
        while True:
            try:
                data = os.read(primary, 4096)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        out, _ = proc.communicate(timeout=120)
    os.close(primary)
    shown = b"".join(chunks).decode()
    assert proc.returncode == 0
    assert "\r" in shown and "resolving" in shown and "installing" in shown
    assert out.startswith("installed greetings")


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_cli_install_from_a_git_repository_with_ref_and_repo_path(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES_DIR / "content-only-plugin", repo / "sub" / "notes")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    for cmd in (["init", "-q", "-b", "trunk"], ["add", "-A"], ["commit", "-q", "-m", "x"],
                ["tag", "v1"]):
        subprocess.run(["git", *cmd], cwd=repo, env=env, check=True, capture_output=True)
    root = tmp_path / "store"
    data = json.loads(ohp("install", f"git+{repo.as_uri()}", "--ref", "v1", "--repo-path",
                          "sub/notes", "--json", root=root).stdout)
    assert data["name"] == "notes" and data["kind"] == "content-only"
    assert data["git_commit"] and data["source_detail"]["ref"] == "v1"


def test_configure_says_the_sandbox_once(tmp_path: Path) -> None:
    root = tmp_path / "store"
    ohp("install", str(EXAMPLES_DIR / "content-only-plugin"), root=root)
    done = ohp("configure", "notes", "--sandbox", "strict", root=root)
    assert done.stdout == "sandbox: strict; notes asks for no permissions\n"
    assert ohp("configure", "notes", root=root).stdout == done.stdout


# ---- ohp list reads the records itself (#19: a quick CLI) -----------------------------------


def _full_rows(root: Path) -> list[dict[str, object]]:
    """What `ohp list --json` printed through PluginStore (and still does for a record it
    does not read itself)."""
    store = PluginStore(root)
    plugins = store.list_installed()
    origins = store.marketplace_origins() if plugins else {}
    return [{**p.to_dict(), "marketplace": origins[p.name].to_dict() if p.name in origins
             else None} for p in plugins]


@pytest.fixture(scope="module")
def mixed_store(tmp_path_factory: pytest.TempPathFactory, example_wheelhouse: Path) -> Path:
    """A store holding a plugin of each kind of source: pypi: (bringing another), a wheel
    file, a content-only directory, one from a marketplace, and (with git) a git URL."""
    base = tmp_path_factory.mktemp("mixed")
    root = base / "store"
    store = PluginStore(root)
    wh = str(example_wheelhouse)
    store.install("pypi:openhands-plugin-welcome", find_links=[wh], no_index=True)
    store.install(str(example_wheelhouse / "openhands_plugin_salute-1.0.0-py3-none-any.whl"),
                  find_links=[wh], no_index=True)
    store.install("pypi:openhands-plugin-shout", version=">=1.0,<2", find_links=[wh],
                  no_index=True)
    store.install(str(EXAMPLES_DIR / "content-only-plugin"))
    market = base / "market"
    shutil.copytree(EXAMPLES_DIR / "content-only-plugin", market / "plugins" / "alpha")
    (market / "plugins" / "alpha" / ".plugin").mkdir(exist_ok=True)
    (market / "plugins" / "alpha" / ".plugin" / "plugin.json").write_text(
        json.dumps({"name": "alpha", "version": "1.2.0"}), encoding="utf-8")
    (market / ".plugin").mkdir()
    (market / ".plugin" / "marketplace.json").write_text(json.dumps({
        "name": "small", "owner": {"name": "Tests"},
        "plugins": [{"name": "alpha", "source": "./plugins/alpha"}]}), encoding="utf-8")
    store.add_marketplace("small", str(market))
    store.install_from_marketplace("alpha@small")
    if shutil.which("git") is not None:
        repo = base / "repo"
        shutil.copytree(EXAMPLES_DIR / "content-only-plugin", repo / "sub" / "gitnotes")
        manifest = repo / "sub" / "gitnotes" / ".plugin" / "plugin.json"
        if manifest.exists():
            data = json.loads(manifest.read_text(encoding="utf-8"))
            manifest.write_text(json.dumps({**data, "name": "gitnotes"}), encoding="utf-8")
        env = {"PATH": os.environ["PATH"], "HOME": str(base), "GIT_AUTHOR_NAME": "t",
               "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
               "GIT_COMMITTER_EMAIL": "t@e"}
        for cmd in (["init", "-q", "-b", "trunk"], ["add", "-A"], ["commit", "-q", "-m", "x"]):
            subprocess.run(["git", *cmd], cwd=repo, env=env, check=True, capture_output=True)
        store.install(PluginSource(f"git+{repo.as_uri()}", repo_path="sub/gitnotes"))
    return root


def test_list_reads_every_kind_of_record_as_the_store_does(mixed_store: Path) -> None:
    rows = list_rows(mixed_store)
    assert rows is not None, "the records the store wrote are read without it"
    assert rows == _full_rows(mixed_store)
    kinds = {row["source_detail"]["kind"] for row in rows}  # type: ignore[index]
    assert {"pypi", "wheel", "directory"} <= kinds
    assert any(row["brought_by"] for row in rows)  # greetings, by salute (first by name)
    assert any(row["marketplace"] for row in rows)
    assert json.loads(ohp("list", "--json", root=mixed_store).stdout) == _full_rows(mixed_store)
    table = ohp("list", root=mixed_store).stdout
    assert "alpha@small" in table and "brought by salute" in table


def _copy_store(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def _records(root: Path) -> list[Path]:
    return [plugin / (plugin / "current").read_text().strip() / "metadata.json"
            for plugin in sorted((root / "plugins").iterdir())]


@pytest.mark.parametrize("mangle", [
    "no-kind", "source-kind-lies", "source-extra-key", "version-not-pep440",
    "version-on-a-directory", "brought-missing", "brought-mangled", "credentials-in-url",
    "name-not-a-string", "registry-mangled",
])
def test_a_record_not_as_the_store_writes_it_is_listed_the_full_way(
        mixed_store: Path, tmp_path: Path, mangle: str) -> None:
    """Whatever the lean reader does not recognise goes through PluginStore: the same error,
    or the same listing, as before it existed."""
    root = _copy_store(mixed_store, tmp_path / "store")
    records = {json.loads(p.read_text())["name"]: p for p in _records(root)}
    welcome = records["welcome"]
    data = json.loads(welcome.read_text())
    if mangle == "no-kind":
        del data["kind"]
    elif mangle == "source-kind-lies":
        data["source"]["kind"] = "git"
    elif mangle == "source-extra-key":
        data["source"]["token"] = "x"
    elif mangle == "version-not-pep440":
        data["source"]["version"] = "banana"
    elif mangle == "version-on-a-directory":
        data = json.loads(records["notes"].read_text())
        data["source"]["version"] = "1.0"
        welcome = records["notes"]
    elif mangle == "brought-missing":
        del data["brought"]
    elif mangle == "brought-mangled":
        data["brought"] = [{"name": "x"}]
    elif mangle == "credentials-in-url":
        data["source"]["index_url"] = "https://user:secret@example.com/simple"
        data["source"]["find_links"] = []
        data["source"]["no_index"] = False
    elif mangle == "name-not-a-string":
        data["name"] = 7
    elif mangle == "registry-mangled":
        (root / "marketplaces.json").write_text('{"format": 1, "marketplaces": {}, '
                                                '"installed": {"alpha": {"plugin": 1}}}')
    welcome.write_text(json.dumps(data))
    assert list_rows(root) is None
    via_ohp = ohp("list", "--json", root=root, check=False)
    try:
        expected: object = _full_rows(root)
    except Exception as exc:  # whatever the full way raises, ohp says
        assert via_ohp.returncode == 1 and via_ohp.stdout == "", via_ohp
        assert "secret" not in via_ohp.stderr
        if isinstance(exc, IsolatorError):
            assert via_ohp.stderr.strip().endswith(str(exc).splitlines()[-1].strip())
        return
    assert via_ohp.returncode == 0, via_ohp.stderr
    assert json.loads(via_ohp.stdout) == expected
    assert "secret" not in via_ohp.stdout


def test_list_sees_a_replaced_generation_whole(mixed_store: Path, tmp_path: Path) -> None:
    """The pointer is read first and names a generation whose record is complete: a record
    half-written in a new generation (before its pointer switch) is not seen."""
    root = _copy_store(mixed_store, tmp_path / "store")
    before = list_rows(root)
    plugin = root / "plugins" / "notes"
    partial = plugin / "gen-29990101T000000-00000000"
    partial.mkdir()
    (partial / "metadata.json").write_text('{"name": "notes", "kin')  # an install under way
    assert list_rows(root) == before
    assert json.loads(ohp("list", "--json", root=root).stdout) == before
