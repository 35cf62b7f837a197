"""Attacks on the launcher chain itself: what runs before a process's sandbox is complete.

The chain (``setpriv``, ``unshare``, ``prlimit``, the interpreter that applies Landlock and
seccomp) runs outside the in-process layers, some of it outside every namespace. Nothing a
plugin controls may reach it:

attack                                            what stops it
------------------------------------------------  ----------------------------------------------
``LD_DEBUG_OUTPUT``/``LD_PRELOAD``/``PYTHON*``     refused from a plugin's config, naming the
  in an MCP server's ``env`` (the loader of           variable; nothing starts
  ``setpriv`` acts on it, outside every namespace)
any other variable of the plugin's config          given to the program at ``execve``, after the
                                                    sandbox; never in the chain's environment
                                                    nor on its command line
a loader variable allowed or granted by name       refused at launch (``env_allow``, a grant)
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from secsupport import AS_ROOT, NOBODY, attack, make_store, open_bridge, status_field

from hostbridge import WorkerStartError, spawn_program
from isolator import expand_variables
from isolator.policy._permissions import Permissions

if TYPE_CHECKING:
    from isolator import PluginStore

PROFILES = ["off", "standard", "strict"]


def _server(store: PluginStore, name: str, **variables: str) -> dict[str, object]:
    server = store.load("attacks").mcp_servers[name].to_dict()
    return dict(expand_variables(server, variables))


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("variable", ["LD_DEBUG", "LD_PRELOAD", "PYTHONPATH", "GCONV_PATH",
                                      "BASH_ENV", "MALLOC_TRACE", "GLIBC_TUNABLES",
                                      "CLAUDE_PLUGIN_ROOT"])
def test_a_loader_variable_in_mcp_env_is_refused(store: PluginStore, sec_tmp: Path,
                                                 profile: str, variable: str) -> None:
    server = _server(store, "loader", LEAK_DIR=str(sec_tmp))
    env = dict(server["env"])  # type: ignore[call-overload]
    if variable != "LD_DEBUG":
        env = {variable: str(sec_tmp / "x"), "LD_DEBUG_OUTPUT": env["LD_DEBUG_OUTPUT"]}
    with pytest.raises(WorkerStartError) as caught:
        spawn_program(store, "attacks", [str(server["command"]), *server["args"]],  # type: ignore[list-item]
                      env=env, profile=profile)
    assert variable in str(caught.value) or "LD_DEBUG_OUTPUT" in str(caught.value)
    assert "refused" in str(caught.value)
    # Before the fix the loader of setpriv, outside every namespace, wrote its debug log here.
    assert list(sec_tmp.iterdir()) == [], list(sec_tmp.iterdir())


def test_a_bad_variable_name_or_value_is_refused(store: PluginStore) -> None:
    for env in ({"A=B": "x"}, {"": "x"}, {"1X": "x"}, {"X": "a\0b"}, {"X\n": "x"}):
        with pytest.raises(WorkerStartError, match="environment variable"):
            spawn_program(store, "attacks", ["true"], env=env, profile="standard")


@pytest.mark.parametrize("profile", PROFILES)
def test_plugin_variables_reach_the_program_only(store: PluginStore, profile: str) -> None:
    token = f"tok-{secrets.token_hex(12)}"
    server = _server(store, "plain", TOKEN=token)
    with spawn_program(store, "attacks", [str(server["command"]), *server["args"]],  # type: ignore[list-item]
                       env=server["env"], profile=profile) as program:  # type: ignore[arg-type]
        assert program.stdout is not None
        line = program.stdout.readline().decode()
        assert line.strip() == f"token={token}"
        # The first process of the chain (setpriv, then unshare, which waits for its child
        # under standard and strict) never had it: not in its environment, not on its
        # command line, which every local user can read.
        launcher = program.proc.pid
        environ = Path(f"/proc/{launcher}/environ").read_bytes()
        cmdline = Path(f"/proc/{launcher}/cmdline").read_bytes()
        if profile != "off":  # under off the program is the first process itself
            assert token.encode() not in environ
        assert token.encode() not in cmdline
        assert program.stdin is not None
        program.stdin.write(b"done\n")
        program.stdin.flush()
        assert program.wait(timeout=30) == 0


@pytest.mark.parametrize("how", ["env_allow", "grant"])
def test_a_loader_variable_is_never_passed_through(store: PluginStore, how: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LD_PRELOAD", "/nonexistent/evil.so")
    kwargs: dict[str, object] = {"env_allow": ["LD_PRELOAD"]} if how == "env_allow" else \
        {"grants": Permissions(environment=("LD_PRELOAD",))}
    with pytest.raises(WorkerStartError, match="LD_PRELOAD"):
        spawn_program(store, "attacks", ["true"], profile="standard", **kwargs)  # type: ignore[arg-type]
    assert os.environ["LD_PRELOAD"] == "/nonexistent/evil.so"


# ---- a root host whose interpreter lives where uid 65534 may not go (class 7) ----------------


def _host_python_blocked() -> str | None:
    """The host's own interpreter, when it lives beneath a directory uid 65534 may not enter
    (a pyenv Python under /root); None otherwise."""
    from isolator.sandbox._launcher import blocked_ancestor

    real = Path(os.path.realpath(sys.executable))
    return str(real) if blocked_ancestor(real.parent.parent) is not None else None


@pytest.fixture(scope="module")
def root_store(sec_root: Path, attack_wheelhouse: Path) -> PluginStore:
    if not AS_ROOT:
        pytest.skip("the host is not root: plugin processes keep its uid")
    python = _host_python_blocked()
    if python is None:
        pytest.skip("the host's interpreter is reachable by uid 65534 here: nothing to cover")
    return make_store(sec_root / "root-host", attack_wheelhouse, python)


@pytest.mark.parametrize("profile", ["standard", "strict"])
def test_a_root_host_runs_plugin_code_as_nobody_with_its_own_interpreter(
        root_store: PluginStore, profile: str) -> None:
    # Before: strict refused every worker ("uid 65534 cannot reach /root") and standard ran
    # the plugin as root. Now /root is covered by an empty tmpfs in the worker's own mount
    # namespace and only the interpreter's prefix is bound back, read-only.
    with open_bridge(root_store, profile) as bridge:
        me = attack(bridge, "whoami")
        assert bridge.worker("attacks").sandbox["unprivileged_uid"] is True
        host_view = status_field(bridge.worker("attacks").pid or 0, "Uid")
        assert host_view[0] == str(NOBODY), host_view
        assert me["uid"] == NOBODY
        prefix = Path(os.path.realpath(sys.executable)).parent.parent
        covered = prefix.parts[1]
        listing = attack(bridge, "list_dir", path=f"/{covered}")
        if profile == "strict":  # Landlock: not even the covered directory is readable
            assert listing["ok"] is False and listing["errno_name"] == "EACCES", listing
        else:  # nothing of the covered directory but the way to the interpreter
            assert listing["ok"] is True and listing["names"] == [prefix.parts[2]], listing
        assert attack(bridge, "write_file", path=str(prefix / "planted.txt"))["ok"] is False
        assert not (prefix / "planted.txt").exists()


def test_ohp_call_strict_works_with_the_default_interpreter(root_store: PluginStore) -> None:
    out = subprocess.run([sys.executable, "-m", "hostbridge.cli", "call", "attacks", "ok",
                          "--root", str(root_store.root), "--sandbox", "strict",
                          "--args", '{"text": "through the cover"}', "--json"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["content"] == "through the cover"


# ---- files the interpreter reads before any layer (class 1b) ----------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_no_process_starts_on_a_venv_whose_interpreter_files_changed(
        sec_tmp: Path, attack_wheelhouse: Path, plugin_python: str, profile: str) -> None:
    # Installing such a wheel is refused (test_attack_venv.py); here the file changes after
    # the install (a worker under `off` may write its venv): the store's record catches it
    # before the interpreter would read it.
    store = make_store(sec_tmp / "tampered", attack_wheelhouse, plugin_python,
                       sources=("pypi:openhands-plugin-attacks",))
    venv = store.get("attacks").venv
    assert venv is not None
    cfg = venv / "pyvenv.cfg"
    cfg.write_text(cfg.read_text().replace("home = ", "home = /nonexistent/fake-stdlib\n#"))
    with pytest.raises(WorkerStartError, match=r"pyvenv\.cfg"):
        spawn_program(store, "attacks", ["true"], profile=profile)
    with open_bridge(store, profile) as bridge, \
            pytest.raises(WorkerStartError, match=r"pyvenv\.cfg"):
        bridge.worker("attacks")
