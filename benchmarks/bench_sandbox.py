"""What each sandbox profile costs: worker start and call latency, as ratios to ``off``.

    .venv/bin/python benchmarks/bench_sandbox.py [--starts 15] [--calls 2000] [--json]

One plugin (a ``noop`` tool) is installed into a store in a directory every user may enter,
for an interpreter uid 65534 can read when this runs as root. So under ``standard`` and
``strict`` the worker really runs as another uid, with every layer this machine has.

``start``: ``Worker.start()`` to the end of the handshake, a fresh worker each time
(launcher, namespaces, interpreter, Landlock and seccomp, the worker runtime).
``call``: one ``noop`` round trip on a warm worker (seccomp is consulted on every syscall).
``program``: ``run_program(["true"])`` to its exit (the same launcher, then ``execve``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests"), str(REPO_ROOT / "benchmarks")]

from _measure import Side, gc_paused, ms  # noqa: E402
from helpers_build import make_wheel  # noqa: E402
from reachable import worker_python  # noqa: E402

from hostbridge import PROFILES, Worker, run_program, sandbox_layers  # noqa: E402
from isolator import PluginStore  # noqa: E402

NOOP_PY = '''\
def noop() -> str:
    """Do nothing."""
    return "ok"
'''


def setup(root: Path) -> PluginStore:
    make_wheel(root / "links", "noop-plugin", "1.0.0", files={
        "noop_plugin/__init__.py": "", "noop_plugin/tools.py": NOOP_PY,
        "noop_plugin/commands/c.md": "c\n",
    }, entry_points={"openhands.plugins": {"noop": "noop_plugin"},
                     "openhands.tools": {"noop": "noop_plugin.tools:noop"}})
    store = PluginStore(root / "store", python=worker_python())
    store.install("pypi:noop-plugin", find_links=[root / "links"], no_index=True)
    return store


def measure(store: PluginStore, profile: str, starts: int, calls: int) -> dict[str, Side]:
    start, call, program = Side(f"{profile} start"), Side(f"{profile} call"), \
        Side(f"{profile} program")
    for _ in range(starts):
        worker = Worker(store, "noop", profile=profile)
        with gc_paused():
            began = time.perf_counter()
            worker.start()
            start.times.append(time.perf_counter() - began)
        worker.close()
    worker = Worker(store, "noop", profile=profile)
    worker.start()
    try:
        for _ in range(100):  # warm up
            worker.request("tools.call", "noop", {})
        with gc_paused():
            for _ in range(calls):
                began = time.perf_counter()
                worker.request("tools.call", "noop", {})
                call.times.append(time.perf_counter() - began)
    finally:
        worker.close()
    for _ in range(starts):
        with gc_paused():
            began = time.perf_counter()
            run_program(store, "noop", ["true"], profile=profile, timeout=60)
            program.times.append(time.perf_counter() - began)
    return {"start": start, "call": call, "program": program}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--starts", type=int, default=15)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-sandbox-", dir="/tmp"))
    root.chmod(0o755)
    try:
        store = setup(root)
        results = {profile: measure(store, profile, args.starts, args.calls)
                   for profile in PROFILES}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    layers = {name: layer["works"] for name, layer in sandbox_layers().items()}
    rows = []
    for profile in PROFILES:
        for what in ("start", "call", "program"):
            side, base = results[profile][what], results["off"][what]
            rows.append({"profile": profile, "what": what, "median_ms": ms(side.median),
                         "best_ms": ms(side.best),
                         "ratio_to_off": round(side.median / base.median, 2)})
    if args.json:
        print(json.dumps({"uid": os.geteuid(), "layers": layers, "rows": rows}, indent=1))
        return
    print(f"host uid {os.geteuid()}; layers: "
          + ", ".join(f"{k}={'yes' if v else 'no' if v is False else '-'}"
                      for k, v in layers.items()))
    print(f"{'profile':<10} {'what':<8} {'median ms':>10} {'best ms':>9} {'x off':>7}")
    for row in rows:
        print(f"{row['profile']:<10} {row['what']:<8} {row['median_ms']:>10.3f} "
              f"{row['best_ms']:>9.3f} {row['ratio_to_off']:>7.2f}")


if __name__ == "__main__":
    main()
