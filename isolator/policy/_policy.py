"""Operator policy: pluggy hook specifications, the built-in file policy and the audit log.

An operator decides which sources, indexes and packages a store may install, which sandbox
profile a plugin's workers get, and receives an audit event for everything that changes the
store or runs plugin code. Each of these is a pluggy hook (:class:`PolicySpec`); a
:class:`Policy` holds the implementations: ``STORE/policy.json`` when present (the built-in
:class:`FilePolicy`), the JSON-lines audit log ``STORE/audit.jsonl`` (:class:`AuditLog`, always
on), the host's entry points of group ``isolator.policy``, and objects registered by the host.

Checks fail closed: a hook that raises stops the operation with :class:`PolicyError`.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

import pluggy
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from isolator._errors import PolicyDeniedError, PolicyError
from isolator._redact import redact_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from isolator.sources._sources import PluginSource

PROJECT = "isolator"
ENTRY_POINT_GROUP = "isolator.policy"
"""Host entry points of this group are policy plugins, loaded by :meth:`Policy.load`."""
POLICY_FILE = "policy.json"
AUDIT_LOG = "audit.jsonl"
PROFILES = ("off", "standard", "strict")
"""Sandbox profiles, weakest first (hostbridge's ``PROFILES``; isolator does not import it)."""
PYPI_INDEX = "https://pypi.org/simple"
"""The index a source uses when it names none and does not say ``no_index``."""

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marks a policy plugin's methods: ``@hookimpl def isolator_check_package(...)``."""

_SOURCE_PREFIXES = ("pypi:", "git:", "github:", "dir:", "wheel:", "sdist:")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_RESERVED_FIELDS = frozenset({"time", "event", "pid", "uid"})


class PolicySpec:
    """The hooks an operator's policy plugin may implement (all optional).

    A check hook returns ``None`` to allow, or a reason (a short sentence) to deny; every
    implementation is asked and one reason is enough to deny. Arguments are passed by name, so
    an implementation takes only those it needs.
    """

    @hookspec
    def isolator_check_source(self, source: PluginSource) -> str | None:
        """Before anything is fetched or built: may *source* be installed? Return a reason to
        deny. Called for install, upgrade and reinstall."""

    @hookspec
    def isolator_check_package(
        self, plugin: str, name: str, version: str, index: str | None
    ) -> str | None:
        """After resolution, before any file is fetched: may distribution *name* *version*,
        from *index* (a URL; ``None`` for a local file the source named or the store built),
        be installed for *plugin* (the name of the distribution that declares the plugin)?
        Return a reason to deny."""

    @hookspec
    def isolator_check_index(self, plugin: str, url: str) -> str | None:
        """Before an index or a find-links location is used for *plugin* (a distribution
        name): return a reason to deny. *url* is the index URL, a find-links URL, or a
        ``file://`` URL for a local find-links directory."""

    @hookspec(firstresult=True)
    def isolator_choose_profile(
        self, plugin: str, requested: str
    ) -> str | None:
        """The sandbox profile (``off``, ``standard`` or ``strict``) for plugin *plugin*'s
        workers, given the one the host *requested*; ``None`` to leave the choice to others.
        The first answer wins (plugins registered last are asked first); the file policy's
        ``profile.minimum`` still applies to it."""

    @hookspec
    def isolator_audit(self, event: dict[str, Any]) -> None:
        """Receive an audit event: a JSON-ready dict with ``time`` (UTC, ISO 8601), ``event``,
        ``pid`` and ``uid`` of the host, and the event's own fields."""


class Policy:
    """The operator's policy for one store: a pluggy ``PluginManager`` over :class:`PolicySpec`.

    Made empty (everything allowed, the requested profile kept, no audit log); usually made by
    :meth:`load`, which registers the store's policy file, its audit log, the host's entry
    points and the host's own plugin objects.
    """

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(PROJECT)
        self.manager.add_hookspecs(PolicySpec)
        self.minimum = PROFILES[0]
        """The weakest profile :meth:`profile_for` answers (``profile.minimum`` of the file)."""
        self.audit_log: Path | None = None
        """The JSON-lines audit log written by :meth:`load`'s :class:`AuditLog`."""

    @classmethod
    def load(cls, store_root: str | os.PathLike[str],
             plugins: Iterable[object] = ()) -> Policy:
        """The policy of the store at *store_root*: ``policy.json`` there if it exists (a bad
        one raises :class:`PolicyError` naming the file and the key), the audit log
        ``audit.jsonl`` there, the host's ``isolator.policy`` entry points, then *plugins*."""
        root = Path(store_root).expanduser().absolute()
        policy = cls()
        file_policy = FilePolicy.read(root / POLICY_FILE)
        if file_policy is not None:
            policy.manager.register(file_policy, name=POLICY_FILE)
            policy.minimum = file_policy.minimum
        policy.audit_log = root / AUDIT_LOG
        policy.manager.register(AuditLog(policy.audit_log), name="audit-log")
        try:
            policy.manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as exc:
            raise PolicyError(f"entry points of group {ENTRY_POINT_GROUP!r}",
                              f"a policy plugin failed to load: {exc!r}") from exc
        policy._check_pending()
        for plugin in plugins:
            policy.register(plugin)
        return policy

    def register(self, plugin: object) -> None:
        """Add a policy plugin: an object (or module) with :data:`hookimpl` methods.

        Plugins registered later are asked first by the ``firstresult`` hook
        (:meth:`profile_for`); every check and audit hook reaches every plugin.
        """
        try:
            self.manager.register(plugin)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PolicyError(f"policy plugin {_label(plugin)}", str(exc)) from exc
        self._check_pending()

    @property
    def plugins(self) -> list[str]:
        """A label per registered plugin, in registration order (``ohp doctor`` shows them)."""
        return [name if not name.isdigit() else _label(plugin)
                for name, plugin in self.manager.list_name_plugin()]

    # ---- checks ------------------------------------------------------------------------------

    def check_source(self, source: PluginSource) -> None:
        """Raise :class:`PolicyDeniedError` (and audit a ``deny``) unless *source* is allowed."""
        reasons = self._ask("isolator_check_source", source=source)
        if reasons:
            self._deny("source", source.source, reasons, source=source.source)

    def check_index(self, plugin: str, url: str) -> None:
        """Raise :class:`PolicyDeniedError` (and audit a ``deny``) unless index *url* may be
        used for *plugin*."""
        reasons = self._ask("isolator_check_index", plugin=plugin, url=url)
        if reasons:
            self._deny("index", url, reasons, plugin=plugin, index=url)

    def check_package(self, plugin: str, name: str, version: str, index: str | None) -> None:
        """Raise :class:`PolicyDeniedError` (and audit a ``deny``) unless distribution *name*
        *version* from *index* may be installed for *plugin*."""
        reasons = self._ask("isolator_check_package", plugin=plugin, name=name, version=version,
                            index=index)
        if reasons:
            self._deny("package", f"{name} {version}", reasons, plugin=plugin, package=name,
                       version=version, index=index)

    def profile_for(self, plugin: str, requested: str) -> str:
        """The sandbox profile plugin *plugin*'s workers get: the hooks' answer, else
        *requested*; raised to :attr:`minimum` when weaker."""
        _check_profile(f"the profile requested for plugin {plugin!r}", requested)
        try:
            chosen = self.manager.hook.isolator_choose_profile(plugin=plugin,
                                                               requested=requested)
        except Exception as exc:
            raise PolicyError("policy hook isolator_choose_profile", f"raised {exc!r}") from exc
        profile = requested if chosen is None else chosen
        if chosen is not None:
            _check_profile(f"the profile a policy hook chose for plugin {plugin!r}", chosen)
        if PROFILES.index(profile) < PROFILES.index(self.minimum):
            profile = self.minimum
        return str(profile)

    # ---- audit -------------------------------------------------------------------------------

    def audit(self, event: str, **fields: Any) -> None:
        """Send audit event *event* to every ``isolator_audit`` hook (the audit log among them).

        The event gets ``time`` (UTC, ISO 8601 with microseconds), ``event``, and the host's
        ``pid`` and ``uid``, then *fields*, made JSON-ready (paths become strings, sets lists,
        objects with ``to_dict`` their dict, anything else its ``str``).
        """
        clash = sorted(_RESERVED_FIELDS & fields.keys())
        if clash:
            raise ValueError(f"audit fields {clash} are set by Policy.audit itself")
        now = time.time()
        record: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
            + f".{int(now % 1 * 1_000_000):06d}Z",
            "event": event,
            "pid": os.getpid(),
            "uid": os.getuid(),
        }
        # No credentials in the log (0600, but copied and shipped): every URL redacted.
        record.update(_redacted(json.loads(json.dumps(fields, default=_jsonable))))
        try:
            self.manager.hook.isolator_audit(event=record)
        except PolicyError:
            raise
        except Exception as exc:
            raise PolicyError("policy hook isolator_audit", f"raised {exc!r}") from exc

    # ---- internals ---------------------------------------------------------------------------

    def _ask(self, hook: str, **kwargs: Any) -> list[str]:
        caller = getattr(self.manager.hook, hook)
        try:
            answers = caller(**kwargs)
        except Exception as exc:
            # Fail closed: a policy that cannot answer denies by stopping the operation.
            raise PolicyError(f"policy hook {hook}", f"raised {exc!r}") from exc
        reasons = []
        for answer in answers:
            if answer is None:
                continue
            text = answer if isinstance(answer, str) and answer.strip() else \
                f"a policy hook answered {answer!r} (a reason must be a non-empty string)"
            reasons.append(" ".join(text.split()))
        return reasons

    def _deny(self, what: str, subject: str, reasons: list[str], **fields: Any) -> None:
        reason = "; ".join(dict.fromkeys(reasons))
        self.audit("deny", what=what, **fields, reason=reason)
        raise PolicyDeniedError(what, subject, reason)

    def _check_pending(self) -> None:
        try:
            self.manager.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PolicyError(f"policy plugin {_label(exc.plugin)}", str(exc)) from exc


