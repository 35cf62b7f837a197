"""hostbridge.ray: workers on a Ray cluster, with the same contract as local ones.

``HostBridge(store, launcher=RayLauncher("HOST:PORT"))`` (extra ``isolator[ray]``) and
``ohp tools|call|agent|doctor --ray HOST:PORT``. Nothing of Ray is imported until this package
is (``hostbridge`` never imports it).

**The seam.** A :class:`~hostbridge.Worker` gets its process from a *launcher*
(``hostbridge.supervision._process``)::

    launcher.start(store, name, installed, profile=, grants=, env_allow=, limits=)
        -> Launched(sock, process, sandbox, launch)

``sock`` is the host's end of a stream socket on which the worker speaks MessagePack-RPC;
``process`` is a :class:`subprocess.Popen` or an object with the same ``pid``, ``stdout``,
``stderr``, ``poll()``, ``wait(timeout)`` and a ``kill()`` of its whole tree; ``sandbox`` the
layers applied to it. ``LocalLauncher`` (the default) spawns the sandboxed process here.
:class:`RayLauncher` places it on a node: a node agent (an actor in the host's environment,
:mod:`hostbridge.ray._agent`) builds the plugin's venv there from the store's lock entry and
the wheels the host ships (hash-verified, cached per node), starts the worker with the same
``LocalLauncher``, and relays its bytes; the host gets a local socketpair whose far end relay
threads pump (:class:`RemoteProcess`). Everything above the socket (the protocol, deadlines,
heartbeats, capabilities served by the host, crash errors, the restart budget) is the local
worker's code, unchanged. Plugin venvs never contain Ray.
"""

from __future__ import annotations

from hostbridge.ray._agent import NodeAgent
from hostbridge.ray._launcher import RayLauncher, RemoteProcess

__all__ = ["NodeAgent", "RayLauncher", "RemoteProcess"]
