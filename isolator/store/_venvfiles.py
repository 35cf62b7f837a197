"""The venv outside site-packages: what the backend made there is the store's.

The interpreter reads ``pyvenv.cfg``, ``bin/python*`` and the venv root before any sandbox
layer applies, so the store snapshots them when it creates a venv, refuses an install that
changed them or added anything but console scripts and inert data, checks them before each
start (:meth:`PluginStore.check_interpreter_files`) and in :meth:`PluginStore.verify`. And
site-packages holds one ``*.dist-info`` per resolved distribution, no more.
"""

from __future__ import annotations

import hashlib
import os
import re
from stat import S_ISDIR as stat_is_dir
from stat import S_ISLNK as stat_is_link
from stat import S_ISREG as stat_is_reg
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from isolator._errors import DistributionError, StoreError
from isolator.metadata._distinfo import iter_distributions, read_record

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from isolator.store._lockfile import Change
    from isolator.store._records import InstalledPlugin, ResolvedDistribution

_INERT_DIRS = frozenset({"share", "include", "etc"})
"""Top-level venv directories a distribution may install data into: no interpreter reads them
(man pages, Jupyter data and config, C headers)."""
_RESERVED_SCRIPT = re.compile(
    r"^(python|pypy|activate|deactivate|pydoc|pyvenv\.cfg$|pybuilddir\.txt$)|\._pth$", re.I)
"""Names in ``bin/`` the interpreter or the venv's activation reads: ``bin/pyvenv.cfg`` is read
before the venv root's, ``bin/python._pth`` replaces ``sys.path``."""


_INSTALLER_FILES = frozenset({".lock"})
"""Files the installer itself adds at the venv's root (uv locks the venv while installing)."""


def _entry(path: str) -> str | None:
    """What is at *path*: ``dir``, ``link:TARGET``, ``file:SHA256``, ``other``; None if nothing."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat_is_dir(info.st_mode):
        return "dir"
    if stat_is_link(info.st_mode):
        return "link:" + os.readlink(path)
    if not stat_is_reg(info.st_mode):
        return "other"
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 16):
            digest.update(block)
    return "file:" + digest.hexdigest()


def venv_entries(venv: Path, site: Path) -> dict[str, str]:
    """Every entry of *venv* outside *site* (and its ancestors' other entries), by path
    relative to the venv: the snapshot the store owns and records at install."""
    found: dict[str, str] = {}
    root, skip = os.fspath(venv), os.fspath(site)
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == skip:
            dirnames[:] = []
            continue
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            if full == skip:
                continue
            what = _entry(full)
            if what is not None:
                found[os.path.relpath(full, root)] = what
    return found


def _allowed_new(rel: str, what: str) -> bool:
    """Whether a distribution may add *rel* (relative to the venv) outside site-packages."""
    parts = rel.split(os.sep)
    if parts[0] in _INERT_DIRS:
        return what == "dir" or what.startswith("file:")
    if parts[0] == "bin" and len(parts) == 2:  # a console script
        return what.startswith("file:") and not _RESERVED_SCRIPT.search(parts[1])
    return False


def _owners(venv: Path, site: Path) -> dict[str, str]:
    """Paths (relative to the venv) outside site-packages -> the distribution whose RECORD
    lists them."""
    owners: dict[str, str] = {}
    for dist in iter_distributions(site):
        try:
            rows = read_record(dist)
        except DistributionError:
            continue
        for row in rows:
            full = os.path.normpath(os.path.join(site, row.path))
            rel = os.path.relpath(full, venv)
            if not rel.startswith(".." + os.sep):
                owners.setdefault(rel, dist.name)
    return owners


def check_outside_site(venv: Path, site: Path, owned: Mapping[str, str],
                        root_dist: str) -> dict[str, str]:
    """Refuse an install that changed what the store made outside site-packages, or put a
    file there other than a console script or inert data: :class:`StoreError` naming the
    distribution and the file (the generation is then removed whole). Returns the entries
    the store owns from now on: *owned* and the installer's own files (uv's ``.lock``)."""
    now = venv_entries(venv, site)
    bad = [(rel, "changed" if rel in now else "removed") for rel, what in owned.items()
           if now.get(rel) != what]
    installer = {rel: what for rel, what in now.items()
                 if rel not in owned and rel in _INSTALLER_FILES and what.startswith("file:")}
    owners = _owners(venv, site)
    bad += [(rel, "added") for rel, what in now.items()
            if rel not in owned and not _allowed_new(rel, what) and
            (rel not in installer or rel in owners)]
    if not bad:
        return {**owned, **installer}

    def owner(rel: str) -> str:
        found = owners.get(rel)
        if found is None:  # a directory: the distribution of a file below it
            found = next((d for p, d in sorted(owners.items())
                          if p.startswith(rel + os.sep)), None)
        return found or f"a distribution of {root_dist}"

    by_owner: dict[str, list[str]] = {}
    for rel, how in sorted(bad):
        by_owner.setdefault(owner(rel), []).append(f"{how} {rel}")
    what = "; ".join(f"{who} {', '.join(items[:6])}{' ...' if len(items) > 6 else ''}"
                     for who, items in sorted(by_owner.items()))
    raise StoreError(root_dist, f"refused: {what} in the venv. Outside site-packages a "
                     f"distribution may install only console scripts in bin/ and data in "
                     f"{', '.join(sorted(f'{d}/' for d in _INERT_DIRS))}: the interpreter "
                     "reads the store's own files there before any sandbox layer applies")


def dist_info_dirs(site: Path) -> dict[str, str]:
    """The ``*.dist-info`` directories in *site*: directory name -> canonical name."""
    found: dict[str, str] = {}
    with os.scandir(site) as entries:
        for entry in entries:
            if entry.name.endswith(".dist-info"):
                found[entry.name] = canonicalize_name(
                    entry.name[: -len(".dist-info")].rsplit("-", 1)[0])
    return found


def check_dist_infos(site: Path, dists: Sequence[ResolvedDistribution],
                      seeded: Mapping[str, str], root_dist: str) -> None:
    """Refuse a site-packages whose ``*.dist-info`` directories are not exactly one per
    resolved distribution (and what the backend seeded): a distribution that ships another's
    dist-info (in ``.data/purelib/``) would be read as that one, its entry points naming
    the plugin's tools."""
    wanted = {canonicalize_name(d.name) for d in dists}
    seen: dict[str, list[str]] = {}
    for directory, canonical in sorted(dist_info_dirs(site).items()):
        if directory in seeded:
            continue
        seen.setdefault(canonical, []).append(directory)
    bad = sorted(d for canonical, dirs in seen.items()
                 for d in (dirs if canonical not in wanted or len(dirs) > 1 else ()))
    if not bad:
        return
    owners = _owners(site.parent.parent.parent, site)
    rel_site = os.path.relpath(site, site.parent.parent.parent)
    shipped = {}
    for directory in bad:
        prefix = os.path.join(rel_site, directory) + os.sep
        shipped[directory] = next((o for p, o in sorted(owners.items())
                                   if p.startswith(prefix) and
                                   _dist_info_dirs_owner(o, directory)), None)
    what = "; ".join(f"{shipped[d] or 'a distribution'} ships {d}" for d in bad)
    raise StoreError(root_dist, f"refused: {what}: a distribution may not install the "
                     "metadata of another (it would be read as that distribution's, its entry "
                     "points as the plugin's)")


