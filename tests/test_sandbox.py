"""Sandbox profiles (#7, first layers): no network under standard; Landlock under strict."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from helpers_build import make_wheel

import hostbridge._process as process_module
from hostbridge import HostBridge, WorkerStartError, launcher_info, sandbox_layers
from isolator import PluginStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

NET_PY = '''\
import socket


def tcp(port: int) -> str:
    """Connect to 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return "connected"
    except OSError as exc:
        return f"refused: {exc.__class__.__name__}"


def udp(port: int) -> str:
    """Send a datagram to 127.0.0.1:port and to a public address."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"x", ("127.0.0.1", port))
            s.sendto(b"x", ("192.0.2.1", 9))
            return "sent"
    except OSError as exc:
        return f"refused: {exc.__class__.__name__}"
'''

needs_net_ns = pytest.mark.skipif(not launcher_info()["net_namespace"],
                                  reason="network namespaces do not work on this machine")


@pytest.fixture
def store(tmp_path: Path) -> PluginStore:
    links = tmp_path / "links"
    make_wheel(links, "net-plugin", "1.0.0", files={
        "net_plugin/__init__.py": "", "net_plugin/tools.py": NET_PY,
        "net_plugin/commands/c.md": "c\n",
    }, entry_points={"openhands.plugins": {"net": "net_plugin"},
                     "openhands.tools": {"tcp": "net_plugin.tools:tcp",
                                         "udp": "net_plugin.tools:udp"}})
    store = PluginStore(tmp_path / "store")
    store.install("pypi:net-plugin", find_links=[links], no_index=True)
    return store


@pytest.fixture
def listener() -> Iterator[tuple[int, socket.socket]]:
    tcp = socket.create_server(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", tcp.getsockname()[1]))
    udp.settimeout(0.5)
    yield tcp.getsockname()[1], udp
    tcp.close()
    udp.close()


@needs_net_ns
def test_standard_profile_has_no_network(store: PluginStore,
                                         listener: tuple[int, socket.socket]) -> None:
    port, udp = listener
    with HostBridge(store) as bridge:  # standard is the default
        assert bridge.worker("net").net_namespace
        assert bridge.call_tool("net", "tcp", {"port": port}).content.startswith("refused")
        assert bridge.call_tool("net", "udp", {"port": port}).content.startswith("refused")
    with pytest.raises(TimeoutError):
        udp.recv(16)  # nothing arrived


def test_off_profile_reaches_the_network(store: PluginStore,
                                         listener: tuple[int, socket.socket]) -> None:
    # The same tools succeed without the sandbox: the refusals above are the sandbox's doing.
    port, _ = listener
    with HostBridge(store, profile="off") as bridge:
        assert not bridge.worker("net").net_namespace
        assert bridge.call_tool("net", "tcp", {"port": port}).content == "connected"


def test_strict_refuses_a_worker_whose_layer_is_missing(
    store: PluginStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No machine here lacks network namespaces on demand: the probe's answer is replaced.
    missing = dict(launcher_info(), net_namespace=False)
    monkeypatch.setattr(process_module, "launcher_info", lambda: missing)
    with HostBridge(store, profile="strict") as bridge, \
            pytest.raises(WorkerStartError, match="strict sandbox needs net_namespace"):
        bridge.worker("net")
    with HostBridge(store, profile="standard") as bridge:  # standard degrades and says so
        assert bridge.worker("net").net_namespace is False


def test_an_unknown_profile_is_refused(store: PluginStore) -> None:
    with HostBridge(store, profile="paranoid") as bridge, \
            pytest.raises(WorkerStartError, match="expected one of off, standard, strict"):
        bridge.worker("net")


def test_doctor_lists_every_layer(tmp_path: Path) -> None:
    layers = sandbox_layers()
    assert {"environment", "pid_namespace", "net_namespace", "rlimits", "landlock",
            "seccomp", "unprivileged_uid"} <= set(layers)
    out = subprocess.run([sys.executable, "-m", "hostbridge._cli", "doctor", "--json",
                          "--root", str(tmp_path / "r")], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    reported: dict[str, Any] = json.loads(out)["sandbox_layers"]
    assert reported["net_namespace"]["works"] == launcher_info()["net_namespace"]
    assert reported["landlock"]["works"] is bool(launcher_info()["landlock"])
    assert reported["seccomp"]["works"] is None  # not implemented, and it says so


FS_PY = '''\
import os
import sys


def write_venv() -> str:
    """Create a file in the plugin's own venv."""
    target = os.path.join(os.path.dirname(os.path.dirname(__file__)), "planted.py")
    try:
        with open(target, "w") as handle:
            handle.write("x = 1\\n")
        return "written"
    except OSError as exc:
        return f"refused: {exc.__class__.__name__}"


