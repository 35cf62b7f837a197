"""``ohp``: isolator's commands plus the bridge's (``tools``, ``call``, ``agent``, ``exec``,
``demo``), which run plugin code.

The console script lives here so that :mod:`isolator` never imports the host bridge: the data
flows one way, and the bridge builds on the store. Output goes through isolator's ``main``,
which makes every control character visible (see :mod:`isolator.cli._text`); ``ohp exec`` shows
its program's output the same way when it goes to a terminal, and passes it through unchanged
into a pipe or a file.
"""

from __future__ import annotations

import codecs
import functools
import os
import sys
from pathlib import Path

from isolator import IsolatorError
from isolator import cli as _cli
from isolator.cli import visible, write_raw

PROFILE_CHOICES = ("off", "standard", "strict")
_DASHES = "--"

TYPE_CHECKING = False  # typing is not imported: `ohp --help` starts in a few ms (#19)
if TYPE_CHECKING:
    import argparse
    import threading
    from collections.abc import Callable, Sequence
    from typing import Any, TextIO

    from hostbridge.launch._programs import PluginProgram
    from isolator.store import PluginStore


def _add_sandbox(p: argparse.ArgumentParser, what: str = "worker") -> None:
    p.add_argument("--sandbox", metavar="PROFILE", choices=PROFILE_CHOICES, default=None,
                   help=f"the {what}'s sandbox profile: off, standard or strict (default: "
                   "the plugin's, set by `ohp install --sandbox`; else standard)")


def _add_ray(p: argparse.ArgumentParser, what: str = "run the worker") -> None:
    p.add_argument("--ray", metavar="ADDRESS", default=None,
                   help=f"{what} on this Ray cluster (HOST:PORT, or auto) instead of here: a "
                   "node agent builds the plugin's venv on a node from the store's lock and "
                   "wheels (needs the ray extra: pip install 'isolator[ray]')")


def _launcher(args: argparse.Namespace, bridge: Any) -> Any:
    """The launcher *args* ask for (``--ray``), closed with *bridge*; None: here."""
    if getattr(args, "ray", None) is None:
        return None
    from hostbridge.ray import RayLauncher  # noqa: PLC0415 - only with --ray

    launcher = RayLauncher(args.ray)
    bridge.launcher = launcher
    bridge.on_close(launcher.close)
    return launcher


def _add_tools(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
               text: str) -> None:
    p = sub.add_parser(name, help=text,
                       description="List an installed plugin's tools. Their schemas "
                       "come from the plugin's code, loaded in the plugin's own worker.")
    p.add_argument("name", metavar="NAME", help="an installed plugin's name")
    _add_sandbox(p)
    _add_ray(p)
    _cli.add_root(p)
    p.set_defaults(run=_run_tools)


def _run_tools(args: argparse.Namespace) -> int:
    from hostbridge.supervision._bridge import HostBridge  # noqa: PLC0415

    with HostBridge(_cli.store_of(args), profile=args.sandbox) as bridge:
        _launcher(args, bridge)
        tools = bridge.tools(args.name)
        if args.json:
            _cli.emit([tool.spec() for tool in tools])
            return 0
        if not tools:
            print(f"{args.name} has no tools")
        for tool in tools:
            print(f"{_cli.field(tool.name)}  {_cli.field(_cli.one_line(tool.description, 80))}")
            schema = tool.input_schema
            required = set(schema.get("required", []))
            for prop, spec in schema.get("properties", {}).items():
                kind = spec.get("type", "any") if isinstance(spec, dict) else "any"
                flag = "" if prop in required else " (optional)"
                print(f"    {_cli.field(prop)}: {_cli.field(kind)}{flag}")
    return 0


def _add_call(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
              text: str) -> None:
    p = sub.add_parser(name, help=text,
                       description="Run one tool of an installed plugin in the plugin's own "
                       "worker. Exit 0 when the tool succeeded, 1 when it failed or could not "
                       "be called.")
    p.add_argument("name", metavar="NAME", help="an installed plugin's name")
    p.add_argument("tool", metavar="TOOL", help="the tool's name (see `ohp tools NAME`)")
    p.add_argument("--args", metavar="JSON", default="{}",
                   help='the arguments as a JSON object, e.g. \'{"text": "hi"}\'')
    p.add_argument("--timeout", metavar="SECONDS", type=float, default=None,
                   help="give up after this many seconds")
    _add_sandbox(p)
    _add_ray(p)
    _cli.add_root(p)
    p.set_defaults(run=_run_call)


