"""System calls a plugin has no business making, and the identity it runs under.

attack                                standard and strict
------------------------------------  ---------------------------------------------------------
ptrace, process_vm_readv, mount,      seccomp: EPERM
  unshare, io_uring_setup, bpf, keyctl
setuid(0), setgid(0), setgroups([0])  unprivileged in its user namespace (uid 65534, uid 0
                                        unmapped, no capabilities, no_new_privs): EINVAL/EPERM
act as root on the host's files       a root host's worker is uid 65534 on the host too

The layers a worker reports (``Worker.sandbox``) are those the profile asks for: under
``strict``, every one of them.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import pytest
from secsupport import AS_ROOT, NOBODY, Bystander, attack, open_bridge, status_field

if TYPE_CHECKING:
    from isolator import PluginStore

PROFILES = ["standard", "strict"]
SYSCALLS = ("ptrace", "process_vm_readv", "mount", "unshare", "io_uring_setup", "bpf",
            "keyctl")


@pytest.mark.parametrize("profile", PROFILES)
def test_dangerous_system_calls_fail_with_eperm(store: PluginStore, profile: str) -> None:
    with open_bridge(store, profile) as bridge:
        bystander = Bystander.start(bridge)
        assert bridge.worker("attacks").sandbox["seccomp"] is True
        found = attack(bridge, "syscalls")
        assert set(found) == set(SYSCALLS), found
        for name, outcome in found.items():
            assert (outcome["ok"], outcome.get("errno")) == (False, errno.EPERM), (name, outcome)
        bystander.check()


@pytest.mark.parametrize("profile", PROFILES)
def test_the_worker_is_unprivileged(store: PluginStore, profile: str) -> None:
    with open_bridge(store, profile) as bridge:
        bystander = Bystander.start(bridge)
        worker = bridge.worker("attacks")
        me = attack(bridge, "whoami")
        # Inside its user namespace it is uid 65534 whoever the host is, without capabilities.
        assert (me["uid"], me["gid"]) == (NOBODY, NOBODY)
        assert me["status"]["CapEff"] == ["0000000000000000"]
        assert me["status"]["NoNewPrivs"] == ["1"]
        assert me["status"]["Seccomp"] == ["2"]  # a filter
        # EINVAL: uid and gid 0 are not even mapped in its user namespace.
        for name, outcome in attack(bridge, "become_root").items():
            assert outcome["ok"] is False, (name, outcome)
            assert outcome["errno"] in (errno.EPERM, errno.EINVAL), (name, outcome)
        # From the host: a root host's worker is uid 65534 on the host too.
        assert worker.pid is not None
        host_uid = int(status_field(worker.pid, "Uid")[1])
        if AS_ROOT:
            assert host_uid == NOBODY
            assert worker.sandbox["unprivileged_uid"] is True
        else:
            assert worker.sandbox["unprivileged_uid"] is None  # nothing to drop
        bystander.check()


def test_strict_reports_every_layer_in_force(store: PluginStore) -> None:
    with open_bridge(store, "strict") as bridge:
        layers = bridge.worker("attacks").sandbox
        for layer in ("pid_namespace", "host_proc_hidden", "net_namespace", "seccomp",
                      "landlock"):
            assert layers[layer] is True, (layer, layers)
        assert layers["unprivileged_uid"] is (True if AS_ROOT else None)
        assert layers["applied_in_worker"]["landlock"]["filesystem"] is True
        assert layers["rlimits"]["processes"] is not None
        assert set(layers["environment"]) <= {"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE",
                                              "TMPDIR"}
