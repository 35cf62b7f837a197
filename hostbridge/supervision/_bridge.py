"""The host's view of plugin code: tools as proxies, each plugin's code in its own worker.

:class:`HostBridge` keeps one :class:`~hostbridge.Worker` per plugin of its store,
started on first use and reused; :meth:`HostBridge.close` (also run at interpreter exit) stops
them all. A tool is a :class:`RemoteTool`: name, description and input schema as the worker
derived them, called sync (``tool(**arguments)``, :meth:`RemoteTool.call`) or async
(:meth:`RemoteTool.acall`), returning a :class:`ToolResult`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import os
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hostbridge._errors import (
    CallTimeoutError,
    PluginFailedError,
    RemoteError,
    ToolArgumentsError,
    ToolNotFoundError,
    WorkerCrashedError,
    WorkerError,
)
from hostbridge.agents._agents import (
    LLM,
    HostTool,
    LLMLimits,
    LLMUsage,
    RemoteAgent,
    llm_capability,
    new_agent_id,
    tool_capability,
)
from hostbridge.agents._registry import CapabilityRegistry, RegistryError
from hostbridge.launch._sandbox import check_profile
from hostbridge.supervision._process import LocalLauncher, Worker
from isolator.store import PluginStore, default_store, write_json_atomic

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from pathlib import Path

    from hostbridge.launch._sandbox import WorkerLimits
    from hostbridge.supervision._process import Launcher

SESSION_CAPABILITY = "agent.session"
"""The capability through which a worker reaches the sessions the host opened for its plugin
(:meth:`HostBridge.open_session`)."""

log = logging.getLogger("hostbridge.bridge")
_bridges: weakref.WeakSet[HostBridge] = weakref.WeakSet()
_schemas: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
"""The tools a worker listed, by store, plugin, generation, profile, grants and the host
variables it is given: listed once per generation in a host process, whatever bridge asks (a
generation is immutable)."""
_schemas_lock = threading.Lock()
_SCHEMAS_KEPT = 4096


@dataclass(frozen=True)
class ToolResult:
    """What a tool returned: its content, or (``is_error``) what went wrong in it."""

    content: Any
    is_error: bool = False
    traceback: str | None = None
    """The worker's traceback when the tool raised."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"content": self.content, "is_error": self.is_error}
        if self.traceback:
            data["traceback"] = self.traceback
        return data


@dataclass(frozen=True)
class RemoteTool:
    """A tool of a plugin, run in the plugin's worker."""

    bridge: HostBridge
    plugin: str
    name: str
    description: str
    input_schema: dict[str, Any]

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "input_schema": self.input_schema}

    def call(self, arguments: Mapping[str, Any] | None = None,
             timeout: float | None = None) -> ToolResult:
        """Run the tool with *arguments* and wait for its result."""
        return self.bridge.call_tool(self.plugin, self.name, arguments or {}, timeout=timeout)

    def __call__(self, **arguments: Any) -> ToolResult:
        return self.call(arguments)

    async def acall(self, arguments: Mapping[str, Any] | None = None,
                    timeout: float | None = None) -> ToolResult:
        """:meth:`call` for asyncio: the event loop is not blocked while the tool runs."""
        return await self.bridge.acall_tool(self.plugin, self.name, arguments or {},
                                            timeout=timeout)


