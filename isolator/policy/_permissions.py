"""What a plugin asks for (``permissions`` in plugin.json) and what the operator granted.

A plugin declares what its code needs beyond the sandbox::

    "permissions": {
      "network": ["api.example.com:443"],
      "environment": ["EXAMPLE_API_TOKEN"],
      "capabilities": ["llm.complete"]
    }

Nothing is granted by declaring it: the operator grants at install (``ohp install --grant``,
:meth:`PluginStore.configure`) or through policy, and the sandbox enforces only what was
granted. Both sides are a :class:`Permissions`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from isolator._errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

KINDS = ("network", "environment", "capabilities")
SANDBOX_PROFILES = ("off", "standard", "strict")
"""The sandbox profiles of plugin processes, weakest first (enforced by ``hostbridge``)."""
# Used with fullmatch only: ``$`` also matches before a final newline, so ``match`` with a
# pattern ending in ``$`` took ``"HOME\n"`` for a variable name.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CAPABILITY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_HOST = re.compile(r"\*|[A-Za-z0-9]([A-Za-z0-9.\-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")
_PORT = re.compile(r"[0-9]{1,5}")
_GRANT_KINDS = {"network": "network", "env": "environment", "environment": "environment",
                "capability": "capabilities", "capabilities": "capabilities"}


class PermissionsError(StoreError):
    """A ``permissions`` declaration or a grant that is not what is expected."""


@dataclass(frozen=True)
class Permissions:
    """Network destinations (``host:port``, ``host`` for any port, ``*`` for anywhere),
    environment variables, and host capabilities."""

    network: tuple[str, ...] = ()
    environment: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for kind in KINDS:
            object.__setattr__(self, kind, tuple(sorted(set(getattr(self, kind)))))

    def __bool__(self) -> bool:
        return bool(self.network or self.environment or self.capabilities)

    @property
    def ports(self) -> tuple[int, ...] | None:
        """The TCP ports the network destinations name; None when any port may be used."""
        ports = set()
        for destination in self.network:
            _host, _, port = destination.rpartition(":")
            if not _host or port == "*":
                return None
            ports.add(int(port))
        return tuple(sorted(ports))

    def to_dict(self) -> dict[str, list[str]]:
        return {kind: list(getattr(self, kind)) for kind in KINDS}

    @classmethod
    def from_dict(cls, data: object, where: str) -> Permissions:
        """Read a ``permissions`` mapping; *where* names it in errors."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise PermissionsError(where, f"expected an object with keys {', '.join(KINDS)}, "
                                   f"got {type(data).__name__}")
        unknown = sorted(set(data) - set(KINDS))
        if unknown:
            raise PermissionsError(f"{where}.{unknown[0]}", f"is not a permission kind "
                                   f"(expected one of {', '.join(KINDS)})")
        values: dict[str, tuple[str, ...]] = {}
        for kind in KINDS:
            items = data.get(kind, [])
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise PermissionsError(f"{where}.{kind}", "expected a list of strings")
            for item in items:
                _check(kind, item, f"{where}.{kind}")
            values[kind] = tuple(items)
        return cls(**values)

    @classmethod
    def from_manifest(cls, manifest_extra: Mapping[str, Any], where: str) -> Permissions:
        return cls.from_dict(manifest_extra.get("permissions"), f"{where}: permissions")

    def grant(self, specs: Iterable[str], plugin: str) -> Permissions:
        """What *specs* (``--grant`` values) grant of these declared permissions.

        ``all``; ``network``, ``environment``, ``capabilities`` (all declared of that kind);
        ``network:HOST:PORT``, ``env:NAME``, ``capability:NAME`` (one declared item). Granting
        what the plugin did not declare is an error: declarations are what users review."""
        granted: dict[str, set[str]] = {kind: set() for kind in KINDS}
        for spec in specs:
            if spec == "all":
                for each in KINDS:
                    granted[each].update(getattr(self, each))
                continue
            head, _, value = spec.partition(":")
            kind = _GRANT_KINDS.get(head)
            if kind is None:
                raise PermissionsError(f"--grant {spec!r}", "expected 'all', or KIND or "
                                       "KIND:VALUE with KIND one of network, env, capability")
            declared = getattr(self, kind)
            if not value:
                granted[kind].update(declared)
                continue
            if value not in declared:
                asked = ", ".join(declared) or "nothing"
                raise PermissionsError(f"--grant {spec!r}", f"plugin {plugin!r} does not ask "
                                       f"for it (its {kind}: {asked})")
            granted[kind].add(value)
        return Permissions(**{kind: tuple(values) for kind, values in granted.items()})

    def describe(self) -> list[str]:
        """One line per permission, for people."""
        lines = [f"network: {d}" for d in self.network]
        lines += [f"environment: {n}" for n in self.environment]
        lines += [f"capability: {c}" for c in self.capabilities]
        return lines


def _check(kind: str, item: str, where: str) -> None:
    if kind == "environment" and not _ENV_NAME.fullmatch(item):
        raise PermissionsError(f"{where} {item!r}", "expected an environment variable name")
    if kind == "capabilities" and not _CAPABILITY.fullmatch(item):
        raise PermissionsError(f"{where} {item!r}", "expected a capability name such as "
                               "'llm.complete'")
    if kind == "network":
        host, sep, port = item.rpartition(":")
        if not sep or (host.startswith("[") and not host.endswith("]")):
            host, port = item, "*"
        # ASCII digits: str.isdigit() takes "²", which int() then refuses.
        ok_port = port == "*" or (_PORT.fullmatch(port) is not None and 0 < int(port) < 65536)
        if not (_HOST.fullmatch(host) and ok_port):
            raise PermissionsError(f"{where} {item!r}", "expected HOST:PORT, HOST (any port) "
                                   "or '*'")


@dataclass(frozen=True)
class PluginSettings:
    """The operator's choices for one installed plugin, kept across upgrades."""

    sandbox: str | None = None
    """The plugin's default sandbox profile; None: the host's default."""
    grants: Permissions = Permissions()

    def to_dict(self) -> dict[str, Any]:
        return {"sandbox": self.sandbox, "grants": self.grants.to_dict()}

    @classmethod
    def from_dict(cls, data: object, where: str) -> PluginSettings:
        if not isinstance(data, dict):
            raise PermissionsError(where, "expected an object")
        sandbox = data.get("sandbox")
        if sandbox is not None and sandbox not in SANDBOX_PROFILES:
            raise PermissionsError(f"{where}: sandbox", f"expected one of "
                                   f"{', '.join(SANDBOX_PROFILES)}, got {sandbox!r}")
        return cls(sandbox, Permissions.from_dict(data.get("grants"), f"{where}: grants"))
