"""The host's view of plugin code: tools as proxies, each plugin's code in its own worker.

:class:`HostBridge` keeps one :class:`~hostbridge._process.Worker` per plugin of its store,
started on first use and reused; :meth:`HostBridge.close` (also run at interpreter exit) stops
them all. A tool is a :class:`RemoteTool`: name, description and input schema as the worker
derived them, called sync (``tool(**arguments)``, :meth:`RemoteTool.call`) or async
(:meth:`RemoteTool.acall`), returning a :class:`ToolResult`.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from isolator._store import PluginStore, default_store

from ._errors import RemoteError, ToolArgumentsError, ToolNotFoundError
from ._process import Worker

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

_bridges: weakref.WeakSet[HostBridge] = weakref.WeakSet()


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

    *env_allow* names host environment variables a worker may see besides PATH, HOME and
    LANG; *capabilities* are the host functions a worker may call back (by name).
    """

    def __init__(
        self,
        store: PluginStore | None = None,
        *,
        env_allow: Iterable[str] = (),
        capabilities: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        self.store = store if store is not None else default_store()
        self.env_allow = tuple(env_allow)
        self.capabilities = dict(capabilities or {})
        self._workers: dict[str, Worker] = {}
        self._tools: dict[str, dict[str, RemoteTool]] = {}
        self._lock = threading.Lock()
        _bridges.add(self)

    def __enter__(self) -> HostBridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- workers ---------------------------------------------------------------------------

    def worker(self, plugin: str) -> Worker:
        """The running worker of *plugin*, started now if there is none (or it died)."""
        with self._lock:
            worker = self._workers.get(plugin)
            if worker is not None and worker.alive:
                return worker
            if worker is not None:
                worker.close(timeout=1.0)
            worker = Worker(self.store, plugin, env_allow=self.env_allow,
                            capabilities=self.capabilities)
            worker.start()
            self._workers[plugin] = worker
            self._tools.pop(plugin, None)
            return worker

    def close(self) -> None:
        """Stop every worker (gracefully, then by force)."""
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
            self._tools.clear()
        for worker in workers:
            worker.close()

    # ---- tools -----------------------------------------------------------------------------

    def tools(self, plugin: str) -> list[RemoteTool]:
        """The tools of *plugin* (its ``openhands.tools`` entry points), as the worker sees
        them."""
        return list(self._tool_map(plugin).values())

    def tool(self, plugin: str, name: str) -> RemoteTool:
        tools = self._tool_map(plugin)
        try:
            return tools[name]
        except KeyError:
            known = ", ".join(sorted(tools)) or "none"
            raise ToolNotFoundError(f"tool {name!r}", f"plugin {plugin!r} has no such tool "
                                    f"(its tools: {known})") from None

    def _tool_map(self, plugin: str) -> dict[str, RemoteTool]:
        cached = self._tools.get(plugin)
        worker = self.worker(plugin)
        if cached is not None:
            return cached
        specs = worker.request("tools.list")
        tools = {spec["name"]: RemoteTool(self, plugin, spec["name"], spec["description"],
                                          spec["input_schema"]) for spec in specs}
        self._tools[plugin] = tools
        return tools

    def call_tool(self, plugin: str, name: str, arguments: Mapping[str, Any],
                  timeout: float | None = None) -> ToolResult:
        """Run tool *name* of *plugin*; an exception in the tool is an ``is_error`` result."""
        self.tool(plugin, name)
        future = self.worker(plugin).submit("tools.call", name, dict(arguments))
        try:
            return _result(future.result(timeout=timeout), name)
        except TimeoutError:
            from ._errors import CallTimeoutError  # noqa: PLC0415

            raise CallTimeoutError(f"tool {name!r} of plugin {plugin!r}",
                                   f"no result within {timeout:g} s") from None
        except RemoteError as exc:
            raise _translate(exc, plugin, name) from None

    async def acall_tool(self, plugin: str, name: str, arguments: Mapping[str, Any],
                         timeout: float | None = None) -> ToolResult:
        """:meth:`call_tool` for asyncio."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.tool, plugin, name)
        worker = await loop.run_in_executor(None, self.worker, plugin)
        future = asyncio.wrap_future(worker.submit("tools.call", name, dict(arguments)))
        try:
            raw = await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            from ._errors import CallTimeoutError  # noqa: PLC0415

            raise CallTimeoutError(f"tool {name!r} of plugin {plugin!r}",
                                   f"no result within {timeout:g} s") from None
        except RemoteError as exc:
            raise _translate(exc, plugin, name) from None
        return _result(raw, name)


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
