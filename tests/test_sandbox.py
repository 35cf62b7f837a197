"""Sandbox profiles (#7): each layer in force, plugin programs, permissions and grants."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from helpers_build import make_wheel
from reachable import remove, worker_python, world_dir

import hostbridge.launch._sandbox as sandbox_module
from hostbridge import (
    PROFILE_LIMITS,
    HostBridge,
    WorkerStartError,
    launcher_info,
    run_program,
    sandbox_layers,
)
from hostbridge.launch._command import program_command
from hostbridge.launch._programs import EXEC_BOOT
from isolator import PluginStore
from isolator.policy._permissions import Permissions, PermissionsError
from isolator.sandbox._launcher import UNPRIVILEGED_UID

if TYPE_CHECKING:
    from collections.abc import Iterator

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
    monkeypatch.setattr(sandbox_module, "launcher_info", lambda: missing)
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
    out = subprocess.run([sys.executable, "-m", "hostbridge.cli", "doctor", "--json",
                          "--root", str(tmp_path / "r")], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    reported: dict[str, Any] = json.loads(out)["sandbox_layers"]
    assert reported["net_namespace"]["works"] == launcher_info()["net_namespace"]
    assert reported["landlock"]["works"] is bool(launcher_info()["landlock"])
    assert reported["seccomp"]["works"] is launcher_info()["seccomp"]
    assert reported["host_proc_hidden"]["works"] is launcher_info()["host_proc_hidden"]


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


def write(path: str) -> str:
    """Create (or append to) a file."""
    try:
        with open(path, "a") as handle:
            handle.write("x")
        return "written"
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
def fs_store(tmp_path: Path) -> Iterator[PluginStore]:
    links = tmp_path / "links"
    make_wheel(links, "fs-plugin", "1.0.0", files={
        "fs_plugin/__init__.py": "", "fs_plugin/tools.py": FS_PY,
        # Runs when the worker puts site-packages on its path: it must already be confined.
        "fs_plugin_probe.pth": "import os, sys; exec('try:\\n sys.pth_saw_home = bool("
                               "os.listdir(os.path.expanduser(\"~\")))\\nexcept OSError:"
                               "\\n sys.pth_saw_home = False')\n",
        "fs_plugin/commands/c.md": "c\n",
    }, entry_points={"openhands.plugins": {"fs": "fs_plugin"},
                     "openhands.tools": {n: f"fs_plugin.tools:{n}" for n in
                                         ("write_venv", "read", "scratch", "pth", "write")}})
    # Where uid 65534 can reach it: workers run as that uid when the tests run as root.
    root = world_dir()
    store = PluginStore(root / "store", python=worker_python())
    store.install("pypi:fs-plugin", find_links=[links], no_index=True)
    yield store
    remove(root)


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
    # Standard: the store read-only (every venv, uv's cache); writes only to a TMPDIR of its
    # own in the store, even where file modes allow them (no place shared with other
    # plugins); the rest of the filesystem readable as file modes say.
    outside = fs_store.root.parent / "outside"
    outside.mkdir()
    outside.chmod(0o777)  # the worker may be uid 65534
    secret.chmod(0o644)
    tmp_path.chmod(0o755)
    with HostBridge(fs_store, profile="standard") as bridge:
        worker = bridge.worker("fs")
        assert worker.sandbox["store_read_only"] is True
        assert worker.sandbox["no_shared_writes"] is True
        assert bridge.call_tool("fs", "write_venv", {}).content.startswith("refused")
        assert bridge.call_tool("fs", "write", {"path": str(outside / "f")}).content \
            .startswith("refused")
        assert bridge.call_tool("fs", "scratch", {}).content == "kept"
        assert worker.scratch is not None and worker.scratch.parent == fs_store.root / "scratch"
        assert "root:" in bridge.call_tool("fs", "read", {"path": "/etc/passwd"}).content
    assert not (outside / "f").exists()
    # Without the sandbox the same tools succeed: the refusals are the sandbox's doing.
    with HostBridge(fs_store, profile="off") as bridge:
        assert bridge.call_tool("fs", "read", {"path": str(secret)}).content == "s3cret"
        assert bridge.call_tool("fs", "write_venv", {}).content == "written"
        assert bridge.call_tool("fs", "pth", {}).content is True


# ---- seccomp, /proc, uid, limits: one worker, every layer ------------------------------

LAYERS_PY = '''\
import ctypes
import os
import resource
import socket


def probe(host_pid: int) -> dict:
    """What this worker can do that it must not."""
    seen = {"uid": os.getuid(), "host_pid_visible": os.path.exists(f"/proc/{host_pid}"),
            "nproc": resource.getrlimit(resource.RLIMIT_NPROC)[0],
            "fsize": resource.getrlimit(resource.RLIMIT_FSIZE)[0]}
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
        seen["inet_socket"] = "created"
    except OSError as exc:
        seen["inet_socket"] = exc.errno
    libc = ctypes.CDLL(None, use_errno=True)
    seen["unshare"] = libc.unshare(0x10000000) == 0 or ctypes.get_errno()
    seen["ptrace"] = libc.ptrace(16, 1, 0, 0) == 0 or ctypes.get_errno()  # PTRACE_ATTACH
    return seen
'''


@pytest.fixture
def layers_store(tmp_path: Path) -> Iterator[PluginStore]:
    make_wheel(tmp_path / "links", "layers-plugin", "1.0.0", files={
        "layers_plugin/__init__.py": "", "layers_plugin/tools.py": LAYERS_PY,
        "layers_plugin/commands/c.md": "c\n",
    }, entry_points={"openhands.plugins": {"layers": "layers_plugin"},
                     "openhands.tools": {"probe": "layers_plugin.tools:probe"}})
    root = world_dir()
    store = PluginStore(root / "store", python=worker_python())
    store.install("pypi:layers-plugin", find_links=[tmp_path / "links"], no_index=True)
    yield store
    remove(root)


@pytest.mark.skipif(not (launcher_info()["seccomp"] and launcher_info()["host_proc_hidden"]),
                    reason="seccomp or a PID namespace with its own /proc is missing here")
@pytest.mark.parametrize("profile", ["standard", "strict"])
def test_every_layer_is_in_force(layers_store: PluginStore, profile: str) -> None:
    import errno

    with HostBridge(layers_store, profile=profile) as bridge:
        seen = bridge.call_tool("layers", "probe", {"host_pid": os.getpid()}).content
        worker = bridge.worker("layers")
        assert seen["host_pid_visible"] is False
        assert seen["inet_socket"] == errno.EACCES
        assert seen["unshare"] == errno.EPERM and seen["ptrace"] == errno.EPERM
        assert seen["nproc"] == PROFILE_LIMITS[profile].processes
        assert seen["fsize"] == PROFILE_LIMITS[profile].file_size_bytes
        assert worker.sandbox["seccomp"] is True
        assert worker.sandbox["applied_in_worker"]["seccomp"] == "none"
        # chmod/chown refused under strict only (Landlock has no right for modes).
        assert worker.sandbox["applied_in_worker"]["mode_changes"] is (profile != "strict")
        if os.geteuid() == 0:  # as root: really another uid, as the host's /proc says
            assert worker.sandbox["unprivileged_uid"] is True
            status = Path(f"/proc/{worker.pid}/status").read_text()
            assert f"Uid:\t{UNPRIVILEGED_UID}\t" in status
    with HostBridge(layers_store, profile="off") as bridge:  # the probe can tell
        seen = bridge.call_tool("layers", "probe", {"host_pid": os.getpid()}).content
        assert seen["host_pid_visible"] is True and seen["inet_socket"] == "created"


def test_seccomp_program_refuses_by_argument() -> None:
    from isolator.sandbox.confine import seccomp

    for machine in ("x86_64", "aarch64"):
        for sockets in ("any", "unix", "none"):
            for mode_changes in (True, False):
                code = seccomp.program(sockets, machine, mode_changes=mode_changes)
                assert len(code) % 8 == 0 and len(code) // 8 < 4096
        # Refusing chmod and chown adds one test and one return per system call it names.
        assert len(seccomp.program("none", machine, mode_changes=False)) > \
            len(seccomp.program("none", machine))
    with pytest.raises(ValueError, match="sockets must be"):
        seccomp.install("some")


# ---- plugin programs: `ohp exec` and run_program ----------------------------------------

HOOK = "#!/bin/sh\necho \"secret=${HOOK_SECRET:-absent} uid=$(id -u)\"\ncat \"$1\" 2>&1\nexit 3\n"


@pytest.fixture
def content_store(tmp_path: Path) -> Iterator[PluginStore]:
    plugin = tmp_path / "hooky"
    (plugin / ".claude-plugin").mkdir(parents=True)
    (plugin / ".claude-plugin" / "plugin.json").write_text(json.dumps({
        "name": "hooky", "version": "1.0.0",
        "permissions": {"environment": ["HOOK_SECRET"], "capabilities": ["llm.complete"]}}))
    (plugin / "hooks").mkdir()
    (plugin / "hooks" / "check.sh").write_text(HOOK)
    (plugin / "hooks" / "check.sh").chmod(0o755)
    root = world_dir()
    store = PluginStore(root / "store")
    store.install(str(plugin))
    yield store
    remove(root)


def test_a_hook_command_runs_in_the_sandbox(content_store: PluginStore, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("host-only")
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    result = run_program(content_store, "hooky", ["./hooks/check.sh", str(secret_file)],
                         timeout=60)
    assert result.returncode == 3
    assert b"secret=absent" in result.stdout  # declared, not granted: not passed
    assert b"host-only" not in result.stdout
    assert result.profile == "standard" and result.layers["pid_namespace"] is True
    # Granted by the operator: passed through.
    asked = Permissions.from_manifest(content_store.load("hooky").manifest.extra, "hooky")
    content_store.configure("hooky", grants=asked.grant(["env:HOOK_SECRET"], "hooky"))
    result = run_program(content_store, "hooky", ["./hooks/check.sh", "/dev/null"], timeout=60)
    assert b"secret=s3cret" in result.stdout
    # The CLI, with the program's exit status and a deadline.
    cli = subprocess.run([sys.executable, "-m", "hostbridge.cli", "exec", "hooky", "--root",
                          str(content_store.root), "--", "sh", "-c", "pwd; exit 7"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert cli.returncode == 7, cli.stderr
    assert cli.stdout.strip() == str(content_store.get("hooky").content_dir)
    slow = subprocess.run([sys.executable, "-m", "hostbridge.cli", "exec", "hooky", "--root",
                           str(content_store.root), "--timeout", "0.5", "--", "sleep", "30"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert slow.returncode == 124 and "deadline" in slow.stderr


@needs_landlock
def test_strict_programs_write_only_their_scratch(content_store: PluginStore) -> None:
    root = content_store.root
    result = run_program(content_store, "hooky", ["sh", "-c", f"echo x > {root}/planted; "
                         f"echo y > $TMPDIR/ok && cat $TMPDIR/ok; ls {root}"],
                         profile="strict", timeout=60)
    assert not (root / "planted").exists()
    assert result.stdout.strip() == b"y"
    assert b"Permission denied" in result.stderr


def test_bad_exec_input_is_a_clear_error(content_store: PluginStore) -> None:
    def ohp(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hostbridge.cli", *args[:2], "--root",
                               str(content_store.root), *args[2:]], capture_output=True,
                              text=True, timeout=120, check=False)

    for args, expected, code in [
        (["exec", "hooky"], "expected a command after --", 1),
        (["exec", "nope", "--", "true"], "not installed", 1),
        (["exec", "hooky", "--", "no-such-program"], "command not found", 127),
        (["exec", "hooky", "--timeout", "0", "--", "true"], "positive number", 1),
    ]:
        done = ohp(*args)
        assert done.returncode == code and expected in done.stderr, (args, done)
    with pytest.raises(WorkerStartError, match="expected a command"):
        run_program(content_store, "hooky", [])


# ---- permissions and grants ------------------------------------------------------------


def test_grants_are_checked_against_what_the_plugin_asks(content_store: PluginStore) -> None:
    asked = Permissions.from_manifest(content_store.load("hooky").manifest.extra, "hooky")
    assert asked.grant(["all"], "hooky") == asked
    assert asked.grant(["capability"], "hooky").capabilities == ("llm.complete",)
    for spec, expected in [("network:example.com:443", "does not ask for it"),
                           ("env:HOME", "does not ask for it"),
                           ("disk:/", "expected 'all', or KIND")]:
        with pytest.raises(PermissionsError, match=expected):
            asked.grant([spec], "hooky")


@pytest.mark.parametrize(("declared", "expected"), [
    ("[]", "expected an object"),
    ('{"disk": []}', "is not a permission kind"),
    ('{"network": "x"}', "expected a list of strings"),
    ('{"network": ["a b:1"]}', "expected HOST:PORT"),
    ('{"network": ["example.com:99999"]}', "expected HOST:PORT"),
    ('{"environment": ["1BAD"]}', "environment variable name"),
    ('{"capabilities": ["a b"]}', "capability name"),
])
def test_bad_permissions_are_clear_errors(declared: str, expected: str) -> None:
    with pytest.raises(PermissionsError, match=expected):
        Permissions.from_manifest({"permissions": json.loads(declared)}, "plugin.json")


def test_cli_install_sandbox_and_grant(tmp_path: Path) -> None:
    plugin = tmp_path / "asker"
    (plugin / ".claude-plugin").mkdir(parents=True)
    (plugin / ".claude-plugin" / "plugin.json").write_text(json.dumps({
        "name": "asker", "permissions": {"network": ["api.example.com:443"],
                                         "environment": ["ASKER_TOKEN"]}}))
    (plugin / "commands").mkdir()
    (plugin / "commands" / "c.md").write_text("c\n")

    def ohp(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hostbridge.cli", *args, "--root",
                               str(tmp_path / "store")], capture_output=True, text=True,
                              timeout=120, check=False)

    done = ohp("install", str(plugin), "--sandbox", "strict", "--grant", "env")
    assert done.returncode == 0, done.stderr
    assert "network: api.example.com:443  (not granted)" in done.stdout
    assert "environment: ASKER_TOKEN  (granted)" in done.stdout
    store = PluginStore(tmp_path / "store")
    assert store.settings("asker").sandbox == "strict"
    assert store.settings("asker").grants.environment == ("ASKER_TOKEN",)
    # A grant it did not ask for: the plugin stays installed, its settings unchanged.
    bad = ohp("configure", "asker", "--grant", "capability:llm.complete")
    assert bad.returncode == 1 and "does not ask for it" in bad.stderr
    assert store.settings("asker").grants.environment == ("ASKER_TOKEN",)
    bad = ohp("install", str(plugin), "--sandbox", "paranoid")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    revoked = ohp("configure", "asker", "--revoke-all", "--sandbox", "standard", "--json")
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout) == {"sandbox": "standard", "grants": {
        "network": [], "environment": [], "capabilities": []}}
    assert ohp("uninstall", "asker").returncode == 0
    assert not (tmp_path / "store" / "settings" / "asker.json").exists()


# ---- program_command: a plugin program as a command line a framework runs ----------------


def test_program_command_runs_sandboxed_in_any_environment(
        content_store: PluginStore, monkeypatch: pytest.MonkeyPatch) -> None:

    asked = Permissions.from_manifest(content_store.load("hooky").manifest.extra, "hooky")
    content_store.configure("hooky", grants=asked.grant(["env:HOOK_SECRET"], "hooky"))
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    command = program_command(content_store, "hooky", ["sh", "-c", (
        'echo "root=$CLAUDE_PLUGIN_ROOT oh=$OH_PLUGIN_ROOT g=$GREETING s=$HOOK_SECRET '
        'uid=$(id -u) ld=${LD_PRELOAD:-none}"; grep Seccomp: /proc/self/status; pwd')],
        env={"GREETING": "hello"})
    content = str(content_store.get("hooky").content_dir)
    # neither the plugin's env nor a granted host variable is on the command line
    assert "hello" not in command.shell and "s3cret" not in command.shell
    env_file = json.loads(command.argv[command.argv.index(EXEC_BOOT) + 2])["env_file"]
    assert oct(Path(env_file).parent.stat().st_mode & 0o777) == "0o500"
    # run as a framework runs it: a shell, with an environment of its own
    done = subprocess.run(command.shell, shell=True, capture_output=True, text=True, timeout=60,
                          check=False, env={"PATH": "/usr/bin:/bin", "GREETING": "host",
                                            "PYTHONPATH": "/nonexistent", "LD_PRELOAD": ""})
    assert done.returncode == 0, done.stderr
    first, *rest = done.stdout.splitlines()
    uid = UNPRIVILEGED_UID if os.geteuid() == 0 else os.geteuid()
    assert first == f"root={content} oh={content} g=hello s=s3cret uid={uid} ld=none"
    if command.layers["seccomp"]:
        assert "Seccomp:\t2" in rest
    assert rest[-1] == content
    # the store's lease is held until cleanup, which removes the scratch and env file
    assert Path(env_file).exists()
    command.cleanup()
    command.cleanup()
    assert not Path(env_file).exists()
    after = subprocess.run(command.shell, shell=True, capture_output=True, timeout=60,
                           check=False, env={"PATH": "/usr/bin:/bin"})
    assert after.returncode != 0


def test_program_command_refuses_loader_variables(content_store: PluginStore) -> None:

    for name in ("LD_PRELOAD", "PYTHONPATH", "BASH_ENV", "CLAUDE_PLUGIN_ROOT"):
        with pytest.raises(WorkerStartError, match="changes what a program loads"):
            program_command(content_store, "hooky", ["true"], env={name: "x"})
    with pytest.raises(WorkerStartError, match="expected a command"):
        program_command(content_store, "hooky", [])
    # nothing is left behind by a refusal
    scratch = content_store.root / "scratch"
    assert not scratch.exists() or not any(scratch.iterdir())


@needs_landlock
def test_program_command_strict_reads_its_env_file(content_store: PluginStore) -> None:

    command = program_command(content_store, "hooky", ["sh", "-c", "echo g=$GREETING; "
                              f"ls {content_store.root} || true"], env={"GREETING": "hi"},
                              profile="strict")
    try:
        done = subprocess.run(command.shell, shell=True, capture_output=True, text=True,
                              timeout=60, check=False, env={})
    finally:
        command.cleanup()
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["g=hi"]
