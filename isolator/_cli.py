"""The ``ohp`` command line: one add/run pair per subcommand, errors as one line.

Every error isolator raises on purpose is an :class:`IsolatorError`; it is caught here only,
printed as ``ohp: error: <one line>`` and mapped to exit code 1 (2 for usage errors, as argparse
does). ``-v`` shows the traceback too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from typing import TYPE_CHECKING, TextIO

from ._content import load_plugin
from ._errors import IsolatorError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._model import Plugin


def _add_show(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("show", help="show a plugin's content (skills, commands, agents, hooks, "
                       "MCP servers) read as data",
                       description="Show a plugin directory's content. Nothing in the plugin is "
                       "imported or run.")
    p.add_argument("target", metavar="DIR", help="a plugin directory")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_run_show)


def _run_show(args: argparse.Namespace) -> int:
    target = args.target
    if not os.path.exists(target):
        raise IsolatorError(f"{target}: no such plugin directory")
    plugin = load_plugin(target)
    if args.json:
        json.dump(plugin.to_dict(), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        _print_summary(plugin, sys.stdout)
    return 0


def _one_line(text: str | None, width: int = 90) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _print_summary(plugin: Plugin, out: TextIO) -> None:
    m = plugin.manifest
    bold = ("\033[1m", "\033[0m") if out.isatty() and not os.environ.get("NO_COLOR") else ("", "")
    out.write(f"{bold[0]}{m.name}{bold[1]} {m.version}\n")
    if m.description:
        out.write(f"  {_one_line(m.description, 100)}\n")
    out.write(f"  root: {plugin.root}\n")
    if m.author and (m.author.name or m.author.email):
        email = f" <{m.author.email}>" if m.author.email else ""
        out.write(f"  author: {m.author.name}{email}\n")
    out.write(f"  manifest: {m.path or '(none; named after the directory)'} [{m.format}]\n")

    def section(title: str, rows: list[tuple[str, str]]) -> None:
        out.write(f"\n{title} ({len(rows)})\n")
        width = max((len(r[0]) for r in rows), default=0)
        for name, text in rows:
            out.write(f"  {name.ljust(width)}  {_one_line(text)}\n" if text else f"  {name}\n")

    section("skills", [(s.name, s.description or "") for s in plugin.skills])
    section("commands", [(f"/{c.name}", c.description) for c in plugin.commands])
    section("agents", [(a.name, a.description) for a in plugin.agents])
    hooks = plugin.hooks or {}
    section("hooks", [
        (event, ", ".join(f"{m.matcher}: " + "; ".join(
            h.command or h.prompt or h.type for h in m.hooks) for m in matchers))
        for event, matchers in hooks.items()])
    section("MCP servers", [
        (name, f"{s.transport or ('stdio' if s.command else 'http')}: "
               f"{s.url or ' '.join([s.command or '', *(s.args or ())])}")
        for name, s in plugin.mcp_servers.items()])
    if plugin.diagnostics:
        section("diagnostics", [(d.path, d.reason) for d in plugin.diagnostics])


def build_parser() -> argparse.ArgumentParser:
    """The ``ohp`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="ohp", description="Install, inspect and run agent plugins, each in its own venv.")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more output; a traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (_add_show,):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ohp``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except IsolatorError as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"ohp: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ohp: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `ohp show --json | head`: the reader left; that is not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0




if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
