"""Stage 3: the venv. Created by the backend, the fetched files installed into it offline with
``--require-hashes``, then checked before anything runs its interpreter: what the install put
outside site-packages, the ``*.dist-info`` it made, the plugin names its distributions claim;
then its bytecode, compiled once per distinct source and shared."""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name

from isolator._errors import PluginCollisionError, StoreError
from isolator.metadata._distinfo import find_site_packages, iter_distributions
from isolator.store._disk import checkpoint, now, say, valid_name
from isolator.store._lockfile import check_site_packages
from isolator.store._pool import POOL_FORMAT, env_inputs, env_key
from isolator.store._records import PLUGINS_GROUP
from isolator.store._venvfiles import (
    check_dist_infos,
    check_outside_site,
    dist_info_dirs,
    recorded_changes,
    venv_entries,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from isolator.store._context import StoreContext
    from isolator.store._generations import Generations
    from isolator.store._interpreters import Interpreter
    from isolator.store._pool import EnvironmentPool
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
    # The wheels' bytecode compiles while the venv is made and filled (see _bytecode.py).
    precompiled = ctx.bytecode.precompile(
        [ctx.wheelhouse.path(d.artifact()) for d in dists], interpreter, op, timeout=timeout)
    try:
        return _fill_venv(ctx, venv, interpreter, dists, root_dist=root_dist, name=name,
                          op=op, progress=progress, timeout=timeout, precompiled=precompiled)
    finally:
        precompiled()  # nothing of it outlives the install (its scratch is op's)


def _fill_venv(
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
    precompiled: Callable[[], set[Path]],
) -> tuple[Path, dict[str, str]]:
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
    compiled = ctx.bytecode.compile_site(site, interpreter, op, timeout=timeout,
                                         precompiled=precompiled())
    say(progress, f"bytecode: {compiled.linked} shared, {compiled.compiled} "
        "compiled")
    checkpoint("installed")
    return site, owned


def pooled_venv(
    ctx: StoreContext,
    pool: EnvironmentPool,
    interpreter: Interpreter,
    dists: list[ResolvedDistribution],
    *,
    root_dist: str,
    name: str,
    progress: Callable[[str], None] | None,
    timeout: float | None,
) -> tuple[Path, Path, dict[str, str], str]:
    """The pooled environment holding exactly *dists* with *interpreter*: used as it is when
    the pool has it (checked first, :func:`adopt_env`), else built there once. Returns its
    directory, its site-packages, the entries outside site-packages the store owns, its key.
    The caller holds the pool lock shared (the store's operation)."""
    inputs = env_inputs(dists, interpreter, ctx.backend, root_dist)
    key = env_key(inputs)
    pool.reference(key, ctx.root)  # before the environment is used: collect sees it

    def build(env: Path) -> dict[str, Any]:
        with pool.scratch() as op:
            _site, owned = make_venv(ctx, env / "venv", interpreter, dists,
                                     root_dist=root_dist, name=name, op=op,
                                     progress=progress, timeout=timeout)
        return {"format": POOL_FORMAT, "inputs": inputs, "interpreter_files": owned,
                "distributions": [d.to_dict() for d in sorted(dists, key=lambda d: d.name)],
                "built_at": now()}

    env, record, built = pool.acquire(key, build, progress)
    venv = env / "venv"
    site = find_site_packages(venv)
    if built:
        return env, site, dict(record["interpreter_files"]), key
    say(progress, f"checking pooled environment {key}")
    owned = adopt_env(ctx, env, record, inputs=inputs, interpreter=interpreter, dists=dists)
    check_claims(ctx.generations, site, root_dist, name)
    say(progress, f"using pooled environment {key}")
    return env, site, owned, key


def adopt_env(ctx: StoreContext, env: Path, record: dict[str, Any], *,
              inputs: dict[str, Any], interpreter: Interpreter,
              dists: list[ResolvedDistribution]) -> dict[str, str]:
    """Check a pooled environment this store did not build before using it: its record is
    for exactly these inputs, the files the interpreter reads at start are as recorded and
    point at *interpreter* (``pyvenv.cfg``'s home, no system site-packages, ``bin/python*``
    the interpreter), and site-packages holds exactly the wheels' files (as ``verify``).
    Returns the interpreter files it records; raises :class:`StoreError` naming the first
    difference (the pool then needs ``ohp clean`` or the environment removed)."""
    venv = env / "venv"

    def refuse(what: str) -> StoreError:
        return StoreError(f"pooled environment {env}", f"{what}: refused (it is not as the "
                          "pool built it; remove it or run `ohp clean` with this pool, then "
                          "install again)")

    if record.get("inputs") != inputs:
        raise refuse("its env.json records other inputs than its key says")
    owned = record.get("interpreter_files")
    if not isinstance(owned, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in owned.items()):
        raise refuse("its env.json has no interpreter files")
    for rel in owned:
        parts = rel.split(os.sep)
        if os.path.isabs(rel) or ".." in parts or rel.endswith("._pth") or \
                (parts[0] == "bin" and parts[-1] == "pyvenv.cfg"):
            raise refuse(f"its env.json lists {rel!r} as an interpreter file")
    if "pyvenv.cfg" not in owned:
        raise refuse("its env.json does not record pyvenv.cfg")
    changes = recorded_changes(venv, owned)
    if changes:
        rel, how = changes[0]
        raise refuse(f"{rel} is {how}")
    config: dict[str, str] = {}
    with open(venv / "pyvenv.cfg", encoding="utf-8") as handle:
        for line in handle:
            key, sep, value = line.partition("=")
            if sep:
                config[key.strip().lower()] = value.strip()
    homes = {str(interpreter.path.parent),
             os.path.dirname(os.path.realpath(interpreter.path))}
    if config.get("home") not in homes:
        raise refuse(f"pyvenv.cfg's home is {config.get('home')!r}, not "
                     f"{interpreter.path.parent}")
    if config.get("include-system-site-packages", "false").lower() != "false":
        raise refuse("pyvenv.cfg includes the system site-packages")
    real = os.path.realpath(interpreter.path)
    for entry in os.scandir(venv / "bin"):
        if not entry.name.lower().startswith(("python", "pypy")):
            continue
        if entry.is_symlink():
            if os.path.realpath(entry.path) != real:
                raise refuse(f"bin/{entry.name} leads to {os.path.realpath(entry.path)}, not "
                             f"the interpreter {real}")
        elif entry.is_file(follow_symlinks=False):
            digest = hashlib.sha256()
            with open(entry.path, "rb") as exe:
                while block := exe.read(1 << 20):
                    digest.update(block)
            if digest.hexdigest() != inputs["interpreter"]["sha256"]:
                raise refuse(f"bin/{entry.name} is not a copy of the interpreter {real}")
    site = find_site_packages(venv)
    wheels = [(d.name, ctx.wheelhouse.path(d.artifact())) for d in dists]
    changed, _count = check_site_packages(
        site, [(n, w if w.exists() else None) for n, w in wheels], ctx.bytecode.root,
        virtualenv=ctx.backend.name == "virtualenv")
    if changed:
        listed = ", ".join(f"site-packages/{path} is {how}" for _d, path, how in changed[:3])
        more = f" (and {len(changed) - 3} more)" if len(changed) > 3 else ""
        raise refuse(f"{listed}{more}")
    return dict(owned)


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
