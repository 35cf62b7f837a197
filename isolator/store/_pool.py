"""The environment pool: one venv per resolved set, shared read-only by many stores (tenants).

``PluginStore(root, pool=DIR)``: a package plugin's venv is built once per *environment key*
in the pool and every tenant store that installs the same set uses it; the uv cache, the
wheelhouse and the bytecode pool are the pool's too. Each tenant keeps its own generations
(metadata, the record of which pooled environment they use), settings, policy and audit log.

Layout of a pool::

    .isolator-pool.json         marker and format
    .lock                       held shared by every tenant operation, exclusive by collect
    envs/<key>/                 venv/, env.json (what it was built from), .complete (published)
    locks/<key>.lock            one builder per key: concurrent installs build one environment
    refs/<key>/<tenant>.json    a tenant that uses (or is about to use) the environment
    wheelhouse/ bytecode/ cache/uv/ tmp/

The key (:func:`env_key`) hashes what makes two venvs interchangeable: every distribution
with its file's sha256, the plugin's root distribution, the interpreter (its path, real path,
version, ABI, cache tag and the sha256 of its executable), the backend and its version, and the
store's formats. An environment is immutable once published: it is built in place under its
key lock (a venv cannot be moved: its scripts hold absolute paths), then ``env.json`` and last
``.complete`` are written; one without ``.complete`` is debris, rebuilt by the next builder or
removed by :meth:`EnvironmentPool.collect`.

References: a tenant writes ``refs/<key>/<sha256 of its root>.json`` (its root inside) under
the pool lock held shared, before its generation names the environment; :meth:`collect` holds
the lock exclusive, so no install is half-way, and keeps an environment while any referencing
tenant has a generation (current, old, or leased by a worker) whose metadata names it.

A pooled environment is not trusted because it is there: before a tenant uses one it did not
build, the environment's directory must be owned by this uid (or root) and not writable by
others, its interpreter files as the record says and ``pyvenv.cfg`` pointing at the expected
interpreter without system site-packages, and every file of site-packages checked against the
wheels' RECORDs, as ``ohp verify`` does (:func:`isolator.store._pipeline._venv.adopt_env`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name

from isolator._errors import StoreError
from isolator.store._disk import flock, fsync_dir, remove, say, tree_size, write_json_atomic
from isolator.store._layout import MARKER, METADATA
from isolator.store._records import METADATA_FORMAT, STORE_FORMAT

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from isolator.store._backends import Backend
    from isolator.store._bytecode import BytecodePool
    from isolator.store._interpreters import Interpreter
    from isolator.store._records import ResolvedDistribution
    from isolator.store._wheelhouse import Wheelhouse

POOL_MARKER = ".isolator-pool.json"
POOL_FORMAT = 1
ENV_RECORD = "env.json"
COMPLETE = ".complete"
_MAX_RECORD = 4 << 20
_MAX_REF = 64 << 10


@dataclass(frozen=True)
class PoolCleanReport:
    """What :meth:`EnvironmentPool.collect` removed."""

    environments: tuple[str, ...] = ()
    """Keys of environments no tenant referenced any more."""
    kept: int = 0
    """Environments some tenant still uses."""
    references: int = 0
    """Reference files of tenants that no longer use the environment (or are gone)."""
    debris: int = 0
    """Half-built environments and scratch directories."""
    wheels: int = 0
    bytecode: int = 0
    bytes_freed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"environments": list(self.environments), "kept": self.kept,
                "references": self.references, "debris": self.debris, "wheels": self.wheels,
                "bytecode": self.bytecode, "bytes_freed": self.bytes_freed}


_exe_hashes: dict[tuple[str, int, int, int], str] = {}


def _executable_sha256(path: Path) -> str:
    """The sha256 of the interpreter's real executable (remembered per file identity)."""
    real = os.path.realpath(path)
    info = os.stat(real)
    ident = (real, info.st_ino, info.st_size, info.st_mtime_ns)
    found = _exe_hashes.get(ident)
    if found is None:
        digest = hashlib.sha256()
        with open(real, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        found = _exe_hashes[ident] = digest.hexdigest()
    return found


def env_inputs(dists: Sequence[ResolvedDistribution], interpreter: Interpreter,
               backend: Backend, root_dist: str) -> dict[str, Any]:
    """What an environment is built from, as the key hashes it."""
    return {
        "pool_format": POOL_FORMAT,
        "store_format": STORE_FORMAT,
        "metadata_format": METADATA_FORMAT,
        "root_distribution": canonicalize_name(root_dist),
        "distributions": sorted([canonicalize_name(d.name), d.version, d.filename, d.sha256]
                                for d in dists),
        "interpreter": {
            "path": str(interpreter.path),
            "real_path": os.path.realpath(interpreter.path),
            "version": interpreter.version_str,
            "implementation": interpreter.implementation,
            "abi_tag": interpreter.abi_tag,
            "cache_tag": interpreter.cache_tag,
            "is_venv": interpreter.is_venv,
            "sha256": _executable_sha256(interpreter.path),
        },
        "backend": [backend.name, backend.version()],
    }


def env_key(inputs: dict[str, Any]) -> str:
    """The environment key: 32 hex digits of the sha256 of *inputs* (:func:`env_inputs`)."""
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _is_key(name: str) -> bool:
    return len(name) == 32 and all(c in "0123456789abcdef" for c in name)


def tenant_id(root: Path) -> str:
    """The name of a tenant's reference files: the sha256 of its real root path."""
    return hashlib.sha256(os.path.realpath(root).encode()).hexdigest()[:32]


def _read_small_json(path: Path, limit: int) -> Any:
    """A JSON file read without following a symlink, at most *limit* bytes; None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


class EnvironmentPool:
    """The pool at *root* (its real path; see the module)."""

    def __init__(self, root: str | os.PathLike[str], *, lock_timeout: float) -> None:
        given = Path(root).expanduser().absolute()
        self.root = Path(os.path.realpath(given))
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"EnvironmentPool({str(self.root)!r})"

    @property
    def wheelhouse_dir(self) -> Path:
        return self.root / "wheelhouse"

    @property
    def bytecode_dir(self) -> Path:
        return self.root / "bytecode"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache" / "uv"

    def env_dir(self, key: str) -> Path:
        return self.root / "envs" / key

    # ---- checks ----------------------------------------------------------------------------

    def check_tenant(self, tenant_root: Path) -> None:
        """Refuse a tenant root that is the pool, lies inside it, or holds it: each would
        clean or write the other's files."""
        tenant = Path(os.path.realpath(tenant_root))
        if tenant == self.root or tenant.is_relative_to(self.root) or \
                self.root.is_relative_to(tenant):
            raise StoreError(f"pool {self.root}", f"the store root {tenant_root} is the pool, "
                             "inside it or around it; give the pool a directory of its own, "
                             "outside every store")

    def check(self, *, create: bool) -> None:
        """Raise unless the root is a pool (its marker), or, with *create*, an empty or new
        directory made one; and unless this process may write it (pooled installs register
        references and take its lock: reading plugins installed from it needs read access
        only)."""
        marker = self.root / POOL_MARKER
        data = _read_small_json(marker, 4096)
        if data is None:
            if marker.exists() or os.path.islink(marker):
                raise StoreError(str(marker), "unreadable pool marker (not a small JSON file)")
            if self.root.is_dir() and any(not e.name.startswith(f".{POOL_MARKER}.")
                                          for e in self.root.iterdir()):
                if (self.root / MARKER).exists():
                    raise StoreError(str(self.root), "is a plugin store, not an environment "
                                     "pool; give the pool a directory of its own")
                raise StoreError(str(self.root), f"exists and is not an environment pool (no "
                                 f"{POOL_MARKER}); choose a new or empty directory")
            if not create:
                raise StoreError(str(self.root), "no environment pool here yet")
            self.root.mkdir(parents=True, exist_ok=True)
            write_json_atomic(marker, {"format": POOL_FORMAT})
            data = {"format": POOL_FORMAT}
        fmt = data.get("format") if isinstance(data, dict) else None
        if fmt != POOL_FORMAT:
            raise StoreError(str(self.root), f"environment pool format {fmt!r}; this isolator "
                             f"reads format {POOL_FORMAT}")
        self._check_owned(self.root)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StoreError(f"pool {self.root}", "not writable by this process: a pooled "
                             "install registers its reference and takes the pool's lock there "
                             "(reading plugins installed from it needs read access only)")

    def _check_owned(self, path: Path) -> os.stat_result:
        """*path* is a real directory (no symlink) owned by this uid or root and not writable
        by other users: nobody else can have planted what is in it."""
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            raise StoreError(str(path), "missing from the environment pool") from None
        if not stat.S_ISDIR(info.st_mode):
            raise StoreError(str(path), "is not a directory (a symlink or a file planted in "
                             "the environment pool?): refused")
        if info.st_uid not in (os.geteuid(), 0):
            raise StoreError(str(path), f"is owned by uid {info.st_uid}, not by this process "
                             f"(uid {os.geteuid()}) or root: refused (another user could have "
                             "planted it)")
        if info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX:
            raise StoreError(str(path), "is writable by every user: refused (anyone could "
                             "plant an environment in it)")
        return info

    def _subdir(self, *parts: str) -> Path:
        """``ROOT/parts...``, made when missing and checked as :meth:`_check_owned` says."""
        path = self.root
        for part in parts:
            path = path / part
            with contextlib.suppress(FileExistsError):
                path.mkdir()
            self._check_owned(path)
        return path

    # ---- locks -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, *, shared: bool,
             progress: Callable[[str], None] | None = None) -> Iterator[None]:
        """The pool lock: shared by tenant operations, exclusive by :meth:`collect`."""
        with flock(self.root / ".lock", shared=shared, timeout=self.lock_timeout,
                   what=f"the environment pool {self.root}", progress=progress):
            yield

    @contextlib.contextmanager
    def scratch(self) -> Iterator[Path]:
        """A scratch directory on the pool's filesystem (a build's files are renamed from it
        into the pool's bytecode store)."""
        tmp = self._subdir("tmp")
        op = tmp / f"op-{secrets.token_hex(6)}"
        op.mkdir()
        try:
            yield op
        finally:
            remove(op)

    # ---- references and environments ------------------------------------------------------

    def reference(self, key: str, tenant_root: Path) -> None:
        """Record that the tenant at *tenant_root* uses environment *key* (the caller holds
        the pool lock shared, so :meth:`collect` sees it before the environment can go)."""
        refs = self._subdir("refs", key)
        path = refs / f"{tenant_id(tenant_root)}.json"
        if _read_small_json(path, _MAX_REF) == {"root": os.path.realpath(tenant_root)}:
            return
        write_json_atomic(path, {"root": os.path.realpath(tenant_root)})

    def acquire(
        self,
        key: str,
        build: Callable[[Path], dict[str, Any]],
        progress: Callable[[str], None] | None = None,
    ) -> tuple[Path, dict[str, Any], bool]:
        """Environment *key*: the published one, or built now by ``build(env_dir)`` (which
        returns the record to keep in ``env.json``) under the key's lock, so installs of the
        same set from many tenants build it once. Returns (directory, record, built)."""
        self._subdir("envs")
        locks = self._subdir("locks")
        env = self.env_dir(key)
        with flock(locks / f"{key}.lock", shared=False, timeout=self.lock_timeout,
                   what=f"pooled environment {key}", progress=progress):
            if os.path.lexists(env / COMPLETE) or os.path.islink(env):
                self._check_owned(env)
                record = _read_small_json(env / ENV_RECORD, _MAX_RECORD)
                if not isinstance(record, dict) or record.get("key") != key:
                    raise StoreError(str(env), f"its {ENV_RECORD} is unreadable or names "
                                     "another key: refused (remove it, or run `ohp clean` "
                                     "with this pool)")
                return env, record, False
            if os.path.lexists(env):
                say(progress, f"removing a half-built pooled environment {key}")
                remove(env)
            env.mkdir()
            try:
                record = build(env)
                record = {**record, "key": key}
                write_json_atomic(env / ENV_RECORD, record)
                with open(env / COMPLETE, "w", encoding="utf-8") as handle:
                    handle.flush()
                    os.fsync(handle.fileno())
                fsync_dir(env)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    (env / COMPLETE).unlink()
                remove(env)
                raise
            return env, record, True

    # ---- collecting ------------------------------------------------------------------------

    def collect(self, wheelhouse: Wheelhouse, bytecode: BytecodePool,
                progress: Callable[[str], None] | None = None) -> PoolCleanReport:
        """Remove every environment no tenant uses any more (and its references), half-built
        environments, scratch, wheels no remaining environment was built from and pooled
        bytecode no venv links. Holds the pool lock exclusive: no install is half-way."""
        if not (self.root / POOL_MARKER).exists():
            return PoolCleanReport()
        self.check(create=False)
        removed: list[str] = []
        kept = refs_removed = debris = freed = 0
        keep_hashes: set[str] = set()
        tenants: dict[str, set[str]] = {}
        with self.lock(shared=False, progress=progress):
            tmp = self.root / "tmp"
            for entry in sorted(tmp.iterdir()) if tmp.is_dir() else []:
                freed += tree_size(entry)
                remove(entry)
                debris += 1
            envs = self.root / "envs"
            for env in sorted(envs.iterdir()) if envs.is_dir() else []:
                key = env.name
                if not _is_key(key) or not os.path.lexists(env / COMPLETE) or \
                        os.path.islink(env):
                    freed += tree_size(env)
                    remove(env)
                    debris += 1
                    continue
                live, dead = self._references(key, tenants)
                for ref in dead:
                    ref.unlink(missing_ok=True)
                    refs_removed += 1
                if live:
                    kept += 1
                    keep_hashes |= _record_hashes(env)
                    continue
                say(progress, f"removing pooled environment {key}")
                freed += tree_size(env)
                (env / COMPLETE).unlink(missing_ok=True)
                remove(env)
                remove(self.root / "refs" / key)
                (self.root / "locks" / f"{key}.lock").unlink(missing_ok=True)
                removed.append(key)
            refs = self.root / "refs"
            for ref_dir in sorted(refs.iterdir()) if refs.is_dir() else []:
                if not (envs / ref_dir.name).exists():
                    refs_removed += sum(1 for _ in ref_dir.iterdir()) if ref_dir.is_dir() else 1
                    remove(ref_dir)
            wheels, wheel_bytes = wheelhouse.remove_unreferenced(keep_hashes)
            freed += wheel_bytes
            pyc_files, pyc_bytes = bytecode.remove_unused()
            freed += pyc_bytes
        say(progress, f"pool: removed {len(removed)} environments, kept {kept}")
        return PoolCleanReport(tuple(removed), kept, refs_removed, debris, wheels, pyc_files,
                               freed)

    def _references(self, key: str,
                    tenants: dict[str, set[str]]) -> tuple[bool, list[Path]]:
        """Whether a tenant still uses environment *key*; the reference files of tenants that
        do not."""
        ref_dir = self.root / "refs" / key
        live = False
        dead: list[Path] = []
        try:
            refs = sorted(ref_dir.iterdir()) if not ref_dir.is_symlink() else []
        except FileNotFoundError:
            refs = []
        for ref in refs:
            data = _read_small_json(ref, _MAX_REF)
            root = data.get("root") if isinstance(data, dict) else None
            if not isinstance(root, str) or not os.path.isabs(root):
                dead.append(ref)
                continue
            keys = tenants.get(root)
            if keys is None:
                keys = tenants[root] = self._tenant_keys(Path(root))
            if key in keys:
                live = True
            else:
                dead.append(ref)
        return live, dead

    def _tenant_keys(self, tenant: Path) -> set[str]:
        """The keys of this pool's environments that any generation of *tenant* names (the
        current ones, older ones a worker may still lease, half-removed ones)."""
        keys: set[str] = set()
        plugins = tenant / "plugins"
        try:
            plugin_dirs = list(os.scandir(plugins))
        except OSError:
            return keys
        for plugin_dir in plugin_dirs:
            try:
                gens = [e for e in os.scandir(plugin_dir.path) if e.name.startswith("gen-")]
            except OSError:
                continue
            for gen in gens:
                data = _read_small_json(Path(gen.path) / METADATA, _MAX_RECORD)
                pool = data.get("pool") if isinstance(data, dict) else None
                if isinstance(pool, dict) and pool.get("root") == str(self.root) and \
                        isinstance(pool.get("key"), str):
                    keys.add(pool["key"])
        return keys


def _record_hashes(env: Path) -> set[str]:
    data = _read_small_json(env / ENV_RECORD, _MAX_RECORD)
    hashes: set[str] = set()
    dists = data.get("distributions") if isinstance(data, dict) else None
    for dist in dists if isinstance(dists, list) else []:
        if isinstance(dist, dict):
            if isinstance(dist.get("sha256"), str):
                hashes.add(dist["sha256"])
            built = dist.get("built_from")
            if isinstance(built, dict) and isinstance(built.get("sha256"), str):
                hashes.add(built["sha256"])
    return hashes
