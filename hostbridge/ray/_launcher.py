"""The host's side of Ray: :class:`RayLauncher` places a worker on a node, and relays.

A :class:`~hostbridge.Worker` asks its launcher for a connected socket and a process
(``Launcher.start``). This launcher:

1. picks a live node (the one with the fewest of its workers; not one whose agent just died
   under this plugin's worker, while there is another) and gets that node's agent, an actor
   pinned there (:class:`~hostbridge.ray._agent.NodeAgent`);
2. sends it the plugin's lock entry, asks which wheels the node lacks, and ships only those,
   read from the store's wheelhouse and hashed again here (the node hashes them too);
3. has it start the worker with the local launcher and the profile the host chose;
4. returns the host's end of a local socketpair whose far end two threads pump: one pulls what
   the worker wrote (channel bytes into the socket, stdout and stderr into local pipes that
   the worker's output log drains, then the exit status), one pushes what the host wrote.

So the :class:`~hostbridge.Worker` above is unchanged: its protocol, deadlines, heartbeats,
capabilities (served here, in the host), crash errors and the bridge's restart budget. When a
node agent dies (its node died, or its process was killed), the pull fails, the worker reads
the end of its channel and the crash is reported, with the agent's death in its stderr tail;
the next call starts a new worker through a new agent, on another node if there is one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from hostbridge._errors import WorkerStartError
from hostbridge.ray._agent import NodeAgent
from hostbridge.supervision._process import Launched

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from hostbridge.launch._sandbox import WorkerLimits
    from isolator.policy import Permissions
    from isolator.store import InstalledPlugin, PluginStore

log = logging.getLogger("hostbridge.ray")

_PULL_WAIT = 5.0
"""How long the agent holds a pull open when the worker has nothing to say."""
_CALL_TIMEOUT = 60.0
_AVOID = 60.0
"""How long a node whose agent died under a plugin's worker is not chosen for that plugin
again, while another node is alive."""


class RayLauncher:
    """Starts workers on a Ray cluster: ``HostBridge(store, launcher=RayLauncher(address))``.

    *address* is the cluster's (``ray.init(address=...)``: ``HOST:PORT``, ``auto``; None: a
    Ray already initialized in this process, else ``auto``). *node_root* is where each node's
    agent keeps wheels and venvs (default: ``~/.cache/isolator/ray-node`` of the user the
    node runs as). *prepare_timeout* bounds building a venv on a node. Ray is imported on
    first use.
    """

    def __init__(self, address: str | None = None, *, node_root: str | None = None,
                 namespace: str = "isolator", prepare_timeout: float = 600.0,
                 init_options: Mapping[str, Any] | None = None) -> None:
        self.address = address
        self.node_root = node_root
        self.namespace = namespace
        self.prepare_timeout = prepare_timeout
        self.init_options = dict(init_options or {})
        self._agents: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._processes: list[RemoteProcess] = []
        self._lost: dict[str, dict[str, float]] = {}  # plugin -> node -> when its agent died
        self._turn = 0
        self.placements: dict[str, str] = {}
        """The node each plugin's latest worker was started on (its Ray node id)."""

    # ---- Ray --------------------------------------------------------------------------------

    def connect(self) -> Any:
        """Ray, connected to the cluster (once per process)."""
        try:
            import ray  # noqa: PLC0415 - nothing of Ray unless asked for
        except ImportError:
            raise WorkerStartError("Ray", "is not installed here; install the ray extra: "
                                   "pip install 'isolator[ray]'") from None
        if not ray.is_initialized():
            options: dict[str, Any] = {"namespace": self.namespace,
                                       "logging_level": logging.WARNING,
                                       "log_to_driver": False}
            options.update(self.init_options)
            ray.init(address=self.address or "auto", **options)
        return ray

    def nodes(self) -> list[str]:
        """The ids of the cluster's live nodes, in a stable order."""
        ray = self.connect()
        return sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive"))

    def agent(self, node: str) -> Any:
        """Node *node*'s agent, started there now if this launcher has none alive."""
        ray = self.connect()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # noqa: PLC0415

        with self._lock:
            agent = self._agents.get(node)
        if agent is not None:
            return agent
        actor = _actor_class(ray).options(
            num_cpus=0, max_concurrency=1000, max_restarts=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
        agent = actor.remote(self.node_root)
        with self._lock:
            self._agents[node] = agent
        return agent

    def _agent_died(self, node: str, agent: Any, plugin: str | None) -> None:
        with self._lock:
            if self._agents.get(node) is agent:
                del self._agents[node]
            if plugin is not None:
                self._lost.setdefault(plugin, {})[node] = time.monotonic()

    def doctor(self) -> list[dict[str, Any]]:
        """Each live node: its agent's report (host name, Python, the sandbox layers that work
        there), or the error that kept it from answering."""
        ray = self.connect()
        reports = []
        for node in self.nodes():
            agent = self.agent(node)
            try:
                reports.append(ray.get(agent.info.remote(), timeout=_CALL_TIMEOUT))
            except Exception as exc:
                self._agent_died(node, agent, None)
                reports.append({"node_id": node, "error": _first_line(exc)})
        return reports

    def close(self) -> None:
        """Stop this launcher's node agents (their workers die with them)."""
        with self._lock:
            agents, self._agents = list(self._agents.values()), {}
        if not agents:
            return
        ray = self.connect()
        for agent in agents:
            with contextlib.suppress(Exception):
                ray.kill(agent)

    # ---- placement ----------------------------------------------------------------------------

    def _choose(self, plugin: str) -> str:
        nodes = self.nodes()
        if not nodes:
            raise WorkerStartError(f"plugin {plugin!r}", "the Ray cluster has no live node")
        now = time.monotonic()
        with self._lock:
            self._processes = [p for p in self._processes if p.poll() is None and
                               not p.ended]
            load = Counter(p.node for p in self._processes)
            lost = {n for n, t in self._lost.get(plugin, {}).items() if now - t < _AVOID}
            self._turn += 1
            turn = self._turn
        candidates = [n for n in nodes if n not in lost] or nodes
        return min(candidates,
                   key=lambda n: (load[n], (nodes.index(n) - turn) % len(nodes)))

    # ---- the launcher ---------------------------------------------------------------------

    def start(self, store: PluginStore, name: str, installed: InstalledPlugin, *,
              profile: str, grants: Permissions, env_allow: Iterable[str],
              limits: WorkerLimits) -> Launched:
        """Start plugin *name*'s worker on a node (see the module's docstring). An agent that
        dies while it starts the worker is left behind and another tried, once."""
        if installed.venv is None:
            raise WorkerStartError(f"plugin {name!r}", "is content-only: it has no code to run")
        top, entry, wheels = _lock_entry(store, name, installed)
        ray = self.connect()
        from ray.exceptions import GetTimeoutError, RayActorError  # noqa: PLC0415

        for attempt in (1, 2):
            node = self._choose(name)
            agent = self.agent(node)
            where = f"plugin {name!r} on Ray node {node[:12]}"
            try:
                missing = ray.get(agent.missing.remote(top, entry), timeout=_CALL_TIMEOUT)
                shipped = {sha: wheels[sha].read_bytes() for sha in missing}
                for sha, data in shipped.items():
                    _check_sha(sha, data, wheels[sha])
                key = ray.get(agent.prepare.remote(top, entry, shipped),
                              timeout=self.prepare_timeout)
                started = ray.get(agent.start.remote(key, name, profile=profile, grants=grants,
                                                     env_allow=list(env_allow), limits=limits),
                                  timeout=_CALL_TIMEOUT)
            except RayActorError as exc:
                self._agent_died(node, agent, name)
                if attempt == 2:
                    raise WorkerStartError(where, f"its node agent died: {_first_line(exc)}") \
                        from None
                continue
            except GetTimeoutError:
                raise WorkerStartError(where, "the node agent did not answer in time") from None
            except Exception as exc:
                raise WorkerStartError(where, f"not started: {_remote_message(exc)}") from None
            break
        near, far = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        process = RemoteProcess(self, agent, node, plugin=name, wid=started["wid"], far=far)
        with self._lock:
            self._processes.append(process)
            self.placements[name] = node
        process.start()
        return Launched(near, process, started["sandbox"], None)


class RemoteProcess:
    """A worker on a node, as a :class:`subprocess.Popen` is to a local one: ``pid`` (on its
    node), ``stdout``/``stderr`` (local pipes the relay fills), ``poll``, ``wait``, ``kill``."""

    def __init__(self, launcher: RayLauncher, agent: Any, node: str, *, plugin: str, wid: str,
                 far: socket.socket) -> None:
        self.launcher = launcher
        self.agent = agent
        self.node = node
        """The Ray node id it runs on."""
        self.plugin = plugin
        self.wid = wid
        self._far = far
        out_r, self._out_w = os.pipe()
        err_r, self._err_w = os.pipe()
        self.stdout = os.fdopen(out_r, "rb", buffering=0)
        self.stderr = os.fdopen(err_r, "rb", buffering=0)
        self.returncode: int | None = None
        self.ended = False
        self._done = threading.Event()
        self._pid: int | None = None
        self._pusher: threading.Thread | None = None

    def start(self) -> None:
        for target, what in ((self._pull, "pull"), (self._push, "push")):
            thread = threading.Thread(target=target, daemon=True,
                                      name=f"hostbridge-{self.plugin}-ray-{what}")
            thread.start()
            if what == "push":
                self._pusher = thread

    @property
    def pid(self) -> int:
        """The worker interpreter's pid on its node (0 if the node cannot say)."""
        if self._pid is None:
            ray = self.launcher.connect()
            try:
                self._pid = int(ray.get(self.agent.pid.remote(self.wid), timeout=10) or 0)
            except Exception:
                return 0
        return self._pid

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(f"worker of {self.plugin!r} on Ray node "
                                            f"{self.node[:12]}", timeout or 0.0)
        return self.returncode

    def kill(self) -> None:
        """Kill the worker's whole tree on its node (when its agent still lives)."""
        if self._done.is_set():
            return
        with contextlib.suppress(Exception):
            self.agent.kill.remote(self.wid)

    # ---- the relay ------------------------------------------------------------------------

    def _pull(self) -> None:
        ray = self.launcher.connect()
        code: int | None = None
        lost: str | None = None
        try:
            while True:
                try:
                    batch = ray.get(self.agent.pull.remote(self.wid, _PULL_WAIT),
                                    timeout=_PULL_WAIT + _CALL_TIMEOUT)
                except Exception as exc:
                    lost = _first_line(exc)
                    break
                _write_all(self._out_w, batch["out"])
                _write_all(self._err_w, batch["err"])
                if batch["data"]:
                    with contextlib.suppress(OSError):  # the host closed its end: drop it
                        self._far.sendall(batch["data"])
                if batch["end"]:
                    code = batch["code"]
                    break
        finally:
            if lost is not None:
                self.launcher._agent_died(self.node, self.agent, self.plugin)
                log.warning("worker of %s: the node agent on Ray node %s is gone: %s",
                            self.plugin, self.node[:12], lost)
                _write_all(self._err_w, f"hostbridge.ray: the node agent on Ray node "
                           f"{self.node[:12]} is gone ({lost})\n".encode())
            # The exit status, then the last words, then the end of the channel: the worker's
            # reader finds each of them in place when it reads the end.
            self.returncode = code
            self.ended = True
            for fd in (self._out_w, self._err_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._done.set()
            with contextlib.suppress(OSError):
                self._far.shutdown(socket.SHUT_RDWR)
            if self._pusher is not None:
                self._pusher.join(timeout=2.0)
            self._far.close()

    def _push(self) -> None:
        ray = self.launcher.connect()
        while True:
            try:
                data = self._far.recv(256 << 10)
            except OSError:
                return
            if self._done.is_set():
                return
            try:
                ok = ray.get(self.agent.push.remote(self.wid, data), timeout=_CALL_TIMEOUT)
            except Exception:
                return  # the pull side sees the agent gone
            if not data or not ok:
                return


_ACTOR: Any = None


def _actor_class(ray: Any) -> Any:
    global _ACTOR  # noqa: PLW0603 - made once per process, on first use
    if _ACTOR is None:
        _ACTOR = ray.remote(NodeAgent)
    return _ACTOR


def _lock_entry(store: PluginStore, name: str,
                installed: InstalledPlugin) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The lock entry of the plugin whose venv *installed* runs in, and its wheels in the
    store's wheelhouse (sha256 -> path, each hashed again now)."""
    top = installed.brought_by or name
    entry = store.lock()["plugins"].get(top)
    if entry is None or entry.get("kind") != "package":
        raise WorkerStartError(f"plugin {name!r}", f"the store's lock has no package entry "
                               f"for {top!r}")
    locked = {d["sha256"] for d in entry["distributions"]}
    have = {d.sha256 for d in installed.distributions}
    if locked != have:
        raise WorkerStartError(f"plugin {name!r}", "changed while its worker was starting "
                               "(an upgrade?); try again")
    wheels = {}
    for dist in installed.distributions:
        try:
            wheels[dist.sha256] = store.wheelhouse.verified(dist.artifact())
        except Exception as exc:
            raise WorkerStartError(f"plugin {name!r}", f"cannot ship {dist.filename}: "
                                   f"{exc}") from None
    return top, entry, wheels


def _check_sha(sha: str, data: bytes, path: Any) -> None:
    import hashlib  # noqa: PLC0415

    if hashlib.sha256(data).hexdigest() != sha:
        raise WorkerStartError(str(path), "changed while it was read for shipping")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except OSError:
            return  # the output log is closed: nobody reads it any more
        view = view[written:]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


def _remote_message(exc: BaseException) -> str:
    """What an exception raised in the agent says, without Ray's wrapping and traceback."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    return _first_line(exc)