def _run_call(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from hostbridge.supervision._bridge import HostBridge  # noqa: PLC0415

    try:
        arguments = json.loads(args.args)
    except ValueError as exc:
        raise IsolatorError(f"--args: not JSON ({exc}); expected an object such as "
                            '\'{"text": "hi"}\'') from None
    if not isinstance(arguments, dict):
        raise IsolatorError(f"--args: expected a JSON object, got {type(arguments).__name__}")
    if args.timeout is not None and args.timeout <= 0:
        raise IsolatorError("--timeout: expected a positive number of seconds")
    with HostBridge(_cli.store_of(args), profile=args.sandbox) as bridge:
        _launcher(args, bridge)
        result = bridge.call_tool(args.name, args.tool, arguments, timeout=args.timeout)
    if args.json:
        _cli.emit(result.to_dict())
    elif result.is_error:
        print(f"ohp: tool {args.tool} failed: {result.content}", file=sys.stderr)
    else:
        content = result.content
        print(content if isinstance(content, str) else _cli.to_json(content))
    return 1 if result.is_error else 0


def _add_agent(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
               text: str) -> None:
    p = sub.add_parser(name, help=text,
                       description="Build the plugin's agent (its openhands.agents entry point) "
                       "in its worker and run one step; its model calls are answered by a "
                       "deterministic local model held by this process.")
    p.add_argument("name", metavar="NAME", help="an installed plugin's name")
    p.add_argument("--prompt", required=True, metavar="TEXT", help="the user's message")
    p.add_argument("--timeout", metavar="SECONDS", type=float, default=None,
                   help="give up after this many seconds")
    _add_sandbox(p)
    _add_ray(p)
    _cli.add_root(p)
    p.set_defaults(run=_run_agent)


def _run_agent(args: argparse.Namespace) -> int:
    from hostbridge.agents._agents import EchoLLM  # noqa: PLC0415
    from hostbridge.supervision._bridge import HostBridge  # noqa: PLC0415

    if args.timeout is not None and args.timeout <= 0:
        raise IsolatorError("--timeout: expected a positive number of seconds")
    state = {"messages": [{"role": "user", "content": args.prompt}]}
    with HostBridge(_cli.store_of(args), llm=EchoLLM(), profile=args.sandbox) as bridge:
        _launcher(args, bridge)
        agent = bridge.agent(args.name)

        def show(event: object) -> None:
            if not args.json:
                print(_cli.to_json(event), flush=True)

        events = agent.step(state, on_event=show, timeout=args.timeout)
        usage = bridge.llm_usage.get(args.name)
    if args.json:
        _cli.emit(events)
    elif usage is not None:
        print(f"({usage.calls} model call{'s' if usage.calls != 1 else ''}, "
              f"{usage.tokens} tokens, served by the host)", file=sys.stderr)
    return 0


def _add_exec(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
              text: str) -> None:
    p = sub.add_parser(name, help=text,
                       description="Run CMD as a program of an installed plugin, "
                       "through the same launcher and sandbox profile as its worker: its "
                       "working directory and CLAUDE_PLUGIN_ROOT are the plugin's directory, "
                       "its venv's bin comes first on PATH. Exit status: the program's. Its "
                       "output shows with control characters made visible where it goes to a "
                       "terminal, and passes unchanged into a pipe or a file.",
                       usage="ohp exec [options] NAME -- CMD [ARG ...]")
    p.add_argument("name", metavar="NAME", help="an installed plugin's name")
    p.add_argument("cmd", metavar="CMD", nargs="*",
                   help="the program and its arguments, after --")
    _add_sandbox(p, "program")
    p.add_argument("--env-allow", metavar="VAR", action="append", default=[],
                   help="pass this host environment variable through (repeatable)")
    p.add_argument("--timeout", metavar="SECONDS", type=float, default=None,
                   help="kill the program after this many seconds (exit 124)")
    _cli.add_root(p, json_flag=False)
    p.set_defaults(run=_run_exec)


def _run_exec(args: argparse.Namespace) -> int:
    import subprocess  # noqa: PLC0415

    from hostbridge.launch._programs import spawn_program  # noqa: PLC0415

    cmd = [*args.cmd, *getattr(args, "program", [])]
    if not cmd:
        raise IsolatorError("ohp exec: expected a command after --, e.g. "
                            "`ohp exec NAME -- ./hooks/check.sh`")
    if args.timeout is not None and args.timeout <= 0:
        raise IsolatorError("--timeout: expected a positive number of seconds")
    store = _cli.store_of(args)
    # A person reads a terminal: there the program's output is shown inert, like every plugin
    # text. A pipe or a file gets its bytes (an MCP server's JSON-RPC, a hook's JSON).
    shown = [stream if stream.isatty() else None for stream in (sys.stdout, sys.stderr)]
    pipes = [None if stream is None else subprocess.PIPE for stream in shown]
    with spawn_program(store, args.name, cmd, profile=args.sandbox, env_allow=args.env_allow,
                       stdin=None, stdout=pipes[0], stderr=pipes[1]) as program:
        pumps = _start_pumps(program, shown)
        try:
            code = program.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            program.kill()
            _join(pumps)
            print(f"ohp: {cmd[0]} passed its deadline of {args.timeout:g} s and was killed",
                  file=sys.stderr)
            return 124
        _join(pumps)
    return code if code >= 0 else 128 - code


def _start_pumps(program: PluginProgram,
                 shown: list[TextIO | None]) -> list[threading.Thread]:
    """One thread per piped stream of *program*, copying it to the terminal made visible."""
    import threading  # noqa: PLC0415 - only ohp exec on a terminal has pumps

    pumps = []
    for pipe, stream in zip((program.proc.stdout, program.proc.stderr), shown, strict=True):
        if pipe is None or stream is None:
            continue
        # Its own descriptor: closing the program's pipes cannot pull one from under a read.
        fd = os.dup(pipe.fileno())
        pump = threading.Thread(target=_pump, args=(fd, stream), daemon=True,
                                name="ohp-exec-output")
        pump.start()
        pumps.append(pump)
    return pumps


def _pump(fd: int, stream: TextIO) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")("backslashreplace")
    try:
        while True:
            chunk = os.read(fd, 65536)
            text = decoder.decode(chunk, final=not chunk)
            if text:
                write_raw(stream, visible(text))
                stream.flush()
            if not chunk:
                return
    except OSError:
        return
    finally:
        os.close(fd)


def _join(pumps: list[threading.Thread]) -> None:
    """Let the pumps copy what the program wrote before it ended (a descendant that keeps the
    pipe open does not hold ``ohp`` up for long)."""
    for pump in pumps:
        pump.join(timeout=5)


def _add_reset(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
               text: str) -> None:
    p = sub.add_parser(name, help=text,
                       description="Forget a plugin's worker crashes (see `ohp doctor`).")
    p.add_argument("name", metavar="NAME", help="an installed plugin's name")
    _cli.add_root(p, json_flag=False)
    p.set_defaults(run=_run_reset)


def _run_reset(args: argparse.Namespace) -> int:
    from hostbridge.supervision._bridge import read_plugin_state, reset_plugin_state  # noqa: PLC0415

    store = _cli.store_of(args)
    store.get(args.name)  # an unknown plugin is an error
    failed = bool(read_plugin_state(store, args.name).get("failed"))
    reset_plugin_state(store, args.name)
    print(f"reset {args.name}" + ("" if failed else " (it had not failed)"))
    return 0


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
              text: str) -> None:
    p = sub.add_parser(name, help=text,
                       description="Build the example plugin packages into a local wheelhouse "
                       "in a temporary root; install three plugins there, each into its own "
                       "venv (one content-only; one with tools that depends on it; one with a "
                       "custom agent that pins another version of a library); list them; read "
                       "content from site-packages; call tools in workers; run an agent step "
                       "whose model this process serves; show the sandbox layers in force; "
                       "clean up. Offline; each step timed.")
    p.add_argument("--examples", metavar="DIR", type=Path, default=None,
                   help="the examples/ directory of a clone of this repository (default: the "
                   "one next to the installed hostbridge package)")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary root (wheelhouse, store) and say where it is")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object at the end (steps with name, seconds, ok, data)")
    p.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from hostbridge.cli._demo import DemoError, default_examples_dir, print_summary, run_demo  # noqa: PLC0415

    examples = args.examples if args.examples is not None else default_examples_dir()
    try:
        result = run_demo(examples, keep=args.keep, out=None if args.json else sys.stdout)
    except DemoError as exc:
        if exc.result is not None:
            if args.json:
                _cli.emit(exc.result.to_dict())
            else:
                print_summary(exc.result, sys.stdout)
        raise
    if args.json:
        _cli.emit(result.to_dict())
    else:
        print_summary(result, sys.stdout)
    return 0


