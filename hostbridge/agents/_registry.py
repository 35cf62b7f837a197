"""The capability registry of seed 000, in the host: who provides what.

Plugin *components* (the ``openhands.components`` entry point) run in their plugin's worker
with a lifecycle (initialize, health check, cleanup) and provide named capabilities that the
host, or another plugin, asks for by name. The rules are the seed's, but for one: a second
component or service under a taken name is an error; asking for an unknown capability is a
clear error; a component's declared requirements are checked before it is enabled, and an
unmet one names itself. Where the seed lets a later registration take a capability over (with
a warning), here a capability has one provider unless the operator chose another
(``overrides``): a plugin must not take over what another plugin provides, and so see every
request meant for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hostbridge._errors import WorkerError

if TYPE_CHECKING:
    from collections.abc import Iterable

log = logging.getLogger("hostbridge.registry")


class RegistryError(WorkerError):
    """A registration breaks the registry's rules, or a capability is unknown."""


class CapabilityNotFoundError(RegistryError, LookupError):
    """Nothing registered provides the capability asked for."""


class RequirementError(RegistryError):
    """A component requires a capability nothing provides."""


@dataclass
class CapabilityRegistry:
    """Components (each in a plugin) and host services, and the capabilities they provide."""

    components: dict[str, str] = field(default_factory=dict)
    """Component name -> the plugin it runs in."""
    services: set[str] = field(default_factory=set)
    """Host services (seed 000's ServiceManager names)."""
    providers: dict[str, str] = field(default_factory=dict)
    """Capability -> the component or service providing it."""
    overrides: dict[str, str] = field(default_factory=dict)
    """Capability -> the component or service the operator chose to provide it when another
    already does (``HostBridge(capability_providers=)``); without one a second provider is
    refused."""

    def register_service(self, name: str, capabilities: Iterable[str] = ()) -> None:
        self._claim(name, "service")
        self.check_providers(name, capabilities)
        self.services.add(name)
        self._provide(name, capabilities)

    def register_component(self, name: str, plugin: str,
                           capabilities: Iterable[str] = ()) -> None:
        self._claim(name, "component")
        self.check_providers(name, capabilities)
        self.components[name] = plugin
        self._provide(name, capabilities)

    def unregister(self, name: str) -> None:
        self.components.pop(name, None)
        self.services.discard(name)
        for capability, provider in list(self.providers.items()):
            if provider == name:
                del self.providers[capability]

    def check_requirements(self, component: str, requires: Iterable[str]) -> None:
        """Raise :class:`RequirementError` naming *component* and what it lacks."""
        missing = [capability for capability in requires if capability not in self.providers]
        if missing:
            raise RequirementError(f"component {component!r}", f"requires "
                                   f"{', '.join(repr(m) for m in missing)}, which nothing "
                                   "registered provides")

    def provider(self, capability: str) -> str:
        """The component or service that provides *capability*."""
        try:
            return self.providers[capability]
        except KeyError:
            known = ", ".join(sorted(self.providers)) or "none"
            raise CapabilityNotFoundError(f"capability {capability!r}", f"nothing registered "
                                          f"provides it (provided: {known})") from None

    def _claim(self, name: str, kind: str) -> None:
        if name in self.components or name in self.services:
            taken = "component" if name in self.components else "service"
            raise RegistryError(f"{kind} {name!r}", f"the name is taken by a registered "
                                f"{taken}")

    def check_providers(self, name: str, capabilities: Iterable[str]) -> None:
        """Raise :class:`RegistryError` when *name* would provide a capability that another
        component or service provides, unless the operator chose *name* for it."""
        for capability in capabilities:
            previous = self.providers.get(capability)
            if previous is None or previous == name:
                continue
            chosen = self.overrides.get(capability)
            if chosen != name:
                raise RegistryError(f"capability {capability!r}", f"is provided by "
                                    f"{previous!r}; {name!r} may not take it over unless the "
                                    f"operator chooses it (capability_providers={{"
                                    f"{capability!r}: {name!r}}})")

    def _provide(self, name: str, capabilities: Iterable[str]) -> None:
        capabilities = list(capabilities)
        self.check_providers(name, capabilities)
        for capability in capabilities:
            previous = self.providers.get(capability)
            if previous is not None and previous != name:
                log.warning("capability %r was provided by %r; %r provides it now, as the "
                            "operator chose", capability, previous, name)
            self.providers[capability] = name
