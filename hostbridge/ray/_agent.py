"""The node agent: one Ray actor per node, in the host's Python environment (isolator
installed, Ray importable), never in a plugin's venv.

It builds a plugin's venv on its node from the host's lock entry and the wheels the host ships
(hash-verified here; one store per lock entry, so a venv is built once per node and reused),
starts the worker with the same :class:`~hostbridge.supervision._process.LocalLauncher` and
sandbox profile as a local worker, and relays the worker's bytes: ``pull`` hands the host what
the worker wrote (its channel, stdout, stderr) and finally its exit status; ``push`` writes what
the host sent. It serves nothing itself: every call the worker makes goes to the host.

Layout of its root (``~/.cache/isolator/ray-node`` unless the host says otherwise)::

    wheels/<sha256>/<file>   every wheel the host shipped, checked against its sha256
    envs/<key>/              a store holding one plugin as one lock entry says (key: its hash)
    cache/uv/                uv's cache, shared by those stores
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hostbridge.launch._sandbox import WorkerLimits
    from hostbridge.supervision._process import Launched
    from isolator.policy import Permissions
    from isolator.store import InstalledPlugin, PluginStore

_BUFFER = 8 << 20
"""What the agent holds of a worker's output (channel, stdout, stderr each) until the host
pulls it; past that it stops reading, and the worker's writes block, as they would locally."""
_BATCH = 4 << 20
_READ = 256 << 10
_SHA256_LEN = 64


def default_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "isolator" / \
        "ray-node"