# ---- the built-in file policy ------------------------------------------------------------------


class FilePolicy:
    """``STORE/policy.json``: allow and deny lists for sources, packages and indexes, and the
    profile per plugin with a minimum. See ``docs/policy.md`` for the format."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        where = str(path)
        _only_keys(where, "", data, ("sources", "packages", "indexes", "profile"))
        self.sources = _lists(where, "sources", data, _source_pattern)
        self.indexes = _lists(where, "indexes", data, _index_pattern)
        self.packages = _lists(where, "packages", data, _PackageRule.parse)
        profile = data.get("profile", {})
        if not isinstance(profile, dict):
            raise _wrong_type(where, "profile", "an object", profile)
        _only_keys(where, "profile.", profile, ("default", "plugins", "minimum"))
        default = profile.get("default")
        self.default = None if default is None else \
            _profile_value(where, "profile.default", default)
        self.minimum = _profile_value(where, "profile.minimum", profile.get("minimum", "off"))
        plugins = profile.get("plugins", {})
        if not isinstance(plugins, dict):
            raise _wrong_type(where, "profile.plugins", "an object of NAME-PATTERN: PROFILE",
                              plugins)
        self.plugin_profiles = {
            pattern: _profile_value(where, f"profile.plugins.{pattern}", value)
            for pattern, value in plugins.items()}

    @classmethod
    def read(cls, path: Path) -> FilePolicy | None:
        """The policy in *path*; ``None`` when there is no such file."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(str(path), f"cannot be read: {exc}") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            detail = (f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
                      if isinstance(exc, json.JSONDecodeError) else str(exc))
            raise PolicyError(str(path), f"is not valid JSON: {detail}") from None
        if not isinstance(data, dict):
            raise _wrong_type(str(path), "the top level", "an object", data)
        return cls(path, data)

    def __repr__(self) -> str:
        return f"FilePolicy({str(self.path)!r})"

    @hookimpl
    def isolator_check_source(self, source: PluginSource) -> str | None:
        keys = source_keys(source)
        return self._verdict("sources", self.sources,
                             lambda pattern: any(fnmatch.fnmatchcase(k, pattern) for k in keys),
                             " or ".join(keys))

    @hookimpl
    def isolator_check_index(self, url: str) -> str | None:
        key = url.rstrip("/")
        return self._verdict("indexes", self.indexes,
                             lambda pattern: fnmatch.fnmatchcase(key, pattern), url)

    @hookimpl
    def isolator_check_package(self, name: str, version: str) -> str | None:
        deny = self.packages.get("deny", [])
        for rule in deny:
            if rule.matches(name, version, unknown_version=True):
                return f"{self.path.name} packages.deny has {rule.text!r}"
        allow = self.packages.get("allow")
        if allow is not None and not any(
                rule.matches(name, version, unknown_version=False) for rule in allow):
            return f"{self.path.name} packages.allow has no rule for {name} {version}"
        return None

    @hookimpl
    def isolator_choose_profile(self, plugin: str) -> str | None:
        for pattern, profile in self.plugin_profiles.items():
            if fnmatch.fnmatchcase(plugin, pattern):
                return profile
        return self.default

    def _verdict(self, key: str, lists: dict[str, list[str]],
                 matches: Callable[[str], bool], subject: str) -> str | None:
        for pattern in lists.get("deny", []):
            if matches(pattern):
                return f"{self.path.name} {key}.deny has {pattern!r}"
        allow = lists.get("allow")
        if allow is not None and not any(matches(pattern) for pattern in allow):
            return f"{self.path.name} {key}.allow has no pattern for {subject}"
        return None


