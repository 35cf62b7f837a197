"""The ``ohp`` command line: one add/run pair per subcommand, errors as one line.

Every error isolator raises on purpose is an :class:`IsolatorError`; it is caught here only,
printed as ``ohp: error: <one line>`` and mapped to exit code 1 (2 for usage errors, as argparse
does). ``-v`` shows the traceback too.

Plugin text reaches the terminal here, so :func:`main` writes through
:class:`~isolator.cli._text.VisibleStream` on stdout and stderr: every control character anything
prints is shown as an escape (``\\x1b``), errors, tracebacks and log warnings included. What
``ohp`` means as control sequences (bold, the progress line's CR) goes through
:func:`~isolator.cli._text.write_raw`; JSON goes through :func:`~isolator.cli._text.json_visible`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from isolator._errors import IsolatorError
from isolator.cli._text import VisibleStream, json_visible, visible, write_raw

# typing itself is not imported: `ohp --help` and `ohp list` start in a few ms (#19).
TYPE_CHECKING = False

# The store, the content model and loader, the policy (uv, resolution, dataclasses, YAML) load
# where a command uses them: `ohp --help` and `ohp list` import none (tests/test_cli_imports.py).
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from typing import Any, TextIO

    from isolator.authoring._authoring import BuildSettings
    from isolator.content._model import Plugin
    from isolator.metadata._distinfo import EntryPoint
    from isolator.store._marketplace import Marketplace, MarketplaceOrigin
    from isolator.store._store import InstalledPlugin, PluginStore


def add_root(p: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    p.add_argument("--root", metavar="DIR", default=None,
                   help="the plugin store (default: $OH_PERSISTENCE_DIR/isolator/store, else "
                   "~/.openhands/isolator/store; a store at the old default, .../plugins, is "
                   "moved there on first use)")
    p.add_argument("--pool", metavar="DIR", default=None,
                   help="an environment pool shared by many stores: package plugins' venvs "
                   "are built there once per resolved set and shared read-only, with uv's "
                   "cache, the wheelhouse and the bytecode (give the same --pool to every "
                   "command on a store that uses one)")
    if json_flag:
        p.add_argument("--json", action="store_true", help="print JSON")


def store_of(args: argparse.Namespace) -> PluginStore:
    from isolator.store._store import (  # noqa: PLC0415 - the store loads when used
        PluginStore,
        default_store_root,
        migrate_default_store,
    )

    pool = getattr(args, "pool", None)
    if args.root is not None:
        return PluginStore(args.root, pool=pool)
    # A store at the old default root ($OH_PERSISTENCE_DIR/plugins) is moved first, told in
    # one line on stderr.
    quiet = getattr(args, "json", False) or getattr(args, "quiet", False)
    with _Progress(sys.stderr, sys.stderr.isatty() and not quiet).shown() as progress:
        migrate_default_store(report=lambda line: print(f"ohp: {line}", file=sys.stderr),
                              progress=progress)
    return PluginStore(default_store_root(), pool=pool)


def emit(data: object) -> None:
    sys.stdout.write(to_json(data, indent=2) + "\n")


def to_json(data: object, indent: int | None = None) -> str:
    """*data* as JSON for a terminal: non-ASCII text as it is, every control character escaped
    (json escapes C0; :func:`json_visible` DEL, C1 and bidi controls, lone surrogates)."""
    import json  # noqa: PLC0415 - `ohp --help` does without

    return json_visible(json.dumps(data, ensure_ascii=False, indent=indent))


def field(text: object) -> str:
    """One table cell or field of plugin text: on one line, control characters visible (a
    newline in a name would start a line of its own making)."""
    return visible("" if text is None else str(text), one_line=True)


class _Progress:
    """One status line on a terminal's stderr, rewritten in place; silent when not a terminal."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self.width = 0

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        line = visible(one_line(message, 78), one_line=True)
        write_raw(self.stream, "\r" + line.ljust(self.width))
        self.stream.flush()
        self.width = len(line)

    @contextlib.contextmanager
    def shown(self) -> Iterator[_Progress]:
        try:
            yield self
        finally:
            if self.enabled and self.width:
                write_raw(self.stream, "\r" + " " * self.width + "\r")
                self.stream.flush()


def _progress(args: argparse.Namespace) -> _Progress:
    quiet = getattr(args, "json", False) or args.quiet
    return _Progress(sys.stderr, sys.stderr.isatty() and not quiet)


# ---- show ------------------------------------------------------------------------------------


def _add_show(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
              text: str) -> None:
    p = sub.add_parser(name, help=text,
                       description="Show an installed plugin (by name) or a plugin directory "
                       "(by path). Nothing in the plugin is imported or run.")
    p.add_argument("target", metavar="NAME|DIR", help="an installed plugin's name, or a "
                   "plugin directory (a path: contains '/' or exists)")
    add_root(p)
    p.set_defaults(run=_run_show)


def _is_path(target: str) -> bool:
    return os.sep in target or target.startswith(".") or os.path.exists(target)