def entry_key(entry: dict[str, Any]) -> str:
    """The cache key of one lock entry: its sha256 (the lock format is canonical JSON)."""
    text = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class NodeAgent:
    """The agent's code; :func:`hostbridge.ray._launcher.RayLauncher` makes it an actor."""

    def __init__(self, root: str | None = None) -> None:
        self.root = Path(root) if root else default_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self._relays: dict[str, _Relay] = {}
        self._lock = threading.Lock()
        self._prepare_locks: dict[str, threading.Lock] = {}

    # ---- what the node is ----------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """This node: its Ray id, host name, the agent's pid and Python, the sandbox layers
        that work here (``ohp doctor --ray``)."""
        import ray  # noqa: PLC0415 - the agent runs in a Ray worker

        from hostbridge.launch._sandbox import sandbox_layers  # noqa: PLC0415

        return {"node_id": ray.get_runtime_context().get_node_id(),
                "hostname": socket.gethostname(), "pid": os.getpid(),
                "python": sys.executable, "root": str(self.root),
                "sandbox_layers": sandbox_layers(),
                "workers": len(self._relays)}

    # ---- the venv --------------------------------------------------------------------------

    def missing(self, top: str, entry: dict[str, Any]) -> list[str]:
        """The sha256 of each wheel of *entry* this node lacks (none once its venv is built)."""
        key = entry_key(entry)
        if (self.root / "envs" / key / ".isolator-ray-ready").is_file():
            return []
        return [d["sha256"] for d in _dists(entry)
                if not _verified(self._wheel_path(d["sha256"], d["file"]), d["sha256"])]

    def prepare(self, top: str, entry: dict[str, Any], wheels: dict[str, bytes]) -> str:
        """Build plugin *top*'s venv as lock *entry* says, from the wheels here and *wheels*
        (sha256 -> bytes, each checked); returns the key of its store. Once per node."""
        from isolator.store import PluginStore  # noqa: PLC0415

        key = entry_key(entry)
        with self._lock:
            lock = self._prepare_locks.setdefault(key, threading.Lock())
        with lock:
            envs = self.root / "envs"
            ready = envs / key / ".isolator-ray-ready"
            if ready.is_file():
                return key
            wanted = {d["sha256"]: d["file"] for d in _dists(entry)}
            for sha, data in wheels.items():
                if sha not in wanted:
                    raise ValueError(f"a wheel shipped for {top!r} is not in its lock entry "
                                     f"({sha[:12]})")
                actual = hashlib.sha256(data).hexdigest()
                if actual != sha:
                    raise ValueError(f"{wanted[sha]}: shipped bytes have sha256 {actual}, the "
                                     f"lock says {sha}")
                _write_once(self._wheel_path(sha, wanted[sha]), data)
            # The node's lock names the node's copies: it needs no index and no host path.
            local = dict(entry)
            local["distributions"] = [
                {**d, "url": self._wheel_path(d["sha256"], d["file"]).as_uri()}
                for d in _dists(entry)]
            envs.mkdir(exist_ok=True)
            store = PluginStore(envs / key, cache_dir=self.root / "cache" / "uv")
            store.sync({"version": 1, "plugins": {top: local}})
            ready.write_text(json.dumps({"plugin": top, "at": time.time()}) + "\n",
                             encoding="utf-8")
            return key

    def _wheel_path(self, sha: str, file: str) -> Path:
        if len(sha) != _SHA256_LEN or not all(c in "0123456789abcdef" for c in sha) or \
                "/" in file or file.startswith("."):
            raise ValueError(f"not a wheel's sha256 and file name: {sha!r}, {file!r}")
        return self.root / "wheels" / sha / file

    # ---- the worker ------------------------------------------------------------------------

    def start(self, key: str, name: str, *, profile: str, grants: Permissions,
              env_allow: list[str], limits: WorkerLimits) -> dict[str, Any]:
        """Start plugin *name*'s worker from store *key* (made by :meth:`prepare`) through the
        local launcher; returns its relay id and the sandbox layers applied to it."""
        from hostbridge.supervision._process import LocalLauncher  # noqa: PLC0415
        from isolator.store import PluginStore  # noqa: PLC0415

        store = PluginStore(self.root / "envs" / key, cache_dir=self.root / "cache" / "uv")
        lease = store.lease(name)
        installed = lease.__enter__()
        try:
            # exec unless the node's ISOLATOR_WORKER_START asks for the zygote: forked on a
            # node, each start took about 0.5 s (measured by bench_ray; not yet understood).
            mode = os.environ.get("ISOLATOR_WORKER_START") or "exec"
            launched = LocalLauncher(start=mode).start(store, name, installed, profile=profile,
                                             grants=grants, env_allow=env_allow, limits=limits)
        except BaseException:
            lease.__exit__(None, None, None)
            raise
        relay = _Relay(launched, lease, store, installed)
        wid = secrets.token_hex(8)
        with self._lock:
            self._relays[wid] = relay
        relay.start(lambda: self._forget(wid))
        return {"wid": wid, "sandbox": dict(launched.sandbox)}

    def _forget(self, wid: str) -> None:
        with self._lock:
            self._relays.pop(wid, None)

    def _relay(self, wid: str) -> _Relay | None:
        with self._lock:
            return self._relays.get(wid)

    def pid(self, wid: str) -> int | None:
        relay = self._relay(wid)
        return None if relay is None else relay.worker_pid()

    def pull(self, wid: str, timeout: float) -> dict[str, Any]:
        """What worker *wid* wrote since the last pull (waits up to *timeout* s for something);
        ``end`` with its exit ``code`` once it is gone and everything was pulled."""
        relay = self._relay(wid)
        if relay is None:
            return {"data": b"", "out": b"", "err": b"", "end": True, "code": None}
        return relay.pull(timeout)

    def push(self, wid: str, data: bytes) -> bool:
        """Write *data* to worker *wid*'s channel (empty: the host closed its end)."""
        relay = self._relay(wid)
        return relay is not None and relay.push(data)

    def kill(self, wid: str) -> None:
        """Kill worker *wid*'s whole process tree now."""
        relay = self._relay(wid)
        if relay is not None:
            relay.kill()