def read(path: str) -> str:
    """Read a file."""
    try:
        with open(path) as handle:
            return handle.read()
    except OSError as exc:
        return f"refused: {exc.__class__.__name__}"


def pth() -> object:
    """What the venv's .pth file saw of the home directory."""
    return getattr(sys, "pth_saw_home", None)


def scratch() -> str:
    """Write and read back a file in TMPDIR."""
    path = os.path.join(os.environ["TMPDIR"], "note.txt")
    with open(path, "w") as handle:
        handle.write("kept")
    with open(path) as handle:
        return handle.read()
'''

needs_landlock = pytest.mark.skipif(not launcher_info()["landlock"],
                                    reason="Landlock is not available in this kernel")


@pytest.fixture
def fs_store(tmp_path: Path) -> PluginStore:
    links = tmp_path / "links"
    make_wheel(links, "fs-plugin", "1.0.0", files={
        "fs_plugin/__init__.py": "", "fs_plugin/tools.py": FS_PY,
        # Runs when the worker puts site-packages on its path: it must already be confined.
        "fs_plugin_probe.pth": "import os, sys; exec('try:\\n sys.pth_saw_home = bool("
                               "os.listdir(os.path.expanduser(\"~\")))\\nexcept OSError:"
                               "\\n sys.pth_saw_home = False')\n",
        "fs_plugin/commands/c.md": "c\n",
    }, entry_points={"openhands.plugins": {"fs": "fs_plugin"},
                     "openhands.tools": {n: f"fs_plugin.tools:{n}"
                                         for n in ("write_venv", "read", "scratch", "pth")}})
    store = PluginStore(tmp_path / "store")
    store.install("pypi:fs-plugin", find_links=[links], no_index=True)
    return store


@needs_landlock
@needs_net_ns
def test_strict_profile_confines_the_filesystem(fs_store: PluginStore, tmp_path: Path) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("s3cret")
    with HostBridge(fs_store, profile="strict") as bridge:
        worker = bridge.worker("fs")
        assert worker.scratch is not None
        assert bridge.call_tool("fs", "write_venv", {}).content.startswith("refused")
        assert bridge.call_tool("fs", "read", {"path": str(secret)}).content.startswith(
            "refused")
        assert bridge.call_tool("fs", "read", {"path": "/etc/passwd"}).content.startswith(
            "refused")
        assert bridge.call_tool("fs", "scratch", {}).content == "kept"
        scratch = worker.scratch
        # A .pth file of the venv ran under Landlock too: it could not read the home dir.
        assert bridge.call_tool("fs", "pth", {}).content is False
    assert not scratch.exists()  # removed with the worker
    # Without the profile the same tools succeed: the refusals are Landlock's doing.
    with HostBridge(fs_store, profile="standard") as bridge:
        assert bridge.call_tool("fs", "read", {"path": str(secret)}).content == "s3cret"
        assert bridge.call_tool("fs", "write_venv", {}).content == "written"
        assert bridge.call_tool("fs", "pth", {}).content is True
