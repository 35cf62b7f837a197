"""The store's records: what it knows of an installed plugin and what its operations report.

Every stage of the store reads or writes these; this module imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from isolator._errors import SourceError, StoreError
from isolator.content._model import Installation
from isolator.sources._sources import PluginSource
from isolator.store._layout import METADATA
from isolator.store._resolve import Artifact

if TYPE_CHECKING:
    import os

    from isolator.content._model import Plugin

STORE_FORMAT = 1
METADATA_FORMAT = 1
PLUGINS_GROUP = "openhands.plugins"
ENTRY_POINT_GROUPS = ("openhands.plugins", "openhands.agents", "openhands.tools",
                      "openhands.components")
"""The groups a plugin package declares: its content root, its agent factory, its tools."""


@dataclass(frozen=True)
class ResolvedDistribution:
    """One distribution a generation was built from: exact version and the file's sha256."""

    name: str
    version: str
    filename: str
    sha256: str
    url: str
    """Where the file came from (an index URL or a ``file:`` URL)."""
    built_from: dict[str, str] | None = None
    """For a wheel the store built from an sdist: that sdist's url, filename and sha256."""

    def artifact(self) -> Artifact:
        return Artifact(url=self.url, sha256=self.sha256, filename=self.filename)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "version": self.version,
                                "filename": self.filename, "sha256": self.sha256,
                                "url": self.url}
        if self.built_from is not None:
            data["built_from"] = dict(self.built_from)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResolvedDistribution:
        return cls(name=data["name"], version=data["version"], filename=data["filename"],
                   sha256=data["sha256"], url=data["url"], built_from=data.get("built_from"))