class _Relay:
    """One worker's process and channel on this node, and what it wrote, held for the host."""

    def __init__(self, launched: Launched, lease: Any, store: PluginStore,
                 installed: InstalledPlugin) -> None:
        self.sock = launched.sock
        self.proc: Any = launched.process  # a Popen, or a zygote-forked ForkedProcess
        self.launch = launched.launch
        self.lease = lease
        self.store = store
        self.installed = installed
        self.cond = threading.Condition()
        self.buffers = {"data": bytearray(), "out": bytearray(), "err": bytearray()}
        self.open = set(self.buffers)
        self.code: int | None = None
        self.ended = False
        self._pid: int | None = None
        self._readers: list[threading.Thread] = []
        self._forget: Any = None

    def start(self, forget: Any) -> None:
        self._forget = forget
        assert self.proc.stdout is not None and self.proc.stderr is not None
        for stream, read in (("data", lambda: self.sock.recv(_READ)),
                             ("out", _reader(self.proc.stdout.fileno())),
                             ("err", _reader(self.proc.stderr.fileno()))):
            thread = threading.Thread(target=self._read, args=(stream, read), daemon=True,
                                      name=f"isolator-ray-relay-{stream}")
            thread.start()
            self._readers.append(thread)

    def _read(self, stream: str, read: Any) -> None:
        buffer = self.buffers[stream]
        try:
            while True:
                with self.cond:
                    while len(buffer) >= _BUFFER and not self.ended:
                        self.cond.wait()
                try:
                    chunk = read()
                except OSError:
                    chunk = b""
                with self.cond:
                    if not chunk:
                        self.open.discard(stream)
                        self.cond.notify_all()
                        break
                    buffer += chunk
                    self.cond.notify_all()
        finally:
            if stream == "data":
                self._finish()

    def _finish(self) -> None:
        # The channel ended: the worker is gone for the host. As a local worker's reader
        # does, give the process half a second to exit, then it goes (its whole tree).
        code: int | None
        try:
            code = self.proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            self.kill()
            try:
                code = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
        for thread in self._readers[1:]:
            thread.join(timeout=0.5)  # stdout and stderr: their last words
        with self.cond:
            self.code = code
            self.ended = True
            self.cond.notify_all()

    def pull(self, timeout: float) -> dict[str, Any]:
        with self.cond:
            self.cond.wait_for(lambda: self.ended or any(self.buffers.values()), timeout)
            data = bytes(self.buffers["data"][:_BATCH])
            del self.buffers["data"][:_BATCH]
            out, err = bytes(self.buffers["out"]), bytes(self.buffers["err"])
            self.buffers["out"].clear()
            self.buffers["err"].clear()
            end = self.ended and not any(self.buffers.values())
            self.cond.notify_all()
            code = self.code
        if end:
            self._cleanup()
        return {"data": data, "out": out, "err": err, "end": end, "code": code}

    def push(self, data: bytes) -> bool:
        try:
            if data:
                self.sock.sendall(data)
            else:
                self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return False
        return True

    def kill(self) -> None:
        if not isinstance(self.proc, subprocess.Popen):  # a worker a zygote forked: it kills
            self.proc.kill()                               # its own tree (pidfds)
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def worker_pid(self) -> int:
        if self._pid is None:
            pid = self.proc.pid
            for _ in range(50):  # under unshare --fork: its child, once it forked
                try:
                    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
                        children = handle.read().split()
                except OSError:
                    break
                if children:
                    self._pid = int(children[0])
                    break
                if not self.launch or not self.launch.layers.get("pid_namespace"):
                    break
                time.sleep(0.01)
            if self._pid is None:
                self._pid = pid
        return self._pid

    def _cleanup(self) -> None:
        forget, self._forget = self._forget, None
        if forget is None:
            return
        forget()
        with contextlib.suppress(OSError):
            self.sock.close()
        if self.launch is not None:
            self.launch.cleanup()
        with contextlib.suppress(Exception):
            self.lease.__exit__(None, None, None)


def _reader(fd: int) -> Any:
    return lambda: os.read(fd, 65536)


def _dists(entry: dict[str, Any]) -> list[dict[str, Any]]:
    dists = entry.get("distributions")
    if entry.get("kind") != "package" or not isinstance(dists, list):
        raise ValueError("expected a package plugin's lock entry with its distributions")
    return dists


def _verified(path: Path, sha: str) -> bool:
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    except OSError:
        return False
    return digest.hexdigest() == sha


def _write_once(path: Path, data: bytes) -> None:
    if _verified(path, hashlib.sha256(data).hexdigest()):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".incoming-{secrets.token_hex(4)}")
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, 0o444)
    os.replace(tmp, path)