class HostBridge:
    """Runs plugin code for a host: one worker per plugin of *store*, started on first use.

    (Over 400 lines: it is the public facade of the whole bridge (workers, supervision,
    tools, agents, components), and most of its length is the docstrings of that API; the
    work itself is in Worker, RemoteAgent and the CapabilityRegistry.)

    *env_allow* names host environment variables a worker may see besides PATH, HOME and
    LANG; *capabilities* are the host functions a worker may call back (by name); *limits*
    bound each worker's resources.

    Supervision: a worker that crashes is started again on the next call, after a backoff
    (0.1 s doubling with each recent crash, at most 2 s); the *crash_budget* ``(count,
    seconds)`` th crash within the window marks the plugin failed (:class:`PluginFailedError`)
    until :meth:`reset`, which the store remembers across host processes. A background thread
    pings idle workers every *heartbeat* seconds (one that does not answer within
    *heartbeat_timeout* is killed and counts as a crash) and closes workers idle for
    *idle_timeout* seconds.

    *launcher* starts the workers' processes: by default here; ``RayLauncher`` (extra
    ``isolator[ray]``) on a Ray cluster.
    """

    def __init__(
        self,
        store: PluginStore | None = None,
        *,
        env_allow: Iterable[str] = (),
        capabilities: Mapping[str, Callable[..., Any]] | None = None,
        limits: WorkerLimits | None = None,
        idle_timeout: float | None = 300.0,
        heartbeat: float | None = 10.0,
        heartbeat_timeout: float = 5.0,
        crash_budget: tuple[int, float] = (3, 300.0),
        llm: LLM | None = None,
        llm_limits: LLMLimits | None = None,
        host_tools: Sequence[HostTool] = (),
        grants: Mapping[str, Iterable[str]] | None = None,
        profile: str | None = None,
        capability_providers: Mapping[str, str] | None = None,
        launcher: Launcher | None = None,
        worker_start: str | None = None,
    ) -> None:
        self.store = store if store is not None else default_store()
        self.env_allow = tuple(env_allow)
        self.capabilities = dict(capabilities or {})
        self.llm = llm
        self.llm_limits = llm_limits or LLMLimits()
        self.host_tools = tuple(host_tools)
        self.grants = None if grants is None else {k: frozenset(v) for k, v in grants.items()}
        self.llm_usage: dict[str, LLMUsage] = {}
        self.profile = profile
        """The sandbox profile of every worker (:data:`hostbridge.PROFILES`); None: each
        plugin's own (``ohp install --sandbox``), ``standard`` for a plugin without one."""
        self.registry = CapabilityRegistry(overrides=dict(capability_providers or {}))
        """Components enabled through this bridge and the capabilities they provide. A
        capability has one provider: a second is refused unless *capability_providers* (the
        operator's choice, capability -> component) names it."""
        self.limits = limits
        self.idle_timeout = idle_timeout
        self.heartbeat = heartbeat
        self.heartbeat_timeout = heartbeat_timeout
        self.crash_budget = crash_budget
        self._workers: dict[str, Worker] = {}
        self._tools: dict[str, dict[str, RemoteTool]] = {}
        self._lock = threading.Lock()
        self._plugin_locks: dict[str, threading.Lock] = {}
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self._closers: list[Callable[[], None]] = []
        self._sessions: dict[tuple[str, str], Callable[..., Any]] = {}
        if worker_start is not None:
            if launcher is not None:
                raise ValueError("worker_start is the local launcher's: give it or a "
                                 "launcher, not both")
            launcher = LocalLauncher(worker_start)
        self.launcher = launcher
        """Where workers start: None, here (``LocalLauncher``: forked by a zygote, or exec'd,
        as *worker_start* or ``$ISOLATOR_WORKER_START`` says; docs/bridge.md);
        ``hostbridge.ray.RayLauncher`` on a Ray cluster's nodes, with the same contract."""
        _bridges.add(self)

    def __enter__(self) -> HostBridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- workers ---------------------------------------------------------------------------

    def worker(self, plugin: str) -> Worker:
        """The running worker of *plugin*, started now if there is none (or it died)."""
        with self._lock:
            lock = self._plugin_locks.setdefault(plugin, threading.Lock())
        with lock:
            worker = self._workers.get(plugin)
            if worker is not None and worker.alive:
                return worker
            if worker is not None:
                worker.close(timeout=1.0)
            state = self._state(plugin)
            if state.get("failed"):
                window = state.get("window", self.crash_budget[1])
                raise PluginFailedError(
                    f"plugin {plugin!r}", f"its worker crashed {len(state['crashes'])} times "
                    f"in {window:g} s and is not started again until reset "
                    f"(`ohp reset {plugin}`); last: {state.get('last_error', '?')}")
            recent = self._recent(state)
            if recent:
                delay = min(0.1 * 2 ** (len(recent) - 1), 2.0) - (time.time() - recent[-1])
                if delay > 0:
                    time.sleep(delay)
            settings = self.store.settings(plugin)
            profile = self.profile_for(plugin)
            worker = Worker(self.store, plugin, env_allow=self.env_allow,
                            capabilities=self._capabilities_for(plugin, profile,
                                                                settings.grants.capabilities),
                            limits=self.limits, on_crash=self._crashed,
                            on_notification=self._notified, profile=profile,
                            grants=settings.grants, launcher=self.launcher)
            try:
                worker.start()
            except WorkerError as exc:
                self.store.policy.audit("worker.refused", plugin=plugin, profile=profile,
                                        reason=str(exc))
                raise
            self.store.policy.audit("worker.start", plugin=plugin, profile=profile,
                                    worker_pid=worker.pid, sandbox=worker.sandbox)
            with self._lock:
                self._workers[plugin] = worker
                self._tools.pop(plugin, None)
            self._ensure_monitor()
            return worker

    def start(self, plugins: Iterable[str], *, tools: bool = True,
              timeout: float | None = 60.0) -> dict[str, Worker]:
        """Start the workers of *plugins* at once (each from a thread of its own) and, with
        *tools*, list their tools; returns them by plugin. Every plugin is tried; the first
        error (in the order given) is raised once all have finished, the others' workers
        keep running."""
        names = list(dict.fromkeys(plugins))
        if not names:
            return {}

        def one(plugin: str) -> Worker:
            if tools:
                self._tool_map(plugin, timeout)
            return self.worker(plugin)

        started: dict[str, Worker] = {}
        errors: list[BaseException] = []
        with ThreadPoolExecutor(max_workers=min(len(names), 16),
                                thread_name_prefix="hostbridge-start") as pool:
            futures = {name: pool.submit(one, name) for name in names}
            for name, future in futures.items():
                try:
                    started[name] = future.result()
                except Exception as exc:
                    errors.append(exc)
        if errors:
            raise errors[0]
        return started

    def profile_for(self, plugin: str) -> str:
        """The sandbox profile *plugin*'s worker runs under: this bridge's, else the one the
        operator chose for the plugin, else ``standard``; then as operator policy decides
        (``isolator_choose_profile``, ``profile.minimum``)."""
        requested = self.profile or self.store.settings(plugin).sandbox or "standard"
        check_profile(requested)
        return self.store.policy.profile_for(plugin, requested)

    def _capabilities_for(self, plugin: str, profile: str,
                          store_grants: Iterable[str]) -> dict[str, Callable[..., Any]]:
        offered: dict[str, Callable[..., Any]] = dict(self.capabilities)
        if self.llm is not None:
            usage = self.llm_usage.setdefault(plugin, LLMUsage())
            offered["llm.complete"] = self._audited_llm(
                plugin, profile, llm_capability(plugin, self.llm, usage, self.llm_limits))
        if self.host_tools:
            offered["tool.call"] = tool_capability(self.host_tools)
        # Granted: through this bridge's *grants* when given, else what the operator granted
        # the plugin in the store; under the ``off`` profile, everything offered.
        if self.grants is not None:
            granted = self.grants.get(plugin, self.grants.get("*", frozenset()))
        elif profile == "off":
            return offered
        else:
            granted = frozenset(store_grants)
        served = {name: fn if name in granted else self._denied(plugin, profile, name)
                  for name, fn in offered.items()}
        # Not a grant: it reaches only sessions the host opened for this plugin.
        served[SESSION_CAPABILITY] = self._session_capability(plugin)
        return served

    def open_session(self, plugin: str, session_id: str,
                     handler: Callable[..., Any]) -> Callable[[], None]:
        """Serve *plugin*'s worker calls ``agent.session [session_id, op, *args]`` with
        ``handler(op, *args)`` until the returned function is called.

        A session is how the host serves one thing it started in a worker (an SDK agent's
        model calls, tool calls and events): the worker reaches only the sessions the host
        opened for its own plugin, so no grant is needed and no other plugin's is reachable."""
        key = (plugin, session_id)
        with self._lock:
            if key in self._sessions:
                raise ValueError(f"session {session_id!r} of plugin {plugin!r} is open already")
            self._sessions[key] = handler

        def close() -> None:
            with self._lock:
                self._sessions.pop(key, None)
        return close

    def _session_capability(self, plugin: str) -> Callable[..., Any]:
        def serve(session_id: object = None, op: object = None, *args: Any) -> Any:
            with self._lock:
                handler = self._sessions.get((plugin, str(session_id)))
            if handler is None:
                raise PermissionError(f"plugin {plugin!r} has no open session "
                                      f"{str(session_id)[:80]!r}")
            return handler(str(op), *args)
        return serve

    def _denied(self, plugin: str, profile: str, name: str) -> Callable[..., Any]:
        def deny(*_args: object) -> None:
            self.store.policy.audit("deny", plugin=plugin, profile=profile, what="capability",
                                    capability=name)
            raise PermissionError(f"capability {name!r} is not granted to plugin {plugin!r} "
                                  f"(grant it: `ohp configure {plugin} --grant "
                                  f"capability:{name}`)")
        return deny

    def _audited_llm(self, plugin: str, profile: str,
                     complete: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        def call(*args: Any) -> dict[str, Any]:
            try:
                answer = complete(*args)
            except Exception as exc:
                self.store.policy.audit("llm.call", plugin=plugin, profile=profile,
                                        ok=False, error=str(exc))
                raise
            self.store.policy.audit("llm.call", plugin=plugin, profile=profile, ok=True,
                                    model=answer.get("model"), usage=answer.get("usage"))
            return answer
        return call

    def _notified(self, worker: Worker, method: str, params: list[Any]) -> None:
        # Bound to the sending worker: an agent id is looked up among that worker's own agents
        # only, so a plugin cannot inject events into another plugin's agent.
        if method == "agent.event" and len(params) == 2 and isinstance(params[0], str):
            agent = worker.agents.get(params[0])
            if agent is not None:
                agent._event(params[1])

    # ---- agents ----------------------------------------------------------------------------

    def agent_entry(self, plugin: str) -> tuple[str, dict[str, Any]]:
        """*plugin*'s agent factory (``module:function`` of its ``openhands.agents`` entry
        point) and its default configuration (the manifest's ``parameters``)."""
        entries = self.store.entry_points(plugin)["openhands.agents"]
        if not entries:
            raise ToolNotFoundError(f"plugin {plugin!r}", "declares no 'openhands.agents' "
                                    "entry point (no custom agent)")
        entry = next((e for e in entries if e.name == plugin), entries[0])
        manifest = self.store.load(plugin).manifest.to_dict()
        params = manifest.get("parameters") or manifest.get("extra", {}).get("parameters")
        return entry.value, dict(params) if isinstance(params, dict) else {}

    def agent(self, plugin: str, config: Mapping[str, Any] | None = None) -> RemoteAgent:
        """Build *plugin*'s agent (its ``openhands.agents`` entry point) in its worker.

        *config* defaults to the ``parameters`` of the plugin's manifest, if any."""
        ref, defaults = self.agent_entry(plugin)
        if config is None:
            config = defaults
        worker = self.worker(plugin)
        agent_id = new_agent_id()
        try:
            created = worker.request("agent.create", agent_id, ref, dict(config),
                                     [tool.spec() for tool in self.host_tools])
        except RemoteError as exc:
            raise WorkerError(f"agent of plugin {plugin!r}", f"create_agent failed: "
                              f"{exc.message}") from None
        agent = RemoteAgent(worker, plugin, agent_id, str(created.get("type", "agent")))
        worker.agents[agent_id] = agent
        return agent

    # ---- components and the capability registry (seed 000) ---------------------------------

    def enable_component(self, plugin: str, name: str,
                         context: Mapping[str, Any] | None = None) -> list[str]:
        """Enable component *name* of *plugin* (its ``openhands.components`` entry point):
        check its requirements, initialize it in the worker, register what it provides.
        Returns the capabilities it provides."""
        entries = {e.name: e for e in self.store.entry_points(plugin)["openhands.components"]}
        entry = entries.get(name)
        if entry is None:
            known = ", ".join(sorted(entries)) or "none"
            raise RegistryError(f"component {name!r}", f"plugin {plugin!r} has no such "
                                f"component (its components: {known})")
        if name in self.registry.components or name in self.registry.services:
            self.registry.register_component(name, plugin)  # raises: the name is taken
        worker = self.worker(plugin)
        described = worker.request("component.describe", name, entry.value)
        self.registry.check_requirements(name, described["requires"])
        self.registry.check_providers(name, described["capabilities"])  # before it runs
        worker.request("component.initialize", name, dict(context or {}))
        self.registry.register_component(name, plugin, described["capabilities"])
        return list(described["capabilities"])

    def component_health(self, name: str, timeout: float | None = 10.0) -> bool:
        """The component's own health check, run in its worker (False if it cannot answer)."""
        plugin = self._component_plugin(name)
        try:
            return bool(self.worker(plugin).request("component.health", name, timeout=timeout))
        except WorkerError:
            return False

    def disable_component(self, name: str) -> None:
        """Run the component's cleanup in its worker and unregister what it provides."""
        plugin = self._component_plugin(name)
        try:
            self.worker(plugin).request("component.cleanup", name)
        finally:
            self.registry.unregister(name)

    def use(self, capability: str, /, **arguments: Any) -> Any:
        """Ask whichever component provides *capability* (its ``call(capability, **args)``)."""
        provider = self.registry.provider(capability)
        plugin = self._component_plugin(provider)
        return self.worker(plugin).request("component.call", provider, capability, arguments)

    def _component_plugin(self, name: str) -> str:
        plugin = self.registry.components.get(name)
        if plugin is None:
            raise RegistryError(f"component {name!r}", "is not enabled")
        return plugin

    def status(self, plugin: str) -> dict[str, Any]:
        """``state`` (running, stopped or failed), recent ``crashes``, ``pid``, ``last_error``."""
        state = self._state(plugin)
        worker = self._workers.get(plugin)
        running = worker is not None and worker.alive
        return {
            "state": "failed" if state.get("failed") else "running" if running else "stopped",
            "crashes": len(self._recent(state)),
            "pid": worker.pid if running and worker is not None else None,
            "last_error": state.get("last_error"),
        }

    def reset(self, plugin: str) -> None:
        """Forget *plugin*'s crashes: a failed plugin may start again."""
        reset_plugin_state(self.store, plugin)

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run *callback* when this bridge closes, after its workers stop (what an adapter
        holds for as long as the bridge: scratch directories, leases); once, in order."""
        with self._lock:
            self._closers.append(callback)

    def close(self) -> None:
        """Stop every worker (gracefully, then by force), then run the :meth:`on_close`
        callbacks."""
        self._stop.set()
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
            self._tools.clear()
            closers, self._closers = self._closers, []
        for worker in workers:
            worker.close()
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join(timeout=2.0)
        self._monitor = None
        self._stop = threading.Event()
        for closer in closers:
            try:
                closer()
            except Exception:  # one that fails must not keep the others from running
                log.exception("an on_close callback of a HostBridge failed")

    # ---- supervision -----------------------------------------------------------------------

    def _crashed(self, worker: Worker, error: WorkerCrashedError) -> None:
        self.store.policy.audit("worker.crash", plugin=worker.name, profile=worker.profile,
                                reason=error.reason, exit_code=error.exit_code,
                                signal=error.signal)
        state = self._state(worker.name)
        crashes = [*self._recent(state), time.time()]
        count, window = self.crash_budget
        state = {"crashes": crashes, "failed": len(crashes) >= count, "window": window,
                 "last_error": str(error)}
        path = _state_path(self.store, worker.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, state)

    def _state(self, plugin: str) -> dict[str, Any]:
        return read_plugin_state(self.store, plugin)

    def _recent(self, state: dict[str, Any]) -> list[float]:
        window = self.crash_budget[1]
        now = time.time()
        return [t for t in state.get("crashes", []) if now - t <= window]

    def _ensure_monitor(self) -> None:
        if (self.heartbeat is None and self.idle_timeout is None) or \
                (self._monitor is not None and self._monitor.is_alive()):
            return
        ref = weakref.ref(self)
        stop = self._stop
        self._monitor = threading.Thread(target=_monitor, args=(ref, stop),
                                         name="hostbridge-monitor", daemon=True)
        self._monitor.start()

    def _check_workers(self) -> None:
        now = time.monotonic()
        with self._lock:
            workers = list(self._workers.items())
        for plugin, worker in workers:
            if not worker.alive or worker.busy:
                continue
            idle = now - worker.last_used
            if self.idle_timeout is not None and idle >= self.idle_timeout:
                with self._lock:
                    if self._workers.get(plugin) is worker:
                        del self._workers[plugin]
                        self._tools.pop(plugin, None)
                worker.close()
            elif self.heartbeat is not None and \
                    now - max(worker.last_used, worker.last_ping) >= self.heartbeat:
                worker.last_ping = now
                future = worker.submit("ping")
                try:
                    future.result(timeout=self.heartbeat_timeout)
                except TimeoutError:
                    worker.crash = WorkerCrashedError(
                        f"worker of {plugin!r}",
                        f"stopped answering (no heartbeat within {self.heartbeat_timeout:g} s)")
                    worker.kill("stopped answering heartbeats")
                    self._crashed(worker, worker.crash)
                except Exception:
                    pass

    # ---- tools -----------------------------------------------------------------------------

    def tools(self, plugin: str) -> list[RemoteTool]:
        """The tools of *plugin* (its ``openhands.tools`` entry points), as the worker sees
        them."""
        return list(self._tool_map(plugin).values())

    def tool(self, plugin: str, name: str, *, timeout: float | None = None) -> RemoteTool:
        tools = self._tool_map(plugin, timeout)
        try:
            return tools[name]
        except KeyError:
            known = ", ".join(sorted(tools)) or "none"
            raise ToolNotFoundError(f"tool {name!r}", f"plugin {plugin!r} has no such tool "
                                    f"(its tools: {known})") from None

    def _tool_map(self, plugin: str, timeout: float | None = None) -> dict[str, RemoteTool]:
        cached = self._tools.get(plugin)
        worker = self.worker(plugin)
        if cached is not None:
            return cached
        # Once per generation: its files never change. A plugin may derive its schemas from
        # what it sees, so the key has its profile, grants and the variables it is given.
        installed = worker.installed
        seen = sorted({*worker.env_allow, *worker.grants.environment})
        key = (str(self.store.root), plugin, installed.generation if installed else None,
               worker.profile, repr(worker.grants),
               tuple((name, os.environ.get(name)) for name in seen))
        specs = _schemas.get(key) if installed is not None else None
        if specs is None:
            specs = worker.request("tools.list", timeout=timeout)
            if installed is not None:
                with _schemas_lock:
                    while len(_schemas) >= _SCHEMAS_KEPT:
                        del _schemas[next(iter(_schemas))]
                    _schemas[key] = specs
        tools = {spec["name"]: RemoteTool(self, plugin, spec["name"], spec["description"],
                                          spec["input_schema"]) for spec in specs}
        self._tools[plugin] = tools
        return tools

    def call_tool(self, plugin: str, name: str, arguments: Mapping[str, Any],
                  timeout: float | None = None) -> ToolResult:
        """Run tool *name* of *plugin*; an exception in the tool is an ``is_error`` result."""
        started = time.monotonic()
        worker = self._ready(plugin, name)
        if worker is None:
            self.tool(plugin, name, timeout=timeout)  # the deadline covers tools.list too
            worker = self.worker(plugin)
        left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
        try:
            # Worker.call: the calling thread reads its own reply when nothing else is in flight.
            return _result(worker.call("tools.call", name, dict(arguments), timeout=left), name)
        except TimeoutError:
            raise _deadline(worker, plugin, name, timeout) from None
        except RemoteError as exc:
            raise _translate(exc, plugin, name) from None

    def _ready(self, plugin: str, name: str) -> Worker | None:
        """*plugin*'s worker when it runs and its tools, *name* among them, are known: a call
        needs nothing else first."""
        worker = self._workers.get(plugin)
        tools = self._tools.get(plugin)
        # Not Worker.alive, which asks the process (a system call a call): a worker that
        # ended is known by its connection's end (the reader thread sets _dead_reason), one
        # being stopped by _closing.
        if worker is None or tools is None or name not in tools or worker._closing or \
                worker._dead_reason is not None:
            return None
        return worker

    async def acall_tool(self, plugin: str, name: str, arguments: Mapping[str, Any],
                         timeout: float | None = None) -> ToolResult:
        """:meth:`call_tool` for asyncio."""
        worker = self._ready(plugin, name)
        if worker is None:  # a worker to start or tools to list: that blocks, off the loop
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, lambda: self.tool(plugin, name, timeout=timeout))
            worker = await loop.run_in_executor(None, self.worker, plugin)
        # Straight to the worker: the loop (or the reader thread) sets the future; no executor,
        # no task and no wait_for around it: a deadline is a timer that fails the future.
        future = worker.asubmit("tools.call", name, dict(arguments))
        timer = None if timeout is None else \
            asyncio.get_running_loop().call_later(timeout, _expire, future)
        try:
            raw = await future
        except _Expired:
            raise _deadline(worker, plugin, name, timeout) from None
        except asyncio.CancelledError:
            # The caller gave up: a running tool cannot be interrupted, so its worker goes.
            worker.kill(f"killed: the caller cancelled tool {name!r}")
            raise
        except RemoteError as exc:
            raise _translate(exc, plugin, name) from None
        finally:
            if timer is not None:
                timer.cancel()
        return _result(raw, name)


class _Expired(Exception):
    """An asynchronous tool call's deadline passed (set on its future by the timer)."""


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(_Expired())


def _deadline(worker: Worker, plugin: str, name: str, timeout: float | None) -> CallTimeoutError:
    worker.kill(f"killed: tool {name!r} passed its deadline of {timeout:g} s")
    return CallTimeoutError(f"tool {name!r} of plugin {plugin!r}",
                            f"the deadline of {timeout:g} s passed; its worker was stopped "
                            "(the next call starts a new one)")


def _state_path(store: PluginStore, plugin: str) -> Path:
    return store.root / "state" / f"{plugin}.json"


def read_plugin_state(store: PluginStore, plugin: str) -> dict[str, Any]:
    """A plugin's recorded worker crashes (``crashes``: times; ``failed``; ``last_error``)."""
    try:
        data = json.loads(_state_path(store, plugin).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"crashes": [], "failed": False}
    return data if isinstance(data, dict) else {"crashes": [], "failed": False}


def reset_plugin_state(store: PluginStore, plugin: str) -> None:
    """Forget a plugin's crashes (``ohp reset``)."""
    with contextlib.suppress(FileNotFoundError):
        _state_path(store, plugin).unlink()


def failed_plugins(store: PluginStore) -> list[str]:
    """Plugins whose worker crashed past the budget and was not reset (``ohp doctor``)."""
    directory = store.root / "state"
    if not directory.is_dir():
        return []
    return sorted(path.stem for path in directory.glob("*.json")
                  if read_plugin_state(store, path.stem).get("failed"))


def _monitor(ref: weakref.ref[HostBridge], stop: threading.Event) -> None:
    while not stop.wait(0.5):
        bridge = ref()
        if bridge is None:
            return
        try:
            bridge._check_workers()
        finally:
            del bridge


def _result(raw: Any, name: str) -> ToolResult:
    if not isinstance(raw, dict) or "content" not in raw:
        raise RemoteError(f"tools.call {name}", {"type": "ProtocolError",
                                                 "message": f"odd result {raw!r:.100}"})
    return ToolResult(raw["content"], bool(raw.get("is_error")), raw.get("traceback"))


def _translate(exc: RemoteError, plugin: str, name: str) -> Exception:
    if exc.type.endswith("ArgumentsError"):
        return ToolArgumentsError(f"tool {name!r} of plugin {plugin!r}", exc.message)
    if exc.type.endswith("ToolLoadError"):
        return ToolNotFoundError(f"tool {name!r} of plugin {plugin!r}",
                                 f"cannot be loaded: {exc.message}")
    return exc


@atexit.register
def _close_all() -> None:
    for bridge in list(_bridges):
        bridge.close()
