"""The OpenHands SDK adapter: a bridge's plugins joined to an SDK ``Agent``.

Needs ``openhands-sdk`` (the extra ``isolator[openhands]``, Python >= 3.12); importing this
package without it raises :class:`ImportError` saying so. Nothing else of isolator or
hostbridge imports it.

```python
from hostbridge.openhands import attach
with HostBridge(PluginStore(root)) as bridge:
    agent, hooks = attach(bridge, ["shout", "greetings"], Agent(llm=llm, tools=[]))
    conv = Conversation(agent=agent, hook_config=hooks, workspace="ws")
```
"""

from __future__ import annotations

from hostbridge.openhands._agent import PluginAgent, plugin_agent
from hostbridge.openhands._attach import DEFAULT_TIMEOUT, AttachError, attach
from hostbridge.openhands._names import sdk_tool_name
from hostbridge.openhands._sdk import (
    HostBridgeTool,
    HostBridgeToolAction,
    HostBridgeToolObservation,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "AttachError",
    "HostBridgeTool",
    "HostBridgeToolAction",
    "HostBridgeToolObservation",
    "PluginAgent",
    "attach",
    "plugin_agent",
    "sdk_tool_name",
]