def _doctor_ray(args: argparse.Namespace, store: PluginStore) -> dict[str, Any]:
    """``ohp doctor --ray ADDRESS``: the local report, then each node's sandbox layers as
    that node's agent finds them."""
    data = _doctor_extra(store)
    if args.ray is None:
        return data
    from hostbridge.ray import RayLauncher  # noqa: PLC0415 - only with --ray

    launcher = RayLauncher(args.ray)
    try:
        nodes = launcher.doctor()
    finally:
        launcher.close()
    if args.json:
        data["ray_nodes"] = nodes
        return data
    for node in nodes:
        title = f"ray_node_{node['node_id'][:12]}"
        if "error" in node:
            data[title] = f"agent unavailable: {node['error']}"
        else:
            data[f"{title}_({node['hostname']})"] = node["sandbox_layers"]
    return data


def _doctor_extra(store: PluginStore) -> dict[str, Any]:
    from hostbridge.launch._sandbox import sandbox_layers, sandbox_reach  # noqa: PLC0415
    from hostbridge.supervision._bridge import failed_plugins  # noqa: PLC0415

    layers = sandbox_layers()
    return {"failed_plugins": failed_plugins(store),
            "sandbox_layers": {name: {"works": layer["works"], "profiles": layer["profiles"],
                                      "what": layer["what"]}
                               for name, layer in layers.items()},
            "unprivileged_uid_reaches": sandbox_reach(store)}