def _dist_info_dirs_owner(owner: str, directory: str) -> bool:
    """Whether *owner* is a distribution other than the one *directory* names."""
    name = directory[: -len(".dist-info")].rsplit("-", 1)[0]
    return canonicalize_name(owner) != canonicalize_name(name)


def interpreter_changes(installed: InstalledPlugin) -> list[tuple[str, str]]:
    """The start check: recorded store-owned entries changed or gone, and interpreter files
    added in ``bin/`` or at the venv's root."""
    assert installed.venv is not None
    recorded = installed.metadata.get("interpreter_files")
    if not isinstance(recorded, dict):
        return [("pyvenv.cfg", "not recorded (installed before the store recorded its "
                 "interpreter files)")]
    return recorded_changes(installed.venv, recorded)


def recorded_changes(venv_path: Path, recorded: Mapping[str, str]) -> list[tuple[str, str]]:
    """:func:`interpreter_changes` of the venv at *venv_path* against *recorded*."""
    venv = os.fspath(venv_path)
    found: list[tuple[str, str]] = []
    for rel, what in recorded.items():
        now = _entry(os.path.join(venv, rel))
        if now != what:
            found.append((rel, "missing" if now is None else "modified"))
    for directory in ("", "bin"):
        try:
            names = os.listdir(os.path.join(venv, directory))
        except OSError:
            continue
        for name in names:
            rel = os.path.join(directory, name) if directory else name
            if rel in recorded:
                continue
            if (directory == "" and name not in _INERT_DIRS) or \
                    (directory == "bin" and _RESERVED_SCRIPT.search(name)):
                found.append((rel, "added"))
    return sorted(found)


def check_interpreter_files(installed: InstalledPlugin) -> None:
    """:meth:`PluginStore.check_interpreter_files`."""
    if installed.venv is None:
        return
    found = interpreter_changes(installed)
    if found:
        rel, what = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise StoreError(f"plugin {installed.name!r}", f"{installed.venv / rel} is "
                         f"{what} since the store made it{more}: the interpreter would "
                         f"read it before any sandbox layer applies; reinstall the "
                         f"plugin (`ohp reinstall {installed.brought_by or installed.name}`)")


def venv_changes(installed: InstalledPlugin, site: Path) -> tuple[list[Change], int]:
    """:meth:`PluginStore.verify` outside site-packages: the store-owned entries against their
    record, and every other entry must be a file a distribution's RECORD lists (RECORD rows
    are checked by :func:`check_site_packages`) or a directory holding such files."""
    assert installed.venv is not None
    recorded = installed.metadata.get("interpreter_files")
    if not isinstance(recorded, dict):
        raise StoreError(f"plugin {installed.name!r}", "installed before the store recorded "
                         "its interpreter files (pyvenv.cfg, bin/python); reinstall it")
    venv = installed.venv
    now = venv_entries(venv, site)
    owners = _owners(venv, site)
    changes: list[Change] = []

    def rel_site(rel: str) -> str:
        return os.path.relpath(os.path.join(venv, rel), site).replace(os.sep, "/")

    for rel, what in recorded.items():
        if now.get(rel) != what:
            changes.append((None, rel_site(rel), "missing" if rel not in now else "modified"))
    listed = set(owners)
    for rel, what in now.items():
        if rel in recorded or rel in listed:
            continue
        if what == "dir" and any(p.startswith(rel + os.sep) for p in listed):
            continue
        changes.append((None, rel_site(rel), "unexpected"))
    return changes, len(recorded)
