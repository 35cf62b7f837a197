"""The worker: serves one plugin's code to the host over MessagePack-RPC on a socket.

Started by the host as ``VENV/bin/python -I -S -B -c BOOT RUNTIME_DIR CONFIG_JSON``: no
``site``, no user site, no ``PYTHON*`` variables. This module then puts the plugin venv's
site-packages on ``sys.path`` (and the store's msgpack for this ABI after it), so the host's
packages are never importable here. The protocol runs on the socket whose descriptor the host
passed; stdout and stderr are the plugin's own, drained by the host into bounded logs.

Requests served: ``hello`` (the handshake), ``tools.list``, ``tools.call``, ``ping``,
``shutdown``. A tool may call the host back through :func:`host_call` (capabilities the host
grants, such as ``log``).
"""

from __future__ import annotations

import json
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_RECV = 1 << 20

# Set by main(); tools reach the host through host_call().
_session: _Session | None = None


def main(config_text: str) -> None:
    import faulthandler  # noqa: PLC0415 - built in; a native crash then says which signal

    faulthandler.enable()
    config = json.loads(config_text)
    _raise_mmap_threshold()
    serve(config)


def serve(config: dict[str, Any]) -> None:
    """Apply the in-process layers, add the plugin's paths and serve on ``config["fd"]``: the
    rest of :func:`main`, and what a worker forked by the zygote (``.zygote``) runs once its
    outer layers are in place."""
    # Before any plugin code, .pth files of the venv included (_set_path runs them): from
    # here on the filesystem is the venv, the runtime and the interpreter (read) and one
    # scratch directory (write), and the system calls are filtered, as the profile says.
    # (sandbox.py is isolator/sandbox/confine's, copied next to this module by the runtime.)
    from .sandbox import apply  # type: ignore[import-not-found]  # noqa: PLC0415

    config["applied"] = apply(config)
    _set_path(config)
    from . import protocol  # noqa: PLC0415 - msgpack is importable only after _set_path

    # The socket is used through its descriptor: importing socket (selectors, array, the
    # IntEnum conversions) costs about 5 ms of every worker's start.
    fd = int(config["fd"])
    session = _Session(fd, protocol, config)
    global _session  # noqa: PLW0603 - one session per worker process
    _session = session
    try:
        session.serve()
    finally:
        os.close(fd)


def host_call(method: str, *params: object) -> object:
    """Call a capability the host granted (``log``, ...) and return its result."""
    if _session is None:
        raise RuntimeError("host_call() works only inside a worker")
    return _session.call_host(method, list(params))


def _raise_mmap_threshold() -> None:
    """Free one 4 MiB block, so that glibc's malloc raises its mmap threshold (128 KiB at
    first) to 4 MiB: the 1 MiB buffer of every read, and the buffers of large messages, then
    come from the heap. Else each is a fresh mmap, page faults and a munmap: about 20 us for
    every read of a small message, and a 1 MiB echo costs the worker 2-3x its CPU. bytes(n)
    is calloc'd: nothing is touched (other allocators ignore this)."""
    block = bytes(4 << 20)
    del block


def _set_path(config: dict[str, object]) -> None:
    import site  # noqa: PLC0415 - under -S it is not imported; addsitedir handles .pth files

    site_packages = str(config["site_packages"])
    site.addsitedir(site_packages)
    # The plugin's site-packages comes first: a plugin that pins its own msgpack keeps it.
    msgpack_path = str(config["msgpack_path"])
    if msgpack_path not in sys.path:
        sys.path.append(msgpack_path)


class HostCallError(Exception):
    """The host answered a :func:`host_call` with an error."""


def _error_text(error: object) -> str:
    """An error the host sent (``{"type", "message"}``) as one line: ``Type: message``."""
    if isinstance(error, dict) and "message" in error:
        kind = error.get("type")
        return f"{kind}: {error['message']}" if kind else str(error["message"])
    return str(error)


class _HostLLM:
    """The ``llm`` an agent factory gets: completions are served by the host, which holds
    the model and its credentials; nothing of them is in this process."""

    def complete(self, messages: list[object], **options: object) -> object:
        """``{"content": str, "usage": {...}}`` for *messages* (``[{"role", "content"}]``)."""
        return host_call("llm.complete", messages, options)


class _HostTool:
    """A tool the host granted to an agent: called through the host."""

    def __init__(self, spec: dict[str, object]) -> None:
        self.name = str(spec.get("name"))
        self.description = str(spec.get("description", ""))
        self.input_schema = spec.get("input_schema") or {}

    def __call__(self, **arguments: object) -> object:
        return host_call("tool.call", self.name, arguments)

    def __repr__(self) -> str:
        return f"<host tool {self.name}>"


