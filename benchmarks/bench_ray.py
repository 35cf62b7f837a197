"""Ray: a worker's start and a call's round trip through Ray against a local worker, in one run.

Needs Ray in the running interpreter (the ``ray`` extra: ``.venv/bin/pip install -e '.[ray]'``).
It starts its own Ray cluster at 127.0.0.1 (one node, ``tests/ray_cluster.py``, stopped at the
end), installs the example plugin ``shout`` offline into a store in a temporary directory, and
then, for each of ``local`` (``HostBridge(store)``) and ``ray``
(``HostBridge(store, launcher=RayLauncher(address))``, one launcher for the whole run):

1. ``first start``: once, the first call of a new host: for Ray this includes starting the
   node agent and building the plugin's venv on the node from the shipped wheels (the local
   store's venv exists already: its row is a worker start).
2. ``start``: ``--repeat`` times, a new ``HostBridge`` and its first ``call_tool("shout",
   "shout")`` (lease, spawn, handshake, ``tools.list``, the call); for Ray the node's venv is
   built already (cached per node) and the agent runs. Closing is not timed.
3. ``roundtrip``: ``--calls`` sequential ``call_tool`` of the same tool on a running worker.

Prints medians and the ratio ray/local of each; ``--json`` prints one JSON object instead.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="worker starts per side")
    parser.add_argument("--calls", type=int, default=1000, help="round trips per side")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import ray_cluster
    import wheelhouse

    from hostbridge import HostBridge
    from hostbridge.ray import RayLauncher
    from isolator import PluginStore

    cluster = ray_cluster.RayCluster(Path(sys.executable), num_cpus=2)
    results: dict[str, dict[str, float]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
            store = PluginStore(Path(tmp) / "store")
            store.install("pypi:openhands-plugin-shout",
                          find_links=[wheelhouse.example_wheelhouse()], no_index=True)
            launcher = RayLauncher(cluster.address, node_root=str(Path(tmp) / "node"))
            for side in ("local", "ray"):
                chosen = launcher if side == "ray" else None

                def start(chosen: RayLauncher | None = chosen) -> tuple[float, HostBridge]:
                    began = time.perf_counter()
                    bridge = HostBridge(store, launcher=chosen, heartbeat=None)
                    bridge.call_tool("shout", "shout", {"text": "hi"})
                    return time.perf_counter() - began, bridge

                first, bridge = start()
                bridge.close()
                starts = []
                for _ in range(args.repeat):
                    took, bridge = start()
                    starts.append(took)
                    bridge.close()
                with HostBridge(store, launcher=chosen, heartbeat=None) as bridge:
                    bridge.call_tool("shout", "shout", {"text": "warm"})
                    trips = []
                    for _ in range(args.calls):
                        began = time.perf_counter()
                        bridge.call_tool("shout", "shout", {"text": "hi"})
                        trips.append(time.perf_counter() - began)
                results[side] = {"first_start_ms": first * 1e3,
                                 "start_ms": statistics.median(starts) * 1e3,
                                 "roundtrip_us": statistics.median(trips) * 1e6,
                                 "roundtrip_mean_us": statistics.fmean(trips) * 1e6}
            launcher.close()
    finally:
        cluster.stop()
    ratios = {key: results["ray"][key] / results["local"][key] for key in results["local"]}
    if args.json:
        print(json.dumps({"results": results, "ratios": ratios,
                          "repeat": args.repeat, "calls": args.calls}))
        return 0
    print(f"{'':<22}{'local':>12}{'ray':>12}{'ray/local':>12}")
    for key, label in (("first_start_ms", "first start (ms)"), ("start_ms", "start (ms)"),
                       ("roundtrip_us", "round trip (us)"),
                       ("roundtrip_mean_us", "round trip mean (us)")):
        print(f"{label:<22}{results['local'][key]:>12.1f}{results['ray'][key]:>12.1f}"
              f"{ratios[key]:>11.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