def _run_show(args: argparse.Namespace) -> int:
    target = args.target
    installed: InstalledPlugin | None = None
    origin: MarketplaceOrigin | None = None
    entry_points: dict[str, tuple[EntryPoint, ...]] = {}
    if _is_path(target):
        if not os.path.exists(target):
            raise IsolatorError(f"{target}: no such plugin directory")
        from isolator.content._loader import load_plugin  # noqa: PLC0415

        plugin = load_plugin(target)
    else:
        store = store_of(args)
        installed = store.get(target)
        plugin = store.load(target)
        entry_points = store.entry_points(target)
        origin = store.marketplace_origin(target)
    if args.json:
        data = plugin.to_dict()
        if installed is not None:
            data["installed"] = installed.to_dict()
            data["installed"]["marketplace"] = None if origin is None else origin.to_dict()
            data["installed"]["entry_points"] = {
                group: {ep.name: ep.value for ep in eps} for group, eps in entry_points.items()}
        emit(data)
    else:
        print_summary(plugin, sys.stdout)
        if installed is not None:
            _print_installed(installed, sys.stdout, origin)
            code = [(f"{group.rsplit('.', 1)[1][:-1]} {ep.name}", ep.value)
                    for group, eps in entry_points.items() if group != "openhands.plugins"
                    for ep in eps]
            if code:
                sys.stdout.write(f"\ncode run only in a worker ({len(code)})\n")
                for label, value in code:
                    sys.stdout.write(f"  {field(label)}  {field(value)}\n")
    return 0


def _print_installed(installed: InstalledPlugin, out: TextIO,
                     origin: MarketplaceOrigin | None = None) -> None:
    out.write(f"\ninstalled ({installed.kind})\n")
    rows = [("source", installed.source.source), ("package", installed.package or "-"),
            ("python", f"{installed.python_version} ({(installed.python or {}).get('path')})"
             if installed.python else "-"),
            ("generation", installed.generation), ("installed at", installed.installed_at)]
    if installed.brought_by:
        rows.append(("brought by", installed.brought_by))
    if origin is not None:
        rows.append(("marketplace", origin.reference))
    if installed.git_commit:
        rows.append(("git commit", installed.git_commit))
    for key, value in rows:
        out.write(f"  {key.ljust(12)}  {field(value)}\n")
    if installed.distributions:
        out.write(f"\nresolved distributions ({len(installed.distributions)})\n")
        width = max(len(field(d.name)) for d in installed.distributions)
        for d in installed.distributions:
            out.write(f"  {field(d.name).ljust(width)}  {field(d.version)}  "
                      f"sha256:{field(d.sha256[:16])}…\n")


# ---- install, upgrade, reinstall, uninstall ----------------------------------------------------


def _add_install(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                 text: str) -> None:
    p = sub.add_parser(name, help=text,
                       description="Install a plugin into its own venv (a content-only "
                       "directory is copied). SOURCE: pypi:NAME, github:OWNER/REPO, a git URL, "
                       "a directory, a .whl or an sdist; or PLUGIN@MARKETPLACE, or PLUGIN "
                       "alone when one registered marketplace has it (`ohp marketplace`). An "
                       "existing path is always a path.")
    p.add_argument("source", metavar="SOURCE|PLUGIN[@MARKETPLACE]")
    p.add_argument("--version", metavar="SPEC", help="PEP 440 constraint for a pypi: source "
                   "(1.0.0 or '>=1,<2')")
    p.add_argument("--ref", help="git branch, tag or commit")
    p.add_argument("--repo-path", metavar="PATH", help="the plugin's directory in a git repo")
    p.add_argument("--python", metavar="PY", help="the venv's Python: a version (3.12) or a "
                   "path (default: the Python running ohp)")
    p.add_argument("--find-links", metavar="DIR", action="append", default=[],
                   help="a local wheelhouse (repeatable)")
    p.add_argument("--index-url", metavar="URL", help="an index instead of PyPI")
    p.add_argument("--no-index", action="store_true", help="only --find-links: offline")
    p.add_argument("--allow-build", action="store_true", help="allow running build code of "
                   "git sources and sdists (off by default: wheels only)")
    p.add_argument("--upgrade", action="store_true", help="resolve again even when installed")
    _add_settings_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    add_root(p)
    p.set_defaults(run=_run_install)


def _add_settings_options(p: argparse.ArgumentParser) -> None:
    from isolator.policy._permissions import SANDBOX_PROFILES  # noqa: PLC0415

    p.add_argument("--sandbox", metavar="PROFILE", choices=SANDBOX_PROFILES,
                   help="the plugin's default sandbox profile: off, standard, strict (kept "
                   "across upgrades; `ohp call --sandbox` overrides it)")
    p.add_argument("--grant", metavar="PERMISSION", action="append", default=None,
                   help="grant what the plugin's plugin.json asks for (repeatable): all, "
                   "network[:HOST:PORT], env[:NAME], capability[:NAME]")


def _apply_settings(args: argparse.Namespace, store: PluginStore, name: str, *,
                    always: bool = False) -> None:
    """Record --sandbox/--grant for *name*; print what the plugin asks for and what it has
    (when it asks for something or something changed, or *always*)."""
    from isolator.policy._permissions import Permissions  # noqa: PLC0415

    plugin = store.load(name)
    asked = Permissions.from_manifest(plugin.manifest.extra, f"plugin {name!r}")
    changes: dict[str, Any] = {}
    if args.sandbox is not None:
        changes["sandbox"] = args.sandbox
    if args.grant is not None:
        changes["grants"] = asked.grant(args.grant, name)
    settings = store.configure(name, **changes) if changes else store.settings(name)
    if args.json or not (asked or changes or always):
        return
    granted = settings.grants
    sandbox = f"sandbox: {settings.sandbox or 'standard (default)'}"
    print(sandbox if asked else f"{sandbox}; {name} asks for no permissions")
    if asked:
        print(f"{name} asks for:")
        for kind in ("network", "environment", "capabilities"):
            for item in getattr(asked, kind):
                state = "granted" if item in getattr(granted, kind) else "not granted"
                print(f"  {kind}: {item}  ({state})")
        if granted != asked:
            print("grant with --grant (e.g. `ohp configure NAME --grant all`)")


