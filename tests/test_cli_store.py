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
