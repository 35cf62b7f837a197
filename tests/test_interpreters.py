"""Interpreter discovery by path, against the real interpreters on this machine and fake ones."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from isolator._errors import CommandError, InterpreterNotFoundError, IsolatorError
from isolator.store._interpreters import (
    Interpreter,
    candidate_paths,
    find_python,
    list_interpreters,
    probe_interpreter,
)

HOST_VERSION = tuple(sys.version_info[:3])
HOST_ABI = f"cp{sys.version_info[0]}{sys.version_info[1]}"


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_host_interpreter() -> None:
    host = find_python(None)
    assert host.version == HOST_VERSION
    assert host.implementation == sys.implementation.name
    if host.implementation == "cpython":
        assert host.abi_tag.startswith(HOST_ABI)
    assert host.path.is_absolute()
    assert host.minor == f"{HOST_VERSION[0]}.{HOST_VERSION[1]}"
    assert host.is_venv == (sys.prefix != sys.base_prefix)
    assert host.to_dict()["version"] == ".".join(map(str, HOST_VERSION))


def test_every_listed_interpreter_is_found_by_its_version() -> None:
    found = list_interpreters()
    assert found[0].version == HOST_VERSION  # host first
    assert len({os.path.realpath(i.path) for i in found}) == len(found)  # no duplicates
    for interpreter in found:
        if interpreter.implementation != "cpython":
            continue
        result = find_python(interpreter.minor)
        assert result.version[:2] == interpreter.version[:2]
        exact = find_python(interpreter.version_str)
        assert exact.version == interpreter.version
        # What we report really is that interpreter.
        out = subprocess.run(
            [str(exact.path), "-I", "-S", "-c",
             "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            capture_output=True, text=True, check=True,
        )
        assert out.stdout.strip() == exact.version_str


@pytest.mark.parametrize("minor", ["3.10", "3.12", "3.13"])
def test_other_pythons_when_present(minor: str) -> None:
    available = {i.minor for i in list_interpreters()}
    if minor not in available:
        pytest.skip(f"no Python {minor} on this machine")
    interpreter = find_python(minor)
    assert interpreter.minor == minor
    assert interpreter.abi_tag.startswith("cp" + minor.replace(".", ""))
    assert find_python(f"python{minor}").path == interpreter.path


def test_by_path_and_by_venv_directory(tmp_path: Path) -> None:
    host = find_python(None)
    assert find_python(str(host.path)).version == host.version
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    by_dir = find_python(str(venv))
    assert by_dir.is_venv
    assert by_dir.path.parent == venv / "bin"  # a venv's python is not resolved to its base
    assert find_python(venv / "bin" / "python").is_venv


def test_missing_path_names_the_spec(tmp_path: Path) -> None:
    spec = str(tmp_path / "nope" / "python3")
    with pytest.raises(InterpreterNotFoundError) as info:
        find_python(spec)
    assert spec in str(info.value) and "no such file" in str(info.value)
    assert info.value.spec == spec
    assert isinstance(info.value, IsolatorError)


def test_a_failing_executable_is_not_an_interpreter(tmp_path: Path) -> None:
    # What a pyenv shim for a non-global version does: print an error and exit 127.
    shim = _script(tmp_path / "python3.12", 'echo "pyenv: python3.12: command not found" >&2\n'
                                            "exit 127\n")
    with pytest.raises(InterpreterNotFoundError, match=r"does not run.*command not found"):
        find_python(str(shim))
    with pytest.raises(CommandError) as info:
        probe_interpreter(shim)
    assert info.value.returncode == 127


def test_garbage_answer(tmp_path: Path) -> None:
    liar = _script(tmp_path / "python3.77", "echo not-json\n")
    with pytest.raises(InterpreterNotFoundError, match="unreadable answer"):
        find_python(str(liar))


def test_unknown_version_lists_what_was_found() -> None:
    with pytest.raises(InterpreterNotFoundError) as info:
        find_python("3.99")
    message = str(info.value)
    assert "'3.99'" in message and "found:" in message
    assert ".".join(map(str, HOST_VERSION)) in message
    assert "\n" not in message


def test_unknown_command_and_empty_spec() -> None:
    with pytest.raises(InterpreterNotFoundError, match="not on PATH"):
        find_python("no-such-python-anywhere")
    with pytest.raises(InterpreterNotFoundError, match="empty"):
        find_python("  ")


def test_fake_pyenv_root_and_failing_shims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    host = Path(sys.executable)
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    root = tmp_path / "pyenv"
    # A shim on PATH that fails, as pyenv's do for versions that are not global ...
    _script(root / "shims" / "python3.98", "exit 127\n")
    # ... while the real interpreter sits under versions/ (a symlink to the host here).
    version_bin = root / "versions" / "9.9.9" / "bin"
    version_bin.mkdir(parents=True)
    (version_bin / f"python{minor}").symlink_to(host)
    broken_bin = tmp_path / "bin"
    _script(broken_bin / "python3.97", "exit 1\n")
    monkeypatch.setenv("PYENV_ROOT", str(root))
    monkeypatch.setenv("PATH", f"{root / 'shims'}{os.pathsep}{broken_bin}{os.pathsep}/usr/bin")
    paths = candidate_paths()
    assert version_bin / f"python{minor}" in paths
    assert broken_bin / "python3.97" in paths
    assert root / "shims" / "python3.98" not in paths  # shims are skipped: versions/ is read
    found = list_interpreters()
    assert all(i.version[:2] != (3, 97) for i in found)
    assert find_python(minor).version == HOST_VERSION
    with pytest.raises(InterpreterNotFoundError, match=r"3\.97"):
        find_python("3.97")


def test_python3_symlink_is_resolved_to_the_versioned_name(tmp_path: Path) -> None:
    real = next(
        (p for p in candidate_paths() if p.name.startswith("python3.")
         and probe_ok(p)), None,
    )
    if real is None:
        pytest.skip("no python3.N executable found")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    versioned = bindir / real.name
    versioned.symlink_to(real)
    generic = bindir / "python3"
    generic.symlink_to(versioned.name)
    interpreter = probe_interpreter(generic)
    assert isinstance(interpreter, Interpreter)
    # sys.executable of a symlinked interpreter is the name it was started by; we keep the
    # versioned sibling, which survives a change of what "python3" means.
    assert interpreter.path.name.startswith("python3.")


def probe_ok(path: Path) -> bool:
    try:
        probe_interpreter(path)
    except CommandError:
        return False
    return True
