"""The network and the host's sockets.

attack                                          standard and strict
----------------------------------------------  ----------------------------------------------
TCP connect to the host's 127.0.0.1 listener,   network namespace (only a loopback that is down)
  UDP datagram to it, to a routable address       and seccomp (no AF_INET socket at all)
create AF_INET, AF_INET6, AF_NETLINK, AF_PACKET seccomp: EACCES
  sockets
connect to the host's abstract Unix socket      network namespace: ECONNREFUSED (and Landlock's
                                                  scope under strict)
connect to the host's Unix socket at a path     seccomp: no socket() at all (was a hole: below)

The host's listeners receive nothing: no connection is accepted, no datagram arrives.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import socket
from typing import TYPE_CHECKING

import pytest
from secsupport import Bystander, attack, attempt_failed, open_bridge

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from isolator import PluginStore

PROFILES = ["standard", "strict"]


class Listener:
    """TCP and UDP on one port of 127.0.0.1, and Unix sockets (a path and an abstract name)."""

    def __init__(self, directory: Path) -> None:
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.path = str(directory / "host.sock")
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(self.path)
        os.chmod(self.path, 0o777)  # as a host service's socket may be: any uid may connect
        self.abstract = f"isolator-sec-{secrets.token_hex(8)}"
        self.unix_abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix_abstract.bind("\0" + self.abstract)
        for server in (self.tcp, self.unix, self.unix_abstract):
            server.listen()
            # Checked after the attack: anything that got through is queued by then.
            server.settimeout(0.05)
        self.udp.settimeout(0.05)

    def received(self) -> list[str]:
        """What reached any of the sockets (nothing, if the sandbox holds)."""
        got = []
        for server in (self.tcp, self.unix, self.unix_abstract):
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                got.append(f"{server.family.name}: {conn.recv(64)!r}")
        with contextlib.suppress(TimeoutError):
            got.append(f"udp: {self.udp.recv(64)!r}")
        return got

    def close(self) -> None:
        for sock in (self.tcp, self.udp, self.unix, self.unix_abstract):
            sock.close()


@pytest.fixture
def listener(sec_tmp: Path) -> Iterator[Listener]:
    listening = Listener(sec_tmp)
    yield listening
    listening.close()


@pytest.mark.parametrize("profile", PROFILES)
def test_tcp_and_udp_to_the_host_fail(store: PluginStore, profile: str,
                                      listener: Listener) -> None:
    with open_bridge(store, profile) as bridge:
        bystander = Bystander.start(bridge)
        assert bridge.worker("attacks").sandbox["net_namespace"] is True
        for host in ("127.0.0.1", "192.0.2.1"):  # the host's loopback, and a routable address
            attempt_failed(attack(bridge, "tcp_connect", host=host, port=listener.port))
            attempt_failed(attack(bridge, "udp_send", host=host, port=listener.port))
        bystander.check()
    assert listener.received() == []


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize(("family", "kind"), [
    ("AF_INET", "SOCK_STREAM"), ("AF_INET", "SOCK_DGRAM"), ("AF_INET6", "SOCK_STREAM"),
    ("AF_NETLINK", "SOCK_RAW"), ("AF_PACKET", "SOCK_RAW"),
])
def test_no_network_socket_can_even_be_created(store: PluginStore, profile: str,
                                               family: str, kind: str) -> None:
    with open_bridge(store, profile) as bridge:
        outcome = attack(bridge, "new_socket", family=family, kind=kind)
        attempt_failed(outcome, errno.EACCES, errno.EPERM)
        assert attack(bridge, "ok", text="next") == "next"


@pytest.mark.parametrize("profile", PROFILES)
def test_the_hosts_abstract_unix_socket_is_unreachable(store: PluginStore, profile: str,
                                                       listener: Listener) -> None:
    with open_bridge(store, profile) as bridge:
        bystander = Bystander.start(bridge)
        outcome = attack(bridge, "unix_connect", path=listener.abstract, abstract=True)
        attempt_failed(outcome, errno.ECONNREFUSED, errno.EPERM, errno.EACCES)
        bystander.check()
    assert listener.received() == []


# Found by this suite: seccomp allowed AF_UNIX sockets, and neither the network namespace (it
# scopes only abstract names) nor Landlock (ABI <= 7) governs connect() to a socket at a path.
# Now seccomp refuses socket() of every family unless network is granted.
@pytest.mark.parametrize("profile", PROFILES)
def test_the_hosts_unix_socket_at_a_path_is_unreachable(store: PluginStore, profile: str,
                                                        listener: Listener) -> None:
    with open_bridge(store, profile) as bridge:
        bystander = Bystander.start(bridge)
        outcome = attack(bridge, "unix_connect", path=listener.path)
        bystander.check()
    got = listener.received()
    attempt_failed(outcome)
    assert got == []
