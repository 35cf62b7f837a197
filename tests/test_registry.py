"""Seed 000 in the host: components with a lifecycle in workers, and the capability registry."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest
from helpers_build import make_wheel

from hostbridge import (
    CapabilityNotFoundError,
    CapabilityRegistry,
    HostBridge,
    RegistryError,
    RequirementError,
)
from isolator import PluginStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

COMPONENTS_PY = '''\
import os

class KeyValue:
    capabilities = ["kv.get", "kv.put"]

    def initialize(self, context):
        self.data = dict(context.get("seed", {}))
        self.pid = os.getpid()

    def health_check(self):
        return bool(self.data is not None)

    def call(self, capability, **args):
        if capability == "kv.put":
            self.data[args["key"]] = args["value"]
            return None
        return self.data.get(args["key"])

    def cleanup(self):
        self.data = None


class Shadow:
    capabilities = ["kv.get"]

    async def initialize(self, context):
        pass

    def call(self, capability, **args):
        return "from shadow"


class NeedsSearch:
    capabilities = ["answers"]
    requires = ["search"]

    def initialize(self, context):
        raise AssertionError("must not be initialized")


class Sick:
    capabilities = ["sick"]

    def health_check(self):
        return False
'''


def test_registry_rules(caplog: pytest.LogCaptureFixture) -> None:
    registry = CapabilityRegistry()
    registry.register_component("kv", "plugin-a", ["kv.get", "kv.put"])
    registry.register_service("db", ["sql"])
    with pytest.raises(RegistryError, match="name is taken by a registered component"):
        registry.register_component("kv", "plugin-b")
    with pytest.raises(RegistryError, match="name is taken by a registered service"):
        registry.register_component("db", "plugin-b")
    with pytest.raises(RegistryError, match="taken"):
        registry.register_service("kv")
    # A capability has one provider: another plugin's component may not take it over...
    with pytest.raises(RegistryError, match=r"'kv\.get': is provided by 'kv'; 'shadow' may not"):
        registry.register_component("shadow", "plugin-b", ["kv.get"])
    assert registry.provider("kv.get") == "kv" and "shadow" not in registry.components
    # ...unless the operator chooses it.
    registry.overrides["kv.get"] = "shadow"
    with caplog.at_level(logging.WARNING, logger="hostbridge.registry"):
        registry.register_component("shadow", "plugin-b", ["kv.get"])
    assert "'kv.get' was provided by 'kv'" in caplog.text
    assert registry.provider("kv.get") == "shadow"
    assert registry.provider("kv.put") == "kv"
    with pytest.raises(CapabilityNotFoundError, match="'search': nothing registered"):
        registry.provider("search")
    with pytest.raises(RequirementError, match="component 'answers': requires 'search'"):
        registry.check_requirements("answers", ["sql", "search"])
    registry.check_requirements("ok", ["sql", "kv.put"])
    registry.unregister("shadow")
    with pytest.raises(CapabilityNotFoundError):
        registry.provider("kv.get")  # the earlier provider was replaced, not stacked


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[HostBridge]:
    links = tmp_path / "links"
    names = {"kv": "KeyValue", "shadow": "Shadow", "answers": "NeedsSearch", "sick": "Sick"}
    make_wheel(links, "component-plugin", "1.0.0", files={
        "component_plugin/__init__.py": "",
        "component_plugin/components.py": COMPONENTS_PY,
        "component_plugin/commands/c.md": "c\n",
    }, entry_points={
        "openhands.plugins": {"components": "component_plugin"},
        "openhands.components": {n: f"component_plugin.components:{c}"
                                 for n, c in names.items()},
    })
    store = PluginStore(tmp_path / "store")
    store.install("pypi:component-plugin", find_links=[links], no_index=True)
    with HostBridge(store) as b:
        yield b


def test_components_live_in_the_worker_with_their_lifecycle(bridge: HostBridge) -> None:
    assert bridge.enable_component("components", "kv", {"seed": {"a": 1}}) == ["kv.get",
                                                                              "kv.put"]
    assert bridge.use("kv.get", key="a") == 1
    bridge.use("kv.put", key="b", value=[1, 2])
    assert bridge.use("kv.get", key="b") == [1, 2]
    assert bridge.component_health("kv") is True
    # A component may not take over a capability another provides (it would see every
    # request meant for the other), and is not initialized...
    with pytest.raises(RegistryError, match=r"'kv\.get': is provided by 'kv'"):
        bridge.enable_component("components", "shadow")
    assert "shadow" not in bridge.registry.components
    assert bridge.use("kv.get", key="a") == 1
    # ...unless the operator chooses it.
    bridge.registry.overrides["kv.get"] = "shadow"
    bridge.enable_component("components", "shadow")  # async initialize; takes over kv.get
    assert bridge.use("kv.get", key="a") == "from shadow"
    assert bridge.use("kv.put", key="c", value=3) is None
    bridge.enable_component("components", "sick")
    assert bridge.component_health("sick") is False
    bridge.disable_component("shadow")
    with pytest.raises(CapabilityNotFoundError):
        bridge.use("kv.get", key="a")
    bridge.disable_component("kv")
    with pytest.raises(RegistryError, match="is not enabled"):
        bridge.component_health("kv")


def test_components_that_cannot_be_enabled(bridge: HostBridge) -> None:
    with pytest.raises(RequirementError, match="component 'answers': requires 'search'"):
        bridge.enable_component("components", "answers")
    assert "answers" not in bridge.registry.components
    bridge.enable_component("components", "kv")
    with pytest.raises(RegistryError, match="name is taken"):
        bridge.enable_component("components", "kv")
    with pytest.raises(RegistryError, match="has no such component"):
        bridge.enable_component("components", "nope")
    with pytest.raises(CapabilityNotFoundError, match="'search'"):
        bridge.use("search", q="x")