class _PackageRule:
    """``NAME`` or ``NAME SPECIFIER`` (PEP 508, no extras or markers); NAME may hold ``*``/``?``."""

    _RE = re.compile(r"^\s*([A-Za-z0-9._*?-]+)\s*(.*?)\s*$")

    def __init__(self, text: str, name: str, specifier: SpecifierSet) -> None:
        self.text = text
        self.pattern = re.sub(r"[-_.]+", "-", name).lower()  # PEP 503, kept glob characters
        self.specifier = specifier

    @classmethod
    def parse(cls, where: str, key: str, text: str) -> _PackageRule:
        match = cls._RE.match(text)
        expected = "NAME or NAME with a version specifier, e.g. 'evil-pkg' or 'requests<2.20'"
        if match is None:
            raise PolicyError(where, f"{key} entry {text!r} is not {expected}")
        name, rest = match.groups()
        if "*" in name or "?" in name:
            try:
                return cls(text, name, SpecifierSet(rest))
            except InvalidSpecifier:
                raise PolicyError(where, f"{key} entry {text!r}: {rest!r} is not a version "
                                  f"specifier; expected {expected}") from None
        try:
            requirement = Requirement(text)
        except InvalidRequirement as exc:
            raise PolicyError(where, f"{key} entry {text!r} is not {expected} ({exc})") \
                from None
        if requirement.extras or requirement.marker or requirement.url:
            raise PolicyError(where, f"{key} entry {text!r} has extras, a marker or a URL; "
                              f"expected {expected}")
        return cls(text, requirement.name, requirement.specifier)

    def matches(self, name: str, version: str, *, unknown_version: bool) -> bool:
        """True when distribution *name* *version* falls under this rule; *unknown_version* is
        the answer for a version PEP 440 cannot read when the rule has a specifier."""
        if not fnmatch.fnmatchcase(canonicalize_name(name), self.pattern):
            return False
        if not self.specifier:
            return True
        try:
            return self.specifier.contains(Version(version), prereleases=True)
        except InvalidVersion:
            return unknown_version


