"""What a plugin's hook and stdio MCP server cost to start through the sandbox launcher, as
``hostbridge.openhands.attach`` hands them to the OpenHands SDK (#17, deliverable 3: "well
under 100 ms").

    .venv/bin/python benchmarks/bench_openhands.py [--runs 15] [--json FILE]

One plugin is installed into a store in a directory every user may enter, for an interpreter
uid 65534 can read when this runs as root, so under ``standard`` and ``strict`` the program
really runs as another uid with every layer this machine has. Each command is made once by
``program_command`` (as ``attach`` does) and then run many times, as the SDK runs it:

``hook``: the hook command (``sh -c true`` through the launcher, with the SDK's
``OPENHANDS_*`` variables handed on) run by ``/bin/sh -c`` to its exit, against the floor
``sh -c true`` run the same way, unsandboxed.
``mcp``: a stdio server (the plugin venv's ``python`` printing one line, then reading stdin) to
its first line of output, against the same program started directly, unsandboxed.

Profiles are interleaved run by run (not in blocks), so drift on the machine hits all alike.
The target: each start under 100 ms (judged on the median).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests"), str(REPO_ROOT / "benchmarks")]

from _measure import Side, gc_paused, ms  # noqa: E402
from helpers_build import make_wheel  # noqa: E402
from reachable import worker_python  # noqa: E402

from hostbridge.launch._command import program_command  # noqa: E402
from isolator import PluginStore  # noqa: E402

PROFILES = ("off", "standard", "strict")
SDK_VARIABLES = ("OPENHANDS_PROJECT_DIR", "OPENHANDS_SESSION_ID", "OPENHANDS_EVENT_TYPE",
                 "OPENHANDS_TOOL_NAME")
SERVER = "import sys; print('ready', flush=True); sys.stdin.read()"
TARGET_MS = 100.0


def setup(root: Path) -> PluginStore:
    make_wheel(root / "links", "bench-hooks", "1.0.0", files={
        "bench_hooks/__init__.py": "", "bench_hooks/commands/c.md": "c\n",
    }, entry_points={"openhands.plugins": {"bench-hooks": "bench_hooks"}})
    store = PluginStore(root / "store", python=worker_python())
    store.install("pypi:bench-hooks", find_links=[root / "links"], no_index=True)
    return store


def run_hook(shell_command: str, env: dict[str, str]) -> float:
    with gc_paused():
        began = time.perf_counter()
        subprocess.run(shell_command, shell=True, env=env, check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        return time.perf_counter() - began


def first_line(argv: list[str], env: dict[str, str] | None = None) -> float:
    with gc_paused():
        began = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        elapsed = time.perf_counter() - began
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)
    if line.strip() != b"ready":
        raise RuntimeError(f"the server said {line!r}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-openhands-", dir="/tmp"))
    os.chmod(base, 0o755)
    store = setup(base)
    python = str(store.get("bench-hooks").venv / "bin" / "python")
    env = {"PATH": "/usr/bin:/bin", "OPENHANDS_PROJECT_DIR": str(base),
           "OPENHANDS_SESSION_ID": "s", "OPENHANDS_EVENT_TYPE": "PreToolUse",
           "OPENHANDS_TOOL_NAME": "terminal"}
    hooks = {profile: program_command(store, "bench-hooks", ["sh", "-c", "true"],
                                      profile=profile) for profile in PROFILES}
    servers = {profile: program_command(store, "bench-hooks", ["python", "-c", SERVER],
                                        profile=profile) for profile in PROFILES}
    sides = {"hook floor": Side("sh -c true"), "mcp floor": Side("python, direct")}
    for profile in PROFILES:
        sides[f"hook {profile}"] = Side(f"hook, {profile}")
        sides[f"mcp {profile}"] = Side(f"MCP server, {profile}")
    try:
        for _ in range(2):  # warm the page cache
            run_hook("true", env)
            for profile in PROFILES:
                run_hook(hooks[profile].shell_passing(SDK_VARIABLES), env)
                first_line(servers[profile].argv)
        for _ in range(args.runs):
            sides["hook floor"].times.append(run_hook("sh -c true", env))
            sides["mcp floor"].times.append(first_line([python, "-c", SERVER]))
            for profile in PROFILES:
                sides[f"hook {profile}"].times.append(
                    run_hook(hooks[profile].shell_passing(SDK_VARIABLES), env))
                sides[f"mcp {profile}"].times.append(first_line(servers[profile].argv))
    finally:
        for command in (*hooks.values(), *servers.values()):
            command.cleanup()
    rows = []
    for kind in ("hook", "mcp"):
        floor = sides[f"{kind} floor"]
        for profile in PROFILES:
            side = sides[f"{kind} {profile}"]
            rows.append({"what": kind, "profile": profile, "median_ms": ms(side.median),
                         "best_ms": ms(side.best), "floor_median_ms": ms(floor.median),
                         "ratio": round(side.median / floor.median, 2),
                         "target_ms": TARGET_MS, "met": ms(side.median) < TARGET_MS})
    print(f"{'start':<6} {'profile':<9} {'median':>9} {'best':>9} {'floor':>9} {'ratio':>6}")
    for row in rows:
        print(f"{row['what']:<6} {row['profile']:<9} {row['median_ms']:>7.1f}ms "
              f"{row['best_ms']:>7.1f}ms {row['floor_median_ms']:>7.1f}ms {row['ratio']:>6}")
    result = {"runs": args.runs, "rows": rows,
              "sides": {key: side.to_dict() for key, side in sides.items()},
              "summary": {"met": all(row["met"] for row in rows)}}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
