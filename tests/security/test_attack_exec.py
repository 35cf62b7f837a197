"""A plugin's hook command going after the host's secrets, run as the host would run it:
``hostbridge.run_program`` and ``ohp exec NAME --sandbox PROFILE -- CMD``.

The hook (``hooks/steal.sh`` of the attacks plugin, declared in its hooks.json) prints the
environment, another host process's environment through /proc, a host secret file and the host
user's SSH key, sends a TCP payload to a port where the host listens, and exits 7.

what it goes after                   standard                   strict
-----------------------------------  -------------------------  --------------------------
a secret in the host's environment   environment allowlist      the same
/proc/PID/environ of a host process  a /proc of its own         the same
a 0644 secret file                   - (not a standard layer)   Landlock: Permission denied
TCP to the host's listener           network namespace, seccomp the same
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from secsupport import assert_absent, descendants, wait_until

from hostbridge import run_program

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from isolator import PluginStore


class Target:
    """The host's secrets: in its environment, in another process's, in a file; a listener."""

    def __init__(self, decoy: tuple[subprocess.Popen[bytes], str], directory: Path) -> None:
        self.decoy, self.decoy_secret = decoy
        self.env_secret = f"sk-{secrets.token_hex(16)}"
        self.file_secret = f"file-{secrets.token_hex(16)}"
        self.file = directory / "host-secret.txt"
        self.file.write_text(self.file_secret)
        self.file.chmod(0o644)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.05)
        self.port = self.server.getsockname()[1]

    def arguments(self) -> list[str]:
        return [str(self.decoy.pid), str(self.file), str(self.port)]

    def connections(self) -> int:
        try:
            conn, _ = self.server.accept()
        except TimeoutError:
            return 0
        conn.close()
        return 1


@pytest.fixture
def target(decoy: tuple[subprocess.Popen[bytes], str], sec_tmp: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    made = Target(decoy, sec_tmp)
    monkeypatch.setenv("ISOLATOR_SEC_API_KEY", made.env_secret)
    yield made
    made.server.close()


def hook_argv(store: PluginStore, target: Target) -> list[str]:
    """The plugin's SessionStart hook command as a host runs it (``sh -c``), with arguments."""
    hooks = store.load("attacks").hooks
    assert hooks is not None
    command = hooks["session_start"][0].hooks[0].command
    assert command == "sh ${CLAUDE_PLUGIN_ROOT}/hooks/steal.sh"
    return ["sh", "-c", f'{command} "$@"', "hook", *target.arguments()]


def check_output(out: str, target: Target, profile: str) -> None:
    assert "== end" in out, out  # the hook ran to its end
    assert_absent(target.env_secret, out)
    assert "ISOLATOR_SEC_API_KEY" not in out
    assert_absent(target.decoy_secret, out)
    if profile == "strict":
        assert_absent(target.file_secret, out)
        assert f"{target.file}: Permission denied" in out, out
    assert target.connections() == 0


@pytest.mark.parametrize("profile", ["standard", "strict"])
def test_a_hook_run_through_run_program_gets_no_secret(store: PluginStore, profile: str,
                                                       target: Target) -> None:
    baseline = descendants(os.getpid())
    result = run_program(store, "attacks", hook_argv(store, target), profile=profile,
                         timeout=60)
    out = result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")
    assert result.returncode == 7, out
    assert result.profile == profile
    assert result.layers["net_namespace"] is True
    assert result.layers["host_proc_hidden"] is True
    assert result.layers["landlock"] is (profile == "strict")
    check_output(out, target, profile)
    assert wait_until(lambda: descendants(os.getpid()) <= baseline, 5)


def test_ohp_exec_runs_the_hook_in_the_sandbox(store: PluginStore, target: Target) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hostbridge.cli", "exec", "attacks", "--sandbox", "strict",
         "--root", str(store.root), "--", *hook_argv(store, target)],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 7, result  # the program's exit status
    check_output(result.stdout + result.stderr, target, "strict")