def _add_doctor(add: Callable[..., None],
                sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                text: str) -> None:
    """isolator's ``doctor``, with ``--ray`` and the bridge's report (sandbox layers...)."""
    add(sub, name, text)
    doctor = sub.choices[name]
    _add_ray(doctor, "also check the sandbox layers of each node")
    doctor.set_defaults(run=lambda args: _cli.run_doctor(
        args, extra=lambda store: _doctor_ray(args, store)))


def commands() -> dict[str, tuple[str, Callable[..., None]]]:
    """``ohp``'s commands: isolator's (:data:`isolator.cli.COMMANDS`), then the bridge's."""
    table = dict(_cli.COMMANDS)
    text, add = table["doctor"]
    table["doctor"] = (text, functools.partial(_add_doctor, add))
    table.update({
        "tools": ("list a plugin's tools with their input schemas (runs its worker)",
                  _add_tools),
        "call": ("call a plugin's tool in its worker and print the result", _add_call),
        "agent": ("run one step of a plugin's agent against a local deterministic model "
                  "served by the host", _add_agent),
        "reset": ("let a plugin whose worker crashed too often start again", _add_reset),
        "exec": ("run a plugin's program (hook command, MCP server) in its sandbox", _add_exec),
        "demo": ("build, install and run three example plugins in a temporary root, offline, "
                 "step by step", _add_demo),
    })
    return table


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """``ohp``'s parser: with *argv*, only the command it names in full (see
    :func:`isolator.cli.build_parser`)."""
    return _cli.build_parser(argv, commands())


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    if _cli.chosen_command(argv) == "exec" and _DASHES in argv[argv.index("exec"):]:
        # Everything after `--` is the program's: argparse would look for options in it.
        split = argv.index(_DASHES, argv.index("exec"))
        argv, program = argv[:split], argv[split + 1:]
        sub = next(a for a in parser._actions if a.dest == "command")
        sub.choices["exec"].set_defaults(program=program)  # type: ignore[index]
    return _cli.main(argv, parser=parser)
