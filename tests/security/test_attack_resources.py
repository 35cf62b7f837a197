"""Resource exhaustion: processes, memory, CPU, descriptors.

attack             standard                               strict
-----------------  -------------------------------------  -------------------------------------
fork bomb          RLIMIT_NPROC (256), counted in the     the same (64)
                     worker's user namespace: EAGAIN; the
                     PID namespace takes every child
memory bomb        only a limit the host sets            RLIMIT_AS (4 GiB): MemoryError (or
                     (``WorkerLimits(memory_bytes=)``)       the worker is killed)
CPU spin           the call's deadline stops the worker   the same
descriptors        RLIMIT_NOFILE (1024): EMFILE           the same (256)

In each case the host survives: the bystander's worker keeps answering, unrestarted, the
attacking plugin serves its next call (in a fresh worker where its worker had to go), and no
process the attack started outlives the bridge.
"""

from __future__ import annotations

import errno
import os
import time
from typing import TYPE_CHECKING

import pytest
from secsupport import Bystander, alive, attack, descendants, open_bridge, wait_until

from hostbridge import PROFILE_LIMITS, CallTimeoutError, WorkerCrashedError, WorkerLimits

if TYPE_CHECKING:
    from isolator import PluginStore

PROFILES = ["standard", "strict"]


@pytest.mark.parametrize("profile", PROFILES)
def test_a_fork_bomb_is_stopped_by_the_process_limit(store: PluginStore, profile: str) -> None:
    limit = PROFILE_LIMITS[profile].processes
    assert limit is not None
    baseline = descendants(os.getpid())
    with open_bridge(store, profile) as bridge:
        bystander = Bystander.start(bridge)
        worker = bridge.worker("attacks")
        assert worker.sandbox["pid_namespace"] is True
        calm = descendants(os.getpid()) - baseline  # the two workers and their launchers
        outcome = attack(bridge, "fork_bomb", timeout=120)
        assert outcome.get("refused") is None, outcome
        assert outcome["limit"] == limit
        assert outcome["ok"] is False and outcome["errno"] == errno.EAGAIN, outcome
        assert 0 < outcome["forked"] < limit, outcome  # the worker itself counts too
        # The children are alive, in the worker's tree; the worker still answers.
        assert len(descendants(os.getpid()) - baseline) >= len(calm) + outcome["forked"]
        assert attack(bridge, "ok", text="after the bomb") == "after the bomb"
        # When the worker goes, its PID namespace takes every child with it; a fresh worker
        # (a namespace of its own, counted afresh) starts and answers.
        worker.kill("the test is done with it")
        assert attack(bridge, "ok", text="fresh") == "fresh"
        assert bridge.worker("attacks") is not worker
        assert wait_until(lambda: len(descendants(os.getpid()) - baseline) <= len(calm), 10), \
            len(descendants(os.getpid()) - baseline)
        bystander.check()
    assert wait_until(lambda: descendants(os.getpid()) <= baseline, 10), \
        len(descendants(os.getpid()) - baseline)


@pytest.mark.parametrize("profile", PROFILES)
def test_a_memory_bomb_is_stopped_by_the_address_space_limit(store: PluginStore,
                                                             profile: str) -> None:
    # strict has a default limit; standard has none, and applies the one the host sets. Under
    # strict the bomb takes address space (fresh pages cost the kernel nothing); under standard
    # it writes every page, a smaller bomb.
    limits = None if profile == "strict" else WorkerLimits(memory_bytes=320 << 20)
    expected = PROFILE_LIMITS["strict"].memory_bytes if limits is None else limits.memory_bytes
    assert expected is not None
    with open_bridge(store, profile, limits=limits) as bridge:
        bystander = Bystander.start(bridge)
        assert attack(bridge, "whoami")["limits"]["RLIMIT_AS"] == expected
        try:
            outcome = attack(bridge, "memory_bomb", touch=profile == "standard", timeout=120)
        except WorkerCrashedError:  # killed for it: as good
            pass
        else:
            assert outcome.get("refused") is None, outcome
            assert outcome == {"ok": False, "error": "MemoryError", "limit": expected,
                               "allocated_mb": outcome["allocated_mb"]}
            assert outcome["allocated_mb"] < expected >> 20
        assert attack(bridge, "ok", text="after the bomb") == "after the bomb"
        bystander.check()


@pytest.mark.parametrize("profile", PROFILES)
def test_a_cpu_spin_is_stopped_by_the_call_deadline(store: PluginStore, profile: str) -> None:
    with open_bridge(store, profile) as bridge:
        bystander = Bystander.start(bridge)
        pid = bridge.worker("attacks").pid
        assert pid is not None
        started = time.monotonic()
        with pytest.raises(CallTimeoutError, match="deadline"):
            bridge.call_tool("attacks", "spin", {"seconds": 3600}, timeout=1)
        assert time.monotonic() - started < 5
        assert wait_until(lambda: not alive(pid), 5)
        assert attack(bridge, "ok", text="after the spin") == "after the spin"
        assert bridge.worker("attacks").pid != pid
        bystander.check()


@pytest.mark.parametrize("profile", PROFILES)
def test_descriptor_exhaustion_is_stopped_by_the_open_files_limit(store: PluginStore,
                                                                  profile: str) -> None:
    limit = PROFILE_LIMITS[profile].open_files
    assert limit is not None
    host_fds = len(os.listdir("/proc/self/fd"))
    with open_bridge(store, profile) as bridge:
        bystander = Bystander.start(bridge)
        outcome = attack(bridge, "exhaust_fds")
        assert outcome["ok"] is False and outcome["errno"] == errno.EMFILE, outcome
        assert outcome["limit"] == limit
        assert limit - 16 < outcome["opened"] < limit, outcome
        # The worker still answers (over the descriptor it already had) and opens files again.
        assert attack(bridge, "exhaust_fds", cap=8)["opened"] == 8
        bystander.check()
    assert len(os.listdir("/proc/self/fd")) <= host_fds
