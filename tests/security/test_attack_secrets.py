"""Host secrets: the environment, other processes (through /proc, by signal), the host's files.

attack (each as a tool of the attacks plugin)   off        standard           strict
----------------------------------------------  ---------  -----------------  ---------------
read a secret of the host's environment         env (1)    env (1)            env (1)
/proc/PID/{environ,mem,fd,root,...} of the      -          own /proc (2)      own /proc (2),
  host and of another host process                                            Landlock
signal the host, a host process, another        -          PID ns: ESRCH      PID ns: ESRCH
  plugin's worker
use a descriptor the host left open             spawn (3)  spawn (3)          spawn (3)
read a 0644 file outside the store (directly,   -          -                  Landlock: EACCES
  via /proc/self/root, via /proc/self/cwd)
read /etc/shadow                                -          uid (4): EACCES    Landlock: EACCES
read the host user's SSH key (0600)             -          root host: uid (4) Landlock: EACCES
read the store's audit log (0600)               -          root host: uid (4) Landlock: EACCES

(1) only PATH, HOME, LANG, LC_*, TMPDIR reach a worker; (2) ``--mount-proc``: the host's
processes are not in the worker's /proc (ENOENT); (3) only the RPC socket is passed on;
(4) a root host's workers run as uid 65534; an unprivileged host's keep its uid and so its files
(the SSH key case is then not run under standard).
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from secsupport import AS_ROOT, Bystander, alive, assert_absent, attack, attempt_failed, open_bridge

if TYPE_CHECKING:
    import subprocess

    from isolator import PluginStore

ALLOWED_ENV = {"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR"}
ROOT_HOST_ONLY = pytest.mark.skipif(
    not AS_ROOT, reason="under standard only the uid drop of a root host stops it: a host that "
    "is not root shares its uid, and so its files, with its workers")


@pytest.mark.parametrize("profile", ["off", "standard", "strict"])
def test_a_secret_in_the_host_environment_does_not_reach_the_worker(
    store: PluginStore, profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"sk-{secrets.token_hex(16)}"
    monkeypatch.setenv("ISOLATOR_SEC_API_KEY", secret)
    with open_bridge(store, profile) as bridge:
        bystander = Bystander.start(bridge)
        env = attack(bridge, "environ")
        assert "ISOLATOR_SEC_API_KEY" not in env
        assert {k for k in env if not k.startswith("LC_")} <= ALLOWED_ENV, sorted(env)
        # Neither in the environment block the worker was started with, nor in its command line.
        initial = attack(bridge, "read_file", path="/proc/self/environ")
        cmdline = attack(bridge, "read_file", path="/proc/self/cmdline")
        assert initial["ok"] and cmdline["ok"], (initial, cmdline)
        assert_absent(secret, env, initial, cmdline)
        bystander.check()


@pytest.mark.parametrize("profile", ["standard", "strict"])
def test_the_host_is_not_readable_through_proc(
    store: PluginStore, profile: str, decoy: tuple[subprocess.Popen[bytes], str]
) -> None:
    proc, secret = decoy
    assert secret in Path(f"/proc/{proc.pid}/environ").read_text(errors="replace")  # it is there
    with open_bridge(store, profile) as bridge:
        bystander = Bystander.start(bridge)
        for pid in (os.getpid(), proc.pid):
            seen = attack(bridge, "host_proc", pid=pid)
            assert set(seen) == {"environ", "cmdline", "maps", "fd", "root", "cwd", "mem"}
            for what, outcome in seen.items():
                assert outcome["ok"] is False, (pid, what, outcome)
                assert outcome["errno"] in (errno.ENOENT, errno.EACCES, errno.EPERM), outcome
            assert_absent(secret, seen)
        # The worker's /proc lists its own PID namespace only (or nothing, under Landlock).
        listing = attack(bridge, "list_dir", path="/proc")
        if listing["ok"]:
            pids = {int(name) for name in listing["names"] if name.isdigit()}
            assert pids and max(pids) < 100, pids  # 1 (the worker) and its own children only
            assert os.getpid() not in pids or os.getpid() < 100
        else:
            attempt_failed(listing, errno.EACCES)
        bystander.check()


@pytest.mark.parametrize("profile", ["standard", "strict"])
def test_the_worker_cannot_signal_host_processes(
    store: PluginStore, profile: str, decoy: tuple[subprocess.Popen[bytes], str]
) -> None:
    proc, _ = decoy
    with open_bridge(store, profile) as bridge:
        bystander = Bystander.start(bridge)
        # Signal 0 asks only whether a signal could be sent: harmless if the sandbox failed.
        attempt_failed(attack(bridge, "signal_pid", pid=os.getpid(), signum=0), errno.ESRCH)
        attempt_failed(attack(bridge, "signal_pid", pid=proc.pid, signum=int(signal.SIGKILL)),
                       errno.ESRCH)
        assert alive(proc.pid)
        # Nor another plugin's worker (a PID namespace each).
        attempt_failed(attack(bridge, "signal_pid", pid=bystander.pid,
                              signum=int(signal.SIGKILL)), errno.ESRCH)
        assert alive(bystander.pid)
        bystander.check()


def test_a_host_file_outside_the_store_is_unreachable_under_strict(
    store: PluginStore, sec_tmp: Path
) -> None:
    secret = f"file-{secrets.token_hex(16)}"
    target = sec_tmp / "host-secret.txt"
    target.write_text(secret)
    target.chmod(0o644)  # readable by any uid: only Landlock stands in the way
    with open_bridge(store, "strict") as bridge:
        bystander = Bystander.start(bridge)
        read = attack(bridge, "read_file", path=str(target))
        listing = attack(bridge, "list_dir", path=str(sec_tmp))
        attempt_failed(read, errno.EACCES)
        attempt_failed(listing, errno.EACCES)
        # Through the magic links of its own /proc entry, which Landlock lets it read.
        for via in ("/proc/self/root", "/proc/self/cwd/../../../../../../../.."):
            attempt_failed(attack(bridge, "read_file", path=f"{via}{target}"), errno.EACCES)
        for directory in ("/", "/tmp", "/home", "/root", "/etc"):
            if os.path.isdir(directory):
                attempt_failed(attack(bridge, "list_dir", path=directory), errno.EACCES)
        assert_absent(secret, read, listing)
        bystander.check()
    # The same worker uid reads it without Landlock: the refusal above is Landlock's.
    with open_bridge(store, "standard") as bridge:
        assert attack(bridge, "read_file", path=str(target)) == {"ok": True, "data": secret}


@pytest.mark.parametrize("profile", ["standard", "strict"])
def test_etc_shadow_is_unreadable(store: PluginStore, profile: str) -> None:
    if not os.path.exists("/etc/shadow"):
        pytest.skip("this system has no /etc/shadow")
    with open_bridge(store, profile) as bridge:
        bystander = Bystander.start(bridge)
        attempt_failed(attack(bridge, "read_file", path="/etc/shadow"), errno.EACCES)
        bystander.check()


@pytest.mark.parametrize("profile", [pytest.param("standard", marks=ROOT_HOST_ONLY), "strict"])
def test_the_host_users_ssh_key_is_unreadable(
    store: PluginStore, profile: str, fake_home: Path
) -> None:
    key = fake_home / ".ssh" / "id_ed25519"
    with open_bridge(store, profile) as bridge:
        bystander = Bystander.start(bridge)
        read = attack(bridge, "read_file", path=str(key))
        attempt_failed(read, errno.EACCES)
        listing = attack(bridge, "list_dir", path=str(fake_home / ".ssh"))
        attempt_failed(listing, errno.EACCES)
        assert_absent(key.read_text(), read, listing)
        if profile == "strict":  # HOME is the scratch directory, not the host's
            assert attack(bridge, "environ")["HOME"] != str(fake_home)
        bystander.check()
    assert json.dumps(sorted(os.listdir(fake_home / ".ssh"))) == '["id_ed25519"]'


@pytest.mark.parametrize("profile", ["off", "standard", "strict"])
def test_the_worker_inherits_no_descriptor_of_the_host(
    store: PluginStore, profile: str, sec_tmp: Path
) -> None:
    # A host file open while the worker starts (as a log, a database, a key would be).
    with open(sec_tmp / "host-open.txt", "w") as host_file, open_bridge(store, profile) as bridge:
        assert not os.get_inheritable(host_file.fileno())
        fds = attack(bridge, "open_fds")
        targets = sorted(fds.values())
        assert not any(str(sec_tmp) in t or "host-open" in t for t in targets), fds
        # stdin (/dev/null), stdout and stderr (pipes), the host's socket, and the listing.
        assert len(fds) <= 5, fds
        assert sum(t.startswith("socket:") for t in targets) == 1, fds


@pytest.mark.parametrize("profile", [pytest.param("standard", marks=ROOT_HOST_ONLY), "strict"])
def test_the_stores_audit_log_is_unreadable(store: PluginStore, profile: str) -> None:
    log = store.root / "audit.jsonl"
    assert log.is_file()  # installs and worker starts were logged
    with open_bridge(store, profile) as bridge:
        bystander = Bystander.start(bridge)
        attempt_failed(attack(bridge, "read_file", path=str(log)), errno.EACCES)
        bystander.check()


# Found by the #15 review under strict: /proc/self was granted whole, and its mount tables list
# the host's mount points (paths of other tenants' stores, home directories, containers).
def test_the_hosts_mount_table_is_unreadable_under_strict(store: PluginStore) -> None:
    with open_bridge(store, "strict") as bridge:
        for path in ("/proc/self/mountinfo", "/proc/self/mounts", "/proc/self/mountstats",
                     "/proc/self/task/1/mountinfo", "/proc/thread-self/mountinfo",
                     "/proc/1/mountinfo"):
            attempt_failed(attack(bridge, "read_file", path=path), errno.EACCES)
        # What a process needs of /proc/self stays: its status, limits, descriptors.
        assert attack(bridge, "read_file", path="/proc/self/status")["ok"] is True
        assert attack(bridge, "list_dir", path="/proc/self/fd")["ok"] is True