@dataclass(frozen=True)
class InstalledPlugin:
    """What the store knows of one installed plugin (its current generation)."""

    name: str
    version: str
    kind: Literal["package", "content-only"]
    source: PluginSource
    generation: str
    path: Path
    """The generation directory."""
    content_dir: Path
    """The plugin directory: the module in site-packages, or the copied content."""
    installed_at: str
    package: str | None = None
    """The distribution that declares the plugin (``None`` for content-only)."""
    module: str | None = None
    venv: Path | None = None
    python: dict[str, Any] | None = None
    backend: dict[str, str] | None = None
    constraint: str | None = None
    distributions: tuple[ResolvedDistribution, ...] = ()
    allow_build: bool = False
    git_commit: str | None = None
    content_sha256: str | None = None
    brought_by: str | None = None
    """For a plugin another plugin depends on: the plugin whose venv it is loaded from."""
    metadata: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def env_dir(self) -> Path:
        """The directory holding the venv: the generation's own, or the pooled environment's
        (``metadata["pool"]``); the paths the record gives relative are relative to it."""
        return self.venv.parent if self.venv is not None else self.path

    @property
    def pool(self) -> dict[str, str] | None:
        """``{"root", "key", "env"}`` of the pooled environment it uses, else None."""
        pool = self.metadata.get("pool")
        return pool if isinstance(pool, dict) else None

    @property
    def python_version(self) -> str | None:
        return None if self.python is None else str(self.python.get("version"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (``ohp list --json`` and ``ohp show NAME --json``)."""
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "package": self.package,
            "module": self.module,
            "python": self.python_version,
            "python_path": None if self.python is None else self.python.get("path"),
            "source": self.source.source,
            "source_detail": self.source.to_dict(),
            "constraint": self.constraint,
            "generation": self.generation,
            "path": str(self.path),
            "content_dir": str(self.content_dir),
            "venv": None if self.venv is None else str(self.venv),
            "backend": self.backend,
            "installed_at": self.installed_at,
            "allow_build": self.allow_build,
            "git_commit": self.git_commit,
            "brought_by": self.brought_by,
            "distributions": [d.to_dict() for d in self.distributions],
        }

    def installation(self) -> Installation:
        """The summary a loaded :class:`Plugin` carries."""
        return Installation(
            name=self.name, version=self.version, kind=self.kind, package=self.package,
            generation=self.generation, source=self.source.source,
            python=self.python_version, brought_by=self.brought_by,
        )


@dataclass(frozen=True)
class CleanReport:
    """What :meth:`PluginStore.clean` removed."""

    generations: tuple[str, ...] = ()
    plugins: tuple[str, ...] = ()
    scratch: int = 0
    wheels: int = 0
    bytes_freed: int = 0
    kept_leased: tuple[str, ...] = ()
    bytecode: int = 0
    """Pooled ``.pyc`` files no venv links to any more."""
    pool: dict[str, Any] | None = None
    """With an environment pool: what collecting it removed
    (:meth:`isolator.store._pool.PoolCleanReport.to_dict`)."""

    def to_dict(self) -> dict[str, Any]:
        data = {"generations": list(self.generations), "plugins": list(self.plugins),
                "scratch": self.scratch, "wheels": self.wheels, "bytes_freed": self.bytes_freed,
                "kept_leased": list(self.kept_leased), "bytecode": self.bytecode}
        if self.pool is not None:
            data["pool"] = self.pool
        return data


@dataclass(frozen=True)
class SyncReport:
    """What :meth:`PluginStore.sync` did: plugin names by what happened to them."""

    installed: tuple[str, ...] = ()
    """In the lock, not in the store before."""
    replaced: tuple[str, ...] = ()
    """In both, but different: a new generation built from the lock."""
    removed: tuple[str, ...] = ()
    """In the store, not in the lock: uninstalled."""
    unchanged: tuple[str, ...] = ()
    """Already as the lock says: untouched."""

    @property
    def changed(self) -> bool:
        return bool(self.installed or self.replaced or self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {"installed": list(self.installed), "replaced": list(self.replaced),
                "removed": list(self.removed), "unchanged": list(self.unchanged)}


@dataclass(frozen=True)
class FileChange:
    """One installed file that is not as it was installed (:meth:`PluginStore.verify`)."""

    plugin: str
    distribution: str | None
    """The distribution that owns the path (``None``: no distribution, or content-only)."""
    path: str
    """Relative to the venv's site-packages, or to a content-only plugin's directory."""
    change: Literal["missing", "modified", "unexpected"]

    def to_dict(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "distribution": self.distribution, "path": self.path,
                "change": self.change}


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`PluginStore.verify` found: changed files, and plugins it could not check."""

    plugins: tuple[str, ...] = ()
    files: int = 0
    """How many files were checked."""
    changes: tuple[FileChange, ...] = ()
    unverified: tuple[str, ...] = ()
    """``"name: reason"`` for a plugin whose record cannot be checked (it counts as a failure)."""

    @property
    def ok(self) -> bool:
        return not self.changes and not self.unverified

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "plugins": list(self.plugins), "files": self.files,
                "changes": [c.to_dict() for c in self.changes],
                "unverified": list(self.unverified)}


def from_metadata(gen: Path, data: dict[str, Any]) -> InstalledPlugin:
    try:
        kind = data["kind"]
        pool = data.get("pool")
        # A pooled generation's venv is the pool's environment, which its paths are under.
        base = Path(pool["env"]) if isinstance(pool, dict) else gen
        venv = base / "venv" if kind == "package" else None
        return InstalledPlugin(
            name=data["name"],
            version=data["version"],
            kind=kind,
            source=PluginSource.from_dict(data["source"]),
            generation=data["generation"],
            path=gen,
            content_dir=base / data["content_dir"],
            installed_at=data["installed_at"],
            package=data.get("package"),
            module=data.get("module"),
            venv=venv,
            python=data.get("python"),
            backend=data.get("backend"),
            constraint=data.get("constraint"),
            distributions=tuple(ResolvedDistribution.from_dict(d)
                                for d in data.get("distributions", [])),
            allow_build=bool(data.get("allow_build", False)),
            git_commit=data.get("git_commit"),
            content_sha256=data.get("content_sha256"),
            metadata=data,
        )
    except (KeyError, TypeError, SourceError) as exc:
        raise StoreError(str(gen / METADATA), f"metadata lacks or mangles {exc}") from None


def load_plugin(path: str | os.PathLike[str], *, name: str | None = None) -> Plugin:
    """:func:`isolator.content._loader.load_plugin`, imported on first use: the loader brings
    YAML, which reading the store's records (``ohp list``) does not need."""
    from isolator.content._loader import load_plugin as load  # noqa: PLC0415

    return load(path, name=name)


def redacted(src: PluginSource) -> PluginSource:
    """*src* with its URLs redacted (what the policy and the record see)."""
    return PluginSource.from_dict(src.to_dict())


def audit_fields(installed: InstalledPlugin) -> dict[str, Any]:
    return {"plugin": installed.name, "package": installed.package, "kind": installed.kind,
            "source": installed.source.source, "version": installed.version,
            "generation": installed.generation,
            "distributions": len(installed.distributions)}
