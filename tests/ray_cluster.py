"""A Ray cluster on the loopback address, started and stopped by the tests (and the benchmark).

Ray is not in the test extra (CI installs ``.[test]``): :func:`ray_python` is the interpreter of
this venv when it can import Ray (a developer who installed the ``ray`` extra), else of a venv
cached under ``~/.cache/isolator-tests`` with the ``ray`` extra and this clone installed
editable, built once (about a minute: the ray wheel comes from PyPI) and reused. The host side
of each Ray test runs in that interpreter, as a script (``tests/ray_scenarios.py``) whose last
line of output is JSON.

:class:`RayCluster` runs ``ray start --head`` at 127.0.0.1 (a free port, its own temp dir, no
dashboard, no usage stats), and optionally more nodes on the same machine
(``ray start --address``); :meth:`RayCluster.stop` kills exactly the processes of that temp dir,
never another Ray on the machine (``ray stop`` would stop every one).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import oracle

REPO = Path(__file__).resolve().parent.parent
RAY_REQUIREMENT = "ray>=2.40"
# The cluster is reached at 127.0.0.1:PORT. (Ray records a node's address as the machine's own
# even when told 127.0.0.1, unless clusters are switched off, which forbids a second node.)
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}


def ray_python(*, cached_venv: bool = False) -> Path:
    """An interpreter that imports Ray and this clone's isolator (see the module docstring);
    *cached_venv* (or ``ISOLATOR_TEST_RAY_VENV=cached``): the cached venv even where this one
    has Ray, as on a machine where CI installed ``.[test]`` only."""
    cached_venv = cached_venv or os.environ.get("ISOLATOR_TEST_RAY_VENV") == "cached"
    probe = subprocess.run([sys.executable, "-c", "import ray, hostbridge.ray"],
                           capture_output=True, check=False)
    if probe.returncode == 0 and not cached_venv:
        return Path(sys.executable)
    key = oracle._bytes_sha256(RAY_REQUIREMENT.encode(), str(sys.version_info[:2]).encode(),
                               (REPO / "pyproject.toml").read_bytes(), str(REPO).encode())[:16]
    venv = oracle.cache_dir() / f"ray-venv-{key}"
    python = venv / "bin" / "python"
    ready = venv / ".isolator-ready"
    if ready.is_file():
        return python
    with oracle._locked(venv.with_name(venv.name + ".lock")):
        if ready.is_file():
            return python
        uv = str(oracle.uv_binary())
        env = oracle.installer_env()
        if venv.exists():
            subprocess.run(["rm", "-rf", str(venv)], check=True)
        oracle.run_checked([uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
                           env=env, timeout=300, what="making the ray venv")
        oracle.run_checked([uv, "pip", "install", "--quiet", "--python", str(python),
                            "--editable", f"{REPO}[ray]"],
                           env=env, timeout=900, what="installing isolator[ray]")
        ready.write_text(RAY_REQUIREMENT + "\n", encoding="utf-8")
    return python


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RayCluster:
    """A head node (and more nodes) on 127.0.0.1; ``address`` is what ``ray.init`` takes."""

    def __init__(self, python: Path, *, num_cpus: int = 2) -> None:
        self.python = python
        self.ray = str(python.parent / "ray")
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # Short: Ray's socket paths live under it (108 bytes at most).
        self.temp_dir = tempfile.mkdtemp(prefix="ohp-ray-", dir="/tmp")
        self.groups: list[int] = []
        self.env = {**os.environ, **RAY_ENV}
        for name in ("RAY_ADDRESS", "VIRTUAL_ENV", "PYTHONPATH"):
            self.env.pop(name, None)
        self._run(["start", "--head", "--node-ip-address=127.0.0.1", f"--port={self.port}",
                   f"--num-cpus={num_cpus}", "--include-dashboard=false",
                   "--disable-usage-stats", f"--temp-dir={self.temp_dir}"])

    def _run(self, args: list[str]) -> None:
        # A session of its own: every process it leaves running (Ray's agents rename themselves
        # and forget the temp dir) is in its process group, which stop() kills.
        proc = subprocess.Popen([self.ray, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env,
                                start_new_session=True)
        self.groups.append(proc.pid)
        try:
            stdout, stderr = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        if done.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray {' '.join(args)} failed:\n{done.stdout[-2000:]}\n"
                               f"{done.stderr[-2000:]}")

    def add_node(self, num_cpus: int = 1) -> None:
        """Another node (its own raylet) on this machine."""
        self._run(["start", f"--address={self.address}", "--node-ip-address=127.0.0.1",
                   f"--num-cpus={num_cpus}", "--disable-usage-stats"])

    def processes(self) -> list[int]:
        """The pids of this cluster's processes (their command lines name its temp dir)."""
        pids = []
        mark = self.temp_dir.encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            with contextlib.suppress(OSError), open(f"/proc/{entry}/cmdline", "rb") as handle:
                if mark in handle.read():
                    pids.append(int(entry))
        return pids

    def stop(self) -> None:
        """Kill this cluster's processes: the process groups of its ``ray start`` commands and
        whatever still names its temp dir."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.processes()
            for group in self.groups:
                with contextlib.suppress(OSError):
                    os.killpg(group, sig)
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 5
            while pids and time.monotonic() < deadline:
                pids = [p for p in pids if _alive(p)]
                time.sleep(0.1)
        subprocess.run(["rm", "-rf", self.temp_dir], check=False)

    def run(self, *args: str, timeout: float = 300) -> Any:
        """``tests/ray_scenarios.py ARGS`` with the Ray interpreter; its last line, as JSON."""
        done = subprocess.run(
            [str(self.python), str(REPO / "tests" / "ray_scenarios.py"), self.address, *args],
            capture_output=True, text=True, env=self.env, timeout=timeout, check=False)
        if done.returncode != 0:
            raise AssertionError(f"scenario {args} failed (exit {done.returncode}):\n"
                                 f"{done.stdout[-4000:]}\n{done.stderr[-6000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return False