def _run_install(args: argparse.Namespace) -> int:
    from isolator.sources._sources import PluginSource  # noqa: PLC0415

    store = store_of(args)
    if store.is_marketplace_reference(args.source):  # PLUGIN@MARKETPLACE, or PLUGIN
        given = [flag for flag, value in (("--version", args.version), ("--ref", args.ref),
                                          ("--repo-path", args.repo_path)) if value]
        if given:
            raise IsolatorError(f"{args.source}: {', '.join(given)} does not apply to a "
                                "marketplace plugin (its entry says what to install)")
        with _progress(args).shown() as progress:
            installed = store.install_from_marketplace(
                args.source, python=args.python, index_url=args.index_url,
                find_links=args.find_links, no_index=args.no_index,
                allow_build=args.allow_build, upgrade=args.upgrade, progress=progress)
    else:
        source = PluginSource.parse(args.source, version=args.version, ref=args.ref,
                                    repo_path=args.repo_path, index_url=args.index_url,
                                    find_links=args.find_links, no_index=args.no_index)
        with _progress(args).shown() as progress:
            installed = store.install(source, python=args.python,
                                      allow_build=args.allow_build, upgrade=args.upgrade,
                                      progress=progress)
    _report(args, "installed", installed, store)
    try:
        _apply_settings(args, store, installed.name)
    except IsolatorError as exc:
        raise IsolatorError(f"{installed.name} is installed, but its settings were not "
                            f"changed: {exc}") from None
    return 0


def _add_configure(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                   text: str) -> None:
    p = sub.add_parser(name, help=text,
                       description="Set an installed plugin's default sandbox profile and "
                       "grant it what its plugin.json asks for. Without options: show them.")
    p.add_argument("name", metavar="NAME", help="the installed plugin's name")
    _add_settings_options(p)
    p.add_argument("--revoke-all", action="store_true", help="take back every grant")
    add_root(p)
    p.set_defaults(run=_run_configure)


def _run_configure(args: argparse.Namespace) -> int:
    from isolator.policy._permissions import Permissions  # noqa: PLC0415

    store = store_of(args)
    store.get(args.name)
    if args.revoke_all:
        if args.grant:
            raise IsolatorError("--revoke-all and --grant: expected one of them, not both")
        store.configure(args.name, grants=Permissions())
    _apply_settings(args, store, args.name, always=True)
    if args.json:
        emit(store.settings(args.name).to_dict())
    return 0


def _report(args: argparse.Namespace, verb: str, installed: InstalledPlugin,
            store: PluginStore | None = None) -> None:
    origin = store.marketplace_origin(installed.name) if store is not None else None
    if args.json:
        data = installed.to_dict()
        if store is not None:
            data["marketplace"] = None if origin is None else origin.to_dict()
        emit(data)
        return
    where = f"Python {installed.python_version}" if installed.python else "content only"
    came = f"{origin.reference} ({installed.source.source})" if origin else \
        installed.source.source
    print(f"{verb} {installed.name} {installed.version} ({where}) from {came}")