# ---- the audit log -----------------------------------------------------------------------------


class AuditLog:
    """Appends each audit event to a JSON-lines file, one complete line per event.

    Each line is written by one ``os.write`` to an ``O_APPEND`` descriptor while holding an
    exclusive ``flock`` on the file, so lines from concurrent threads and processes neither
    interleave nor overwrite each other. The file is opened per event (a log rotated away is
    never written to afterwards) and created with mode 0600.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r})"

    @hookimpl
    def isolator_audit(self, event: dict[str, Any]) -> None:
        line = (json.dumps(event, separators=(",", ":"), default=_jsonable) + "\n").encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
                         | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise PolicyError(str(self.path), f"cannot open the audit log: "
                              f"{exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(line)
            # One write almost always; a short write (a signal, a nearly full disk) continues
            # under the same lock, so the line still lands whole and alone.
            while view:
                view = view[os.write(fd, view):]
        except OSError as exc:
            raise PolicyError(str(self.path), f"cannot write the audit log: "
                              f"{exc.strerror or exc}") from None
        finally:
            os.close(fd)  # releases the lock


# ---- what a source and its files are matched as ------------------------------------------------


def source_keys(source: PluginSource) -> tuple[str, ...]:
    """The strings a source pattern is matched against: ``pypi:NAME`` (PEP 503 name),
    ``git:URL`` (the URL git clones; ``github:OWNER/REPO`` too for such a source),
    ``dir:PATH``, ``wheel:PATH`` or ``sdist:PATH`` (absolute paths)."""
    if source.kind == "pypi":
        return (f"pypi:{source.canonical_name}",)
    if source.kind == "git":
        keys = [f"git:{source.url}"]
        if source.source.startswith("github:"):
            keys.append(source.source)
        return tuple(keys)
    prefix = {"directory": "dir", "wheel": "wheel", "sdist": "sdist"}[source.kind]
    return (f"{prefix}:{source.source}",)


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    return value


def source_indexes(source: PluginSource) -> list[str]:
    """The indexes an install of *source* may use: its index (PyPI unless it names one or says
    ``no_index``), then its find-links locations as URLs (``file://`` for a directory)."""
    found = [] if source.no_index else [source.index_url or PYPI_INDEX]
    found += [_link_url(link) for link in source.find_links]
    return list(dict.fromkeys(found))


def package_index(source: PluginSource, url: str) -> str | None:
    """The index (as :func:`source_indexes` names it) that file *url* of a resolved
    distribution came from; ``None`` for a local file outside every find-links directory (the
    wheel the source names, or one the store built)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = unquote(parts.path)
        for link in source.find_links:
            local = _link_path(link)
            if local is not None and (path + "/").startswith(local.rstrip("/") + "/"):
                return _link_url(link)
        return None
    remote = [link for link in source.find_links if _link_path(link) is None]
    for link in remote:
        if urlsplit(link).netloc == parts.netloc:
            return link
    if not source.no_index:
        return source.index_url or PYPI_INDEX
    return remote[0] if remote else None


def distribution_name(source: PluginSource, directory: Path | None = None) -> str:
    """The PEP 503 name of the distribution *source* installs, as far as known before a build:
    a ``pypi:`` name, a wheel's or an sdist's file name, else *directory*'s
    ``pyproject.toml`` ``[project] name`` (its directory name when that says none)."""
    if source.kind == "pypi" and source.canonical_name is not None:
        return source.canonical_name
    if source.kind == "wheel" and source.path is not None:
        return str(canonicalize_name(parse_wheel_filename(source.path.name)[0]))
    if source.kind == "sdist" and source.path is not None:
        return str(canonicalize_name(parse_sdist_filename(source.path.name)[0]))
    if directory is None:
        return source.source
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        with open(directory / "pyproject.toml", "rb") as handle:
            name = tomllib.load(handle).get("project", {}).get("name")
        if isinstance(name, str) and name:
            return str(canonicalize_name(name))
    return str(canonicalize_name(directory.name))


def check_distributions(policy: Policy, source: PluginSource, plugin: str,
                        distributions: Iterable[tuple[str, str, str]]) -> None:
    """Check every index the resolved *distributions* (name, version, file URL) come from, then
    every distribution; the first denial raises :class:`PolicyDeniedError`."""
    found = [(name, version, package_index(source, url)) for name, version, url in distributions]
    for url in dict.fromkeys(index for _, _, index in found if index is not None):
        policy.check_index(plugin, url)
    for name, version, index in found:
        policy.check_package(plugin, name, version, index)


# ---- helpers -----------------------------------------------------------------------------------


def _link_path(link: str) -> str | None:
    """The local directory of a find-links entry; ``None`` for a remote URL."""
    if not _SCHEME_RE.match(link):
        return link
    parts = urlsplit(link)
    return unquote(parts.path) if parts.scheme.lower() == "file" else None


def _link_url(link: str) -> str:
    return Path(link).as_uri() if not _SCHEME_RE.match(link) else link


def _label(plugin: object) -> str:
    name = getattr(plugin, "__name__", None)  # a module or a class
    if isinstance(name, str):
        return name
    kind = type(plugin)
    return f"{kind.__module__}.{kind.__qualname__}"


def _check_profile(what: str, profile: object) -> None:
    if profile not in PROFILES:
        raise PolicyError(what, f"{profile!r} is not a profile; expected one of "
                          f"{', '.join(PROFILES)}")


def _jsonable(value: object) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def _wrong_type(where: str, key: str, expected: str, value: object) -> PolicyError:
    return PolicyError(where, f"{key} must be {expected}, not {type(value).__name__} "
                       f"{json.dumps(value, default=str)[:60]}")


def _only_keys(where: str, prefix: str, data: dict[str, Any], known: tuple[str, ...]) -> None:
    for key in data:
        if key not in known:
            raise PolicyError(where, f"unknown key {prefix + key!r}; expected "
                              f"{' or '.join(repr(prefix + k) for k in known)}")


def _lists(where: str, section: str, data: dict[str, Any],
           parse: Callable[[str, str, str], Any]) -> dict[str, list[Any]]:
    """Section *section* of the file: ``{"allow": [...], "deny": [...]}``, each parsed."""
    value = data.get(section, {})
    if not isinstance(value, dict):
        raise _wrong_type(where, section, 'an object with "allow" and/or "deny" lists', value)
    _only_keys(where, f"{section}.", value, ("allow", "deny"))
    out: dict[str, list[Any]] = {}
    for key, items in value.items():
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            raise _wrong_type(where, f"{section}.{key}", "a list of non-empty strings", items)
        out[key] = [parse(where, f"{section}.{key}", item) for item in items]
    return out


def _source_pattern(where: str, key: str, pattern: str) -> str:
    if not pattern.startswith(_SOURCE_PREFIXES) and pattern != "*":
        raise PolicyError(where, f"{key} entry {pattern!r} must start with one of "
                          f"{', '.join(_SOURCE_PREFIXES)} (or be '*')")
    if pattern.startswith("pypi:"):  # matched against PEP 503 names
        return "pypi:" + re.sub(r"[-_.]+", "-", pattern[len("pypi:"):]).lower()
    return pattern


def _index_pattern(where: str, key: str, pattern: str) -> str:
    del where, key  # any string is a pattern; a path stands for its file:// URL
    if pattern.startswith("/"):
        pattern = "file://" + quote(pattern, safe="/*?[]")
    return pattern.rstrip("/")


def _profile_value(where: str, key: str, value: object) -> str:
    if value not in PROFILES:
        raise PolicyError(where, f"{key} is {json.dumps(value, default=str)[:60]}; expected "
                          f"one of {', '.join(PROFILES)}")
    return str(value)