class _Session:
    def __init__(self, fd: int, protocol: object, config: dict[str, object]) -> None:
        self.fd = fd
        self.p = protocol
        self.conn = protocol.Connection()  # type: ignore[attr-defined]
        self.config = config
        self.refs: dict[str, str] = dict(config.get("tools") or {})  # type: ignore[call-overload]
        self.tools: dict[str, object] = {}
        self.agents: dict[str, object] = {}
        self.components: dict[str, object] = {}
        self.backlog: list[object] = []
        self.running = True

    # ---- the loop ----------------------------------------------------------------------------

    def serve(self) -> None:
        while self.running:
            if self.backlog:
                message = self.backlog.pop(0)
            else:
                messages = self._read()
                if messages is None:
                    return
                self.backlog.extend(messages)
                continue
            self._dispatch(message)

    def _read(self) -> list[object] | None:
        try:
            data = os.read(self.fd, _RECV)
        except OSError:
            return None
        try:
            return list(self.conn.receive_data(data))
        except self.p.ProtocolError:  # type: ignore[attr-defined]
            return None  # the stream cannot resynchronise: stop
        finally:
            if not data:
                self.running = False

    def _send(self, message: object) -> None:
        data = memoryview(self.conn.send(message))
        while data:
            data = data[os.write(self.fd, data) :]

    def _dispatch(self, message: object) -> None:
        p = self.p
        if isinstance(message, p.Request):  # type: ignore[attr-defined]
            try:
                result = self._handle(message.method, message.params)
            except Exception as exc:
                import traceback  # noqa: PLC0415 - about 5 ms to import: only on an error

                error = p.error_data(exc, traceback.format_exc())  # type: ignore[attr-defined]
                self._send(p.Response(message.msgid, error, None))  # type: ignore[attr-defined]
            else:
                try:
                    self._send(p.Response(message.msgid, None, result))  # type: ignore[attr-defined]
                except (TypeError, ValueError) as exc:  # a result msgpack cannot carry
                    error = p.error_data(exc)  # type: ignore[attr-defined]
                    self._send(p.Response(message.msgid, error, None))  # type: ignore[attr-defined]
        elif isinstance(message, p.Notification) and message.method == "shutdown":  # type: ignore[attr-defined]
            self.running = False
        # A stray response (to no pending host_call) is ignored.

    # ---- methods -----------------------------------------------------------------------------

    def _handle(self, method: str, params: list[object]) -> object:
        if method == "tools.call":
            name, arguments = params[0], params[1] if len(params) > 1 else {}
            return self._call_tool(str(name), arguments)
        if method == "ping":
            return "pong"
        if method == "tools.list":
            return [self._tool(name).spec() for name in sorted(self.refs)]  # type: ignore[attr-defined]
        if method == "hello":
            return self._hello(params)
        if method.startswith("component."):
            return self._component(method[len("component."):], params)
        if method == "agent.step":
            return self._agent_step(params)
        if method == "agent.create":
            return self._agent_create(params)
        if method in ("agent.sdk_init", "agent.sdk_step"):
            return self._sdk_agent(method, params)
        if method == "shutdown":
            self.running = False
            return None
        raise LookupError(f"unknown method {method!r}")

    def _hello(self, params: list[object]) -> dict[str, object]:
        import msgpack  # type: ignore[import-untyped]  # noqa: PLC0415

        wanted = params[0] if params else {}
        version = wanted.get("protocol") if isinstance(wanted, dict) else None
        if version != self.p.PROTOCOL_VERSION:  # type: ignore[attr-defined]
            raise ValueError(f"protocol {version!r} is not this worker's "
                             f"{self.p.PROTOCOL_VERSION}")  # type: ignore[attr-defined]
        compiled = type(msgpack.Unpacker).__module__ != "msgpack.fallback"
        return {
            "protocol": self.p.PROTOCOL_VERSION,  # type: ignore[attr-defined]
            "python": ".".join(map(str, sys.version_info[:3])),
            "implementation": sys.implementation.name,
            "msgpack": ".".join(map(str, msgpack.version)),
            "msgpack_compiled": compiled,
            "plugin": self.config.get("plugin"),
            "pid": os.getpid(),
            "executable": sys.executable,
            "uid": os.getuid(),
            "sandbox": self.config.get("applied", {}),
        }

    def _tool(self, name: str) -> object:
        tool = self.tools.get(name)
        if tool is None:
            ref = self.refs.get(name)
            if ref is None:
                raise LookupError(f"no tool {name!r} in plugin {self.config.get('plugin')!r}")
            from .tools import load_tool  # noqa: PLC0415

            tool = self.tools[name] = load_tool(name, ref)
        return tool

    def _call_tool(self, name: str, arguments: object) -> dict[str, object]:
        from .tools import ArgumentsError, to_content  # noqa: PLC0415

        tool = self._tool(name)
        try:
            value = tool.call(arguments)  # type: ignore[attr-defined]
        except ArgumentsError:
            raise  # not the tool's failure: the caller passed bad arguments
        except Exception as exc:
            import traceback  # noqa: PLC0415

            return {"content": f"{type(exc).__name__}: {exc}", "is_error": True,
                    "traceback": traceback.format_exc()}
        return {"content": to_content(value), "is_error": False}

    # ---- agents ------------------------------------------------------------------------------

    def _agent_create(self, params: list[object]) -> dict[str, object]:
        """``[agent_id, "module:create_agent", config, tool specs, flavour]``: build the agent
        here; flavour ``sdk`` asks for an OpenHands SDK agent (:mod:`.sdk_agent`)."""
        agent_id, ref, config, specs = params[0], str(params[1]), params[2], params[3]
        flavour = params[4] if len(params) > 4 else "plain"
        from .tools import _resolve  # noqa: PLC0415

        factory = _resolve(f"agent {ref!r}", ref)
        if not callable(factory):
            raise TypeError(f"agent factory {ref!r} is not callable")
        if flavour == "sdk":
            # The SDK imports litellm, which fetches a model price list over the network at
            # import unless told not to (no network here: it would retry for seconds).
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            os.environ.setdefault("OPENHANDS_SUPPRESS_BANNER", "1")
            from . import sdk_agent  # noqa: PLC0415 - imports the SDK: only for SDK agents

            session = sdk_agent.create(host_call, str(agent_id), factory, dict(config or {}),  # type: ignore[call-overload]
                                       list(specs))  # type: ignore[call-overload]
            self.agents[str(agent_id)] = session
            return {"agent_id": agent_id, "type": type(session.agent).__name__,
                    "kind": str(getattr(session.agent, "kind", ""))}
        tools = [_HostTool(spec) for spec in specs]  # type: ignore[attr-defined]
        agent = factory(_HostLLM(), tools, dict(config or {}))  # type: ignore[call-overload]
        if not callable(getattr(agent, "step", None)):
            raise TypeError(f"{ref} returned {type(agent).__name__}, which has no step(state)")
        self.agents[str(agent_id)] = agent
        return {"agent_id": agent_id, "type": type(agent).__name__}

    def _agent_step(self, params: list[object]) -> list[object]:
        """``[agent_id, state]``: run one step; each event is also sent as it happens."""
        from .tools import to_content  # noqa: PLC0415

        agent_id, state = str(params[0]), params[1] if len(params) > 1 else {}
        agent = self.agents.get(agent_id)
        if agent is None:
            raise LookupError(f"no agent {agent_id!r} in this worker")
        produced = agent.step(state)  # type: ignore[attr-defined]
        if isinstance(produced, dict):
            produced = [produced]
        events = []
        for event in produced or ():
            data = to_content(event)
            events.append(data)
            self._send(self.p.Notification("agent.event", [agent_id, data]))  # type: ignore[attr-defined]
        return events

    def _sdk_agent(self, method: str, params: list[object]) -> object:
        """``agent.sdk_init [agent_id, conversation_id, events]`` and ``agent.sdk_step
        [agent_id, new events, status]``: run on the SDK agent's mirror conversation."""
        from . import sdk_agent  # noqa: PLC0415

        session = self.agents.get(str(params[0]))
        if not isinstance(session, sdk_agent.SdkAgentSession):
            raise LookupError(f"no SDK agent {params[0]!r} in this worker")
        if method == "agent.sdk_init":
            return session.init(str(params[1]), list(params[2]))  # type: ignore[call-overload]
        return session.step(list(params[1]), str(params[2]))  # type: ignore[call-overload]

    # ---- components (initialize, health check, cleanup, capabilities) ------------------------

    def _component(self, action: str, params: list[object]) -> object:
        from .tools import _resolve, _run_awaitable, to_content  # noqa: PLC0415

        name = str(params[0])
        if action == "describe":
            target = _resolve(f"component {name!r}", str(params[1]))
            component = target() if isinstance(target, type) else target
            self.components[name] = component
            return {"capabilities": list(getattr(component, "capabilities", ()) or ()),
                    "requires": list(getattr(component, "requires", ()) or ())}
        component = self.components.get(name)
        if component is None:
            raise LookupError(f"no component {name!r} in this worker")

        def run(method: str, *args: object, **kwargs: object) -> object:
            function = getattr(component, method, None)
            if function is None:
                return None
            result = function(*args, **kwargs)
            if hasattr(result, "__await__"):
                result = _run_awaitable(result)
            return result

        if action == "initialize":
            run("initialize", params[1] if len(params) > 1 else {})
            return None
        if action == "health":
            healthy = run("health_check")
            return True if healthy is None else bool(healthy)
        if action == "cleanup":
            run("cleanup")
            self.components.pop(name, None)
            return None
        if action == "call":
            capability, arguments = str(params[1]), params[2] if len(params) > 2 else {}
            return to_content(run("call", capability, **dict(arguments)))  # type: ignore[call-overload]
        raise LookupError(f"unknown component action {action!r}")

    # ---- calls to the host -------------------------------------------------------------------

    def call_host(self, method: str, params: list[object]) -> object:
        p = self.p
        msgid = self.conn.next_msgid()
        self._send(p.Request(msgid, method, params))  # type: ignore[attr-defined]
        while True:
            messages = self._read()
            if messages is None or (not messages and not self.running):
                raise HostCallError("the host closed the connection")
            for index, message in enumerate(messages):
                if isinstance(message, p.Response) and message.msgid == msgid:  # type: ignore[attr-defined]
                    self.backlog.extend(messages[index + 1 :])
                    if message.error is not None:
                        raise HostCallError(_error_text(message.error))
                    return message.result
                self.backlog.append(message)  # served after the current request