def _add_named(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
               help_text: str, run: Callable[[argparse.Namespace], int],
               version: bool = False) -> None:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("name", metavar="NAME", help="the installed plugin's name")
    if version:
        p.add_argument("--version", metavar="SPEC", help="a new constraint (pypi: sources)")
        p.add_argument("--index-url", metavar="URL", help="the recorded index again, with "
                       "its credentials (the store keeps none: https://user:token@host/simple)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    add_root(p)
    p.set_defaults(run=run)


def _run_upgrade(args: argparse.Namespace) -> int:
    with _progress(args).shown() as progress:
        installed = store_of(args).upgrade(args.name, version=args.version,
                                         index_url=args.index_url, progress=progress)
    _report(args, "upgraded", installed)
    return 0


def _run_reinstall(args: argparse.Namespace) -> int:
    with _progress(args).shown() as progress:
        installed = store_of(args).reinstall(args.name, progress=progress)
    _report(args, "reinstalled", installed)
    return 0


def _run_uninstall(args: argparse.Namespace) -> int:
    removed = store_of(args).uninstall(args.name)
    if args.json:
        emit(removed.to_dict())
    else:
        print(f"uninstalled {removed.name} {removed.version}")
    return 0


# ---- list, clean, doctor ---------------------------------------------------------------------


def _add_list(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
              text: str) -> None:
    p = sub.add_parser(name, help=text,
                       description="List installed plugins (and the plugins they bring).")
    add_root(p)
    p.set_defaults(run=_run_list)


def _run_list(args: argparse.Namespace) -> int:
    plugins = _list_rows(args)
    if args.json:
        emit(plugins)
        return 0
    if not plugins:
        print("no plugins installed")
        return 0
    rows = [tuple(map(field, (
        p["name"], p["version"], p["package"] or "(content only)", p["python"] or "-",
        f"brought by {p['brought_by']}" if p["brought_by"] else
        p["marketplace"]["reference"] if p["marketplace"] else p["source"])))
        for p in plugins]
    header = ("NAME", "VERSION", "PACKAGE", "PYTHON", "SOURCE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4])
    return 0


def _list_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each installed plugin's ``to_dict()`` with its ``marketplace`` origin (or None).

    Read straight from the records (:mod:`isolator.store._listing`: no dataclasses, no
    packaging, no pipeline, a few ms) when they are as the store writes them; else, or with
    ``--pool`` or a default store still to be moved, through :class:`PluginStore`."""
    root = None
    if getattr(args, "pool", None) is None:
        from isolator.store._layout import (  # noqa: PLC0415 - what `ohp list` needs first
            default_store_root,
            legacy_default_store_root,
            needs_migration,
        )

        if args.root is not None:
            root = Path(args.root).expanduser().absolute()  # as PluginStore makes it
        elif not needs_migration(legacy_default_store_root(), default_store_root()):
            root = default_store_root()
    if root is not None:
        from isolator.store._listing import list_rows  # noqa: PLC0415

        rows = list_rows(root)
        if rows is not None:
            return rows
    _log_warnings()  # as every other command has them (logging costs ms: not before)
    store = store_of(args)
    plugins = store.list_installed()
    origins = store.marketplace_origins() if plugins else {}
    return [{**p.to_dict(), "marketplace": origins[p.name].to_dict() if p.name in origins
             else None} for p in plugins]


# ---- marketplace -----------------------------------------------------------------------------


def _add_marketplace(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                     text: str) -> None:
    p = sub.add_parser(name, help=text,
                       description="A marketplace is a git repository or directory with "
                       ".plugin/marketplace.json or .claude-plugin/marketplace.json. Registered "
                       "under NAME, its plugins install with `ohp install PLUGIN@NAME`.")
    msub = p.add_subparsers(dest="marketplace_command", metavar="ACTION", required=True)
    a = msub.add_parser("add", help="register a marketplace (fetched and read now)",
                        description="Fetch the marketplace at SOURCE (github:OWNER/REPO, a git "
                        "URL, or a directory), read and check its marketplace file, and record "
                        "it, the commit read and its plugins under NAME.")
    a.add_argument("name", metavar="NAME")
    a.add_argument("source", metavar="SOURCE")
    a.add_argument("--ref", help="git branch, tag or commit (default: the default branch)")
    a.add_argument("--repo-path", metavar="PATH", help="the marketplace's directory in the "
                   "git repository")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    add_root(a)
    a.set_defaults(run=_run_marketplace_add)
    u = msub.add_parser("update", help="fetch a registered marketplace again",
                        description="Fetch marketplace NAME again from its recorded source and "
                        "ref; its plugins install from the new commit from then on.")
    u.add_argument("name", metavar="NAME")
    u.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    add_root(u)
    u.set_defaults(run=_run_marketplace_update)
    ls = msub.add_parser("list", help="list registered marketplaces, or one's plugins",
                         description="List the registered marketplaces; with NAME, the "
                         "plugins of that marketplace (and why an entry cannot be installed).")
    ls.add_argument("name", metavar="NAME", nargs="?")
    add_root(ls)
    ls.set_defaults(run=_run_marketplace_list)
    r = msub.add_parser("remove", help="unregister a marketplace",
                        description="Unregister marketplace NAME; plugins installed from it "
                        "stay installed.")
    r.add_argument("name", metavar="NAME")
    add_root(r)
    r.set_defaults(run=_run_marketplace_remove)


def _marketplace_line(verb: str, market: Marketplace) -> str:
    usable = sum(1 for e in market.plugins if e.error is None)
    at = f" at {market.commit[:12]}" if market.commit else ""
    return (f"{verb} marketplace {market.name} ({market.source.source}{at}): {usable} "
            f"plugins" + (f", {len(market.plugins) - usable} not installable"
                          if usable != len(market.plugins) else ""))


def _run_marketplace_add(args: argparse.Namespace) -> int:
    with _progress(args).shown() as progress:
        market = store_of(args).add_marketplace(args.name, args.source, ref=args.ref,
                                                repo_path=args.repo_path, progress=progress)
    _report_marketplace(args, "added", market)
    return 0


def _run_marketplace_update(args: argparse.Namespace) -> int:
    with _progress(args).shown() as progress:
        market = store_of(args).update_marketplace(args.name, progress=progress)
    _report_marketplace(args, "updated", market)
    return 0


def _report_marketplace(args: argparse.Namespace, verb: str, market: Marketplace) -> None:
    if args.json:
        emit(market.to_dict())
        return
    print(_marketplace_line(verb, market))
    for entry in market.plugins:
        if entry.error is not None:
            print(f"  not installable: {field(entry.name)}: {field(entry.error)}")


def _run_marketplace_list(args: argparse.Namespace) -> int:
    store = store_of(args)
    if args.name is not None:
        market = store.get_marketplace(args.name)
        if args.json:
            emit(market.to_dict())
            return 0
        at = f" at {market.commit[:12]}" if market.commit else ""
        print(f"{field(market.name)}: {field(market.source.source)}{at} "
              f"({field(market.manifest)}, {len(market.plugins)} plugins)")
        width = max((len(field(e.name)) for e in market.plugins), default=0)
        for entry in market.plugins:
            text = f"NOT INSTALLABLE: {entry.error}" if entry.error else \
                one_line(entry.description or "")
            print(f"  {field(entry.name).ljust(width)}  {field(text)}".rstrip())
        return 0
    markets = store.marketplaces()
    if args.json:
        emit([m.to_dict() for m in markets])
        return 0
    if not markets:
        print("no marketplaces registered")
        return 0
    rows = [tuple(map(field, (m.name, str(len(m.plugins)), (m.commit or "-")[:12],
                              m.source.source + (f" ({m.source.repo_path})"
                                                 if m.source.repo_path else ""))))
            for m in markets]
    header = ("NAME", "PLUGINS", "COMMIT", "SOURCE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3])
    return 0


def _run_marketplace_remove(args: argparse.Namespace) -> int:
    market = store_of(args).remove_marketplace(args.name)
    if args.json:
        emit(market.to_dict())
    else:
        print(f"removed marketplace {market.name}")
    return 0


def _add_clean(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
               text: str) -> None:
    p = sub.add_parser(name, help=text,
                       description="Remove what no installed plugin needs. Waits for running "
                       "installs; keeps generations a worker still uses. With --pool, then "
                       "the pool's environments no store uses any more.")
    add_root(p)
    p.set_defaults(run=_run_clean)


def _run_clean(args: argparse.Namespace) -> int:
    report = store_of(args).clean()
    if args.json:
        emit(report.to_dict())
    else:
        print(f"removed {len(report.generations)} generations, {report.scratch} scratch "
              f"directories, {report.wheels} wheels ({report.bytes_freed / 1e6:.1f} MB)")
        if report.kept_leased:
            print(f"kept {len(report.kept_leased)} generations still in use")
        if report.pool is not None:
            pool = report.pool
            print(f"pool: removed {len(pool['environments'])} environments no store uses, "
                  f"kept {pool['kept']}; {pool['wheels']} wheels")
    return 0


# ---- lock, sync, verify ----------------------------------------------------------------------


def _add_lock(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
              text: str) -> None:
    p = sub.add_parser(name, help=text,
                       description="Write every installed plugin, its source and every "
                       "distribution of its venv (version, file, sha256, URL) as one JSON lock "
                       "file. The same store writes the same bytes.")
    p.add_argument("-o", "--output", metavar="FILE", help="write FILE atomically (default: "
                   "standard output)")
    add_root(p, json_flag=False)
    p.set_defaults(run=_run_lock)


def _run_lock(args: argparse.Namespace) -> int:
    from isolator.store._lockfile import dumps_lock, write_lock  # noqa: PLC0415

    data = store_of(args).lock()
    if args.output is None:
        sys.stdout.write(json_visible(dumps_lock(data)))  # the same JSON value, inert
        return 0
    write_lock(data, args.output)
    print(f"locked {len(data['plugins'])} plugins in {args.output}")
    return 0


def _add_sync(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
              text: str) -> None:
    p = sub.add_parser(name, help=text,
                       description="Install or replace the plugins a lock file has as it says, "
                       "uninstall those it lacks, leave the matching ones untouched. Every "
                       "file is checked against the lock's sha256 before anything changes.")
    p.add_argument("file", metavar="FILE", help="a lock file written by `ohp lock` ('-': "
                   "standard input)")
    p.add_argument("--find-links", metavar="DIR", action="append", default=[],
                   help="a directory to look for locked files in, by name (repeatable; "
                   "hashes are still checked)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    add_root(p)
    p.set_defaults(run=_run_sync)


def _run_sync(args: argparse.Namespace) -> int:
    from isolator.store._lockfile import Lock, loads_lock  # noqa: PLC0415

    lock: Lock | str = loads_lock(sys.stdin.read(), "<stdin>") if args.file == "-" \
        else args.file
    with _progress(args).shown() as progress:
        report = store_of(args).sync(lock, find_links=args.find_links, progress=progress)
    if args.json:
        emit(report.to_dict())
        return 0
    for verb, names in (("installed", report.installed), ("replaced", report.replaced),
                        ("removed", report.removed)):
        for name in names:
            print(f"{verb} {name}")
    print(f"synced: {len(report.installed)} installed, {len(report.replaced)} replaced, "
          f"{len(report.removed)} removed, {len(report.unchanged)} unchanged")
    return 0


def _add_verify(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                text: str) -> None:
    p = sub.add_parser(name, help=text,
                       description="Check every file of a plugin (default: all) against the "
                       "hashes recorded when it was installed. One line per change: PLUGIN "
                       "DISTRIBUTION PATH missing|modified|unexpected. Exit 1 when anything "
                       "changed or could not be checked.")
    p.add_argument("name", metavar="NAME", nargs="?", help="an installed plugin's name")
    add_root(p)
    p.set_defaults(run=_run_verify)


def _run_verify(args: argparse.Namespace) -> int:
    report = store_of(args).verify(args.name)
    if args.json:
        emit(report.to_dict())
        return 0 if report.ok else 1
    for change in report.changes:
        print(f"{change.plugin} {change.distribution or '-'} {change.path} {change.change}")
    for problem in report.unverified:
        print(f"not verified: {problem}")
    summary = f"{len(report.plugins)} plugins, {report.files} files checked"
    if report.ok:
        print(f"ok: {summary}")
        return 0
    print(f"ohp: {len(report.changes)} changes, {len(report.unverified)} plugins not "
          f"verified ({summary})", file=sys.stderr)
    return 1


def _add_doctor(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                text: str) -> None:
    p = sub.add_parser(name, help=text,
                       description="Check what installs would use.")
    add_root(p)
    p.set_defaults(run=run_doctor)


def run_doctor(args: argparse.Namespace,
                extra: Callable[[PluginStore], dict[str, Any]] | None = None) -> int:
    from isolator.store._backends import UvBackend  # noqa: PLC0415
    from isolator.store._interpreters import list_interpreters  # noqa: PLC0415

    store = store_of(args)
    problems: list[str] = []
    uv: dict[str, str | None] = {"path": None, "version": None}
    try:
        backend = UvBackend()
        uv = {"path": backend.uv, "version": backend.version()}
    except IsolatorError as exc:
        problems.append(str(exc))
    interpreters = [i.to_dict() for i in list_interpreters()]
    try:
        plugins = len(store.list_installed())
    except IsolatorError as exc:
        problems.append(str(exc))
        plugins = 0
    try:
        policy = store.policy.plugins  # a bad policy.json shows here before an install fails
    except IsolatorError as exc:
        problems.append(str(exc))
        policy = []
    data: dict[str, Any] = {
        "backend": store.backend.name, "uv": uv, "store_root": str(store.root),
        "store_exists": store.root.exists(), "plugins_installed": plugins,
        "interpreters": interpreters, "policy_plugins": policy, "problems": problems}
    if extra is not None:
        data.update(extra(store))
    if args.json:
        emit(data)
    else:
        print(f"backend      {store.backend.name}")
        print(f"uv           {uv['version'] or 'unavailable'} ({uv['path'] or '-'})")
        print(f"store root   {store.root} ({plugins} plugins)")
        print("interpreters")
        for i in interpreters:
            print(f"  {i['version']:<10} {i['implementation']:<8} {i['path']}")
        for key, value in data.items():
            if key not in ("backend", "uv", "store_root", "store_exists", "plugins_installed",
                           "interpreters", "problems"):
                if isinstance(value, dict):
                    print(key.replace("_", " "))
                    for name, item in value.items():
                        state = item.get("works") if isinstance(item, dict) else item
                        label = {True: "works", False: "MISSING", None: "not needed here"}
                        line = f"  {name:<20} {label.get(state, state)}"
                        if isinstance(item, dict) and "profiles" in item:
                            line = f"{line:<38} {','.join(item['profiles']):<21} " \
                                   f"{item.get('what', '')}"
                        print(line.rstrip())
                    continue
                shown = ", ".join(map(str, value)) if isinstance(value, list) else value
                print(f"{key.replace('_', ' '):<12} {shown or '-'}")
        for problem in problems:
            print(f"problem: {problem}")
    return 1 if problems else 0


# ---- for plugin authors: validate, new, package -------------------------------------------


def _add_build_index(p: argparse.ArgumentParser) -> None:
    p.add_argument("--python", metavar="PY", help="the Python that runs the build backend "
                   "(default: the Python running ohp)")
    p.add_argument("--find-links", metavar="DIR", action="append", default=[],
                   help="a local wheelhouse for the build backend (repeatable)")
    p.add_argument("--index-url", metavar="URL", help="an index instead of PyPI")
    p.add_argument("--no-index", action="store_true", help="only --find-links: offline")


def _add_json_quiet(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")


def _build_settings(args: argparse.Namespace) -> BuildSettings:
    from isolator.authoring._authoring import BuildSettings  # noqa: PLC0415

    return BuildSettings(python=args.python, index_url=args.index_url,
                         find_links=args.find_links, no_index=args.no_index)


def _add_validate(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                  text: str) -> None:
    p = sub.add_parser(
        name, help=text,
        description="Check a plugin before publishing it. A directory with pyproject.toml (or "
        "any directory with --python-package) is a package project: pyproject.toml, the "
        "plugin module, plugin.json, versions and the entry point are checked, then the "
        "project is built (an sdist, and the wheel from it) and the wheel must ship every "
        "plugin file, dotfiles included. Another directory is checked as a plugin directory. "
        "Exit code 1 when a check fails; warnings do not fail.")
    p.add_argument("path", metavar="DIR")
    p.add_argument("--python-package", action="store_true",
                   help="check DIR as a package project (the default when it has "
                   "pyproject.toml)")
    p.add_argument("--no-build", action="store_true", help="skip building the wheel (the "
                   "package-data check is skipped)")
    _add_repo_root(p)
    _add_build_index(p)
    _add_json_quiet(p, "the report")
    p.set_defaults(run=_run_validate)


def _run_validate(args: argparse.Namespace) -> int:
    from isolator.authoring._authoring import _iter_checks, validate_directory, validate_package  # noqa: PLC0415

    if args.python_package or os.path.exists(os.path.join(args.path, "pyproject.toml")):
        with _progress(args).shown() as progress:
            report = validate_package(args.path, build=not args.no_build,
                                      settings=_build_settings(args), progress=progress)
    else:
        report = validate_directory(args.path, repo_root=args.repo_root)
    if args.json:
        emit(report.to_dict())
    else:
        for line in _iter_checks(report):
            print(line)
        verdict = "ok" if report.ok else "FAILED"
        print(f"{verdict}: {len(report.errors)} errors, {len(report.warnings)} warnings "
              f"({report.kind} {report.path})")
    return 0 if report.ok else 1


def _add_new(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
             text: str) -> None:
    p = sub.add_parser(name, help=text,
                       description="Create openhands-plugin-NAME/: pyproject.toml with the "
                       "entry points and package data that ship dotfiles, the plugin module "
                       "(plugin.json, a skill, a command), a README and a test.")
    p.add_argument("name", metavar="NAME", help="the plugin name, kebab-case (my-plugin)")
    p.add_argument("--with-tools", action="store_true", help="add tools.py with a tool and its "
                   "openhands.tools entry point")
    p.add_argument("--with-agent", action="store_true", help="add agent.py with "
                   "create_agent() and its openhands.agents entry point")
    p.add_argument("--description", help="one line for plugin.json and pyproject.toml")
    p.add_argument("--dir", metavar="PARENT", default=".", help="where to create the project "
                   "(default: the current directory)")
    p.set_defaults(run=_run_new)


def _run_new(args: argparse.Namespace) -> int:
    from isolator.authoring._templates import new_project  # noqa: PLC0415

    project = new_project(args.name, Path(args.dir), with_tools=args.with_tools,
                          with_agent=args.with_agent, description=args.description)
    print(f"created {project}")
    print(f"next: cd {project} && ohp validate --python-package . && ohp install .")
    return 0


def _add_package(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                 text: str) -> None:
    p = sub.add_parser(name, help=text,
                       description="Turn a git-style plugin directory into a package project "
                       "(the directory becomes the module openhands_plugin_NAME, its files "
                       "package data) and build its wheel into --out. A symlink whose target "
                       "is inside --repo-root (default: the git work tree the plugin is in, "
                       "else the plugin directory) becomes a copy, each one outside the plugin "
                       "listed; symlinks leaving it, dangling ones and special files are "
                       "refused and listed. Nothing is written when it fails.")
    p.add_argument("plugin_dir", metavar="PLUGIN_DIR")
    p.add_argument("--out", metavar="DIR", default="dist", help="where the wheel goes "
                   "(default: ./dist)")
    p.add_argument("--project", metavar="DIR", help="keep the package project in DIR (by "
                   "default it is built in a temporary directory)")
    p.add_argument("--force", action="store_true", help="replace an existing --project DIR")
    p.add_argument("--version", metavar="VERSION", help="the package version (default: "
                   "plugin.json's)")
    p.add_argument("--dist-name", metavar="NAME", help="the distribution name (default: "
                   "openhands-plugin-NAME)")
    p.add_argument("--no-build", action="store_true", help="write the project only "
                   "(needs --project)")
    _add_repo_root(p)
    _add_build_index(p)
    _add_json_quiet(p, "the result")
    p.set_defaults(run=_run_package)


def _add_repo_root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo-root", metavar="DIR", help="the directory the plugin's symlinks may "
                   "point into; their targets are copied in (default: the top of the git work "
                   "tree holding the plugin, else the plugin directory)")


def _run_package(args: argparse.Namespace) -> int:
    from isolator.authoring._authoring import package_plugin  # noqa: PLC0415

    if args.no_build and args.project is None:
        raise IsolatorError("--no-build writes the project only: pass --project DIR too")
    with _progress(args).shown() as progress:
        result = package_plugin(
            args.plugin_dir, args.out, project_dir=args.project, version=args.version,
            dist_name=args.dist_name, force=args.force, build=not args.no_build,
            settings=_build_settings(args), progress=progress, repo_root=args.repo_root)
    if args.json:
        emit(result.to_dict())
        return 0
    print(f"packaged {result.plugin} {result.version} as {result.dist_name} "
          f"({result.files} files)")
    if result.wheel is not None:
        print(f"wheel:   {result.wheel}")
    if result.project is not None:
        print(f"project: {result.project}")
    for rel in result.linked:
        outside = " (outside the plugin directory)" if rel in result.outside else ""
        print(f"copied symlink {rel}{outside}")
    for rel in result.skipped:
        print(f"left out {rel}/")
    for note in result.notes:
        print(f"note: {note}")
    return 0


def one_line(text: str | None, width: int = 90) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


def print_summary(plugin: Plugin, out: TextIO) -> None:
    m = plugin.manifest
    bold = ("\033[1m", "\033[0m") if out.isatty() and not os.environ.get("NO_COLOR") else ("", "")
    write_raw(out, bold[0])  # ohp's own sequence: the rest is plugin text, made visible
    out.write(field(m.name))
    write_raw(out, bold[1])
    out.write(f" {field(m.version)}\n")
    if m.description:
        out.write(f"  {field(one_line(m.description, 100))}\n")
    out.write(f"  root: {field(plugin.root)}\n")
    if m.author and (m.author.name or m.author.email):
        email = f" <{field(m.author.email)}>" if m.author.email else ""
        out.write(f"  author: {field(m.author.name)}{email}\n")
    out.write(f"  manifest: {field(m.path or '(none; named after the directory)')} "
              f"[{field(m.format)}]\n")

    def section(title: str, rows: list[tuple[str, str]]) -> None:
        out.write(f"\n{title} ({len(rows)})\n")
        cells = [(field(name), field(one_line(text)) if text else "") for name, text in rows]
        width = max((len(r[0]) for r in cells), default=0)
        for name, text in cells:
            out.write(f"  {name.ljust(width)}  {text}\n" if text else f"  {name}\n")

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


def _uninstall(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
               text: str) -> None:
    _add_named(sub, name, text, _run_uninstall)


def _upgrade(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
             text: str) -> None:
    _add_named(sub, name, text, _run_upgrade, version=True)


def _reinstall(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
               text: str) -> None:
    _add_named(sub, name, text, _run_reinstall)


COMMANDS: dict[str, tuple[str, Callable[..., None]]] = {
    "install": ("install a plugin into its own venv", _add_install),
    "configure": ("set a plugin's sandbox profile and grants", _add_configure),
    "uninstall": ("remove an installed plugin", _uninstall),
    "list": ("list installed plugins", _add_list),
    "show": ("show a plugin's content (skills, commands, agents, hooks, MCP servers) read as "
             "data", _add_show),
    "marketplace": ("register marketplaces (catalogues of plugins) to install plugins from by "
                    "name", _add_marketplace),
    "upgrade": ("resolve an installed plugin's source again", _upgrade),
    "reinstall": ("rebuild a plugin from its record (same files, hashes checked, offline)",
                  _reinstall),
    "clean": ("remove old generations, interrupted installs' debris and unused wheels",
              _add_clean),
    "lock": ("write the store's plugin set, every file pinned by sha256, as a lock file",
             _add_lock),
    "sync": ("make the store hold exactly the plugins of a lock file", _add_sync),
    "verify": ("check every installed file against its RECORD hash", _add_verify),
    "doctor": ("show the backend, uv, interpreters and store root", _add_doctor),
    "validate": ("check a plugin package project (or a plugin directory) before publishing",
                 _add_validate),
    "new": ("start a plugin package project from a template", _add_new),
    "package": ("turn a plugin directory into a package and build its wheel", _add_package),
}
"""The commands of ``ohp`` in the order ``ohp --help`` lists them: name -> (one-line help,
``add(sub, name, help)``). ``hostbridge.cli`` adds its own to a copy."""


def chosen_command(argv: Sequence[str]) -> str | None:
    """The command *argv* names: its first word that is not an option (``ohp`` itself has
    only ``-h`` and ``-v``, which take no value); None when there is none."""
    for arg in argv:
        if arg == "--" or not arg.startswith("-"):
            return arg if arg != "--" else None
    return None


def build_parser(argv: Sequence[str] | None = None,
                 commands: Mapping[str, tuple[str, Callable[..., None]]] | None = None,
                 ) -> argparse.ArgumentParser:
    """The ``ohp`` argument parser, with *commands* (default :data:`COMMANDS`).

    Given *argv*, only the command it names is built in full: each other one gets its name and
    help line, all that ``ohp --help`` and argparse's errors show (building ~20 full parsers
    costs more than the rest of ``ohp list``). Without *argv*, every command in full."""
    parser = argparse.ArgumentParser(
        prog="ohp", description="Install, inspect and run agent plugins, each in its own venv.")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more output; a traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = None if argv is None else chosen_command(argv)
    for name, (text, add) in (COMMANDS if commands is None else commands).items():
        if argv is None or name == chosen:
            add(sub, name, text)
        else:
            sub.add_parser(name, help=text, add_help=False)
    return parser


def _log_warnings() -> None:
    """Warnings of the library (a sandbox layer that degraded...) as ``ohp: warning: ...``."""
    import logging  # noqa: PLC0415

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ohp: warning: %(message)s"))
    handler.setLevel(logging.WARNING)
    for name in ("isolator", "hostbridge"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(handler)


def main(argv: Sequence[str] | None = None,
         parser: argparse.ArgumentParser | None = None) -> int:
    """Run ``ohp``; returns the exit code. *parser* lets the host bridge add its commands."""
    if parser is None:
        argv = sys.argv[1:] if argv is None else argv
        parser = build_parser(argv)
    with _visible_output():
        args = parser.parse_args(argv)
        if args.run is not _run_list:  # which logs nothing when it reads records alone
            _log_warnings()
        return _run(args)


@contextlib.contextmanager
def _visible_output() -> Iterator[None]:
    """stdout and stderr through :class:`VisibleStream` for the block (the one place where
    ``ohp``'s output is made inert); the streams they wrapped afterwards."""
    saved = sys.stdout, sys.stderr
    sys.stdout = VisibleStream(saved[0])
    sys.stderr = VisibleStream(saved[1])
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        sys.stdout, sys.stderr = saved


def _run(args: argparse.Namespace) -> int:
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except IsolatorError as exc:
        if args.verbose:
            import traceback  # noqa: PLC0415 - only on errors

            traceback.print_exc()
        print(f"ohp: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ohp: interrupted; installed plugins are as they were", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `ohp show --json | head`: the reader left; that is not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception:  # a bug of ours: its traceback may quote plugin text, so print it here
        import traceback  # noqa: PLC0415

        traceback.print_exc()
        return 1



