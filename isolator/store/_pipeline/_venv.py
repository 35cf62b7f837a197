"""Stage 3: the venv. Created by the backend, the fetched files installed into it offline with
``--require-hashes``, then checked before anything runs its interpreter: what the install put
outside site-packages, the ``*.dist-info`` it made, the plugin names its distributions claim;
then its bytecode, compiled once per distinct source and shared."""

from __future__ import annotations

from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from isolator._errors import PluginCollisionError
from isolator.metadata._distinfo import find_site_packages, iter_distributions
from isolator.store._disk import checkpoint, say, valid_name
from isolator.store._records import PLUGINS_GROUP
from isolator.store._venvfiles import (
    check_dist_infos,
    check_outside_site,
    dist_info_dirs,
    venv_entries,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from isolator.store._context import StoreContext
    from isolator.store._generations import Generations
    from isolator.store._interpreters import Interpreter
    from isolator.store._records import ResolvedDistribution


def make_venv(
    ctx: StoreContext,
    venv: Path,
    interpreter: Interpreter,
    dists: list[ResolvedDistribution],
    *,
    root_dist: str,
    name: str,
    op: Path,
    progress: Callable[[str], None] | None,
    timeout: float | None,
) -> tuple[Path, dict[str, str]]:
    """Create *venv* holding exactly *dists* (plugin *name*, of distribution *root_dist*);
    return its site-packages and the entries outside it the store owns from now on."""
    say(progress, f"creating venv (Python {interpreter.version_str})")
    ctx.backend.create_venv(venv, interpreter, timeout=timeout)
    checkpoint("venv-created")
    # What the backend made outside site-packages is the store's: the interpreter
    # reads it (pyvenv.cfg, bin/python*) before any sandbox layer applies.
    owned = venv_entries(venv, find_site_packages(venv))
    seeded = dist_info_dirs(find_site_packages(venv))  # virtualenv seeds pip
    requirements = op / "install-requirements.txt"
    requirements.write_text("".join(
        f"{d.name} @ {ctx.wheelhouse.path(d.artifact()).as_uri()} "
        f"--hash=sha256:{d.sha256}\n" for d in dists), encoding="utf-8")
    say(progress, f"installing {len(dists)} distributions")
    ctx.backend.install(venv, [], requirement_files=[requirements], no_index=True,
                        require_hashes=True, refresh=False, allow_build=False,
                        compile_bytecode=False, timeout=timeout)
    site = find_site_packages(venv)
    # Before anything runs this venv's interpreter (the bytecode compiler runs the
    # base one, but workers and programs run this one).
    owned = check_outside_site(venv, site, owned, root_dist)
    check_dist_infos(site, dists, seeded, root_dist)
    check_claims(ctx.generations, site, root_dist, name)
    compiled = ctx.bytecode.compile_site(site, interpreter, op, timeout=timeout)
    say(progress, f"bytecode: {compiled.linked} shared, {compiled.compiled} "
        "compiled")
    checkpoint("installed")
    return site, owned


def check_claims(generations: Generations, site: Path, root_dist: str, name: str) -> None:
    """Refuse a dependency that declares a plugin name it does not own: the name of the
    plugin being installed (its own root distribution owns it), or of an installed plugin
    from another package. A name no one installed may be brought (it yields to the
    plugin installed under it later)."""
    root = canonicalize_name(root_dist)
    for dist in iter_distributions(site):
        if dist.canonical_name == root:
            continue
        for entry in dist.declared_plugins(PLUGINS_GROUP):
            if entry.name == name:
                raise PluginCollisionError(
                    f"plugin {name!r}", f"{dist.name} {dist.version}, a dependency of "
                    f"{root_dist}, declares the plugin name {entry.name!r}, which is "
                    f"{root_dist}'s own: refused (a dependency never answers for a name "
                    "it does not own)")
            if not valid_name(entry.name):
                continue
            owner = generations.current(entry.name)
            if owner is None:
                continue
            if owner.package is not None and \
                    canonicalize_name(owner.package) == dist.canonical_name:
                continue  # the same package: that plugin, brought
            theirs = owner.package or owner.source.source
            raise PluginCollisionError(
                f"plugin {entry.name!r}", f"{dist.name} {dist.version}, a dependency of "
                f"{root_dist}, declares the plugin name {entry.name!r}, which the "
                f"installed plugin {entry.name!r} ({theirs}) owns: refused (a dependency "
                "never answers for a name it does not own)")
