"""Environment pool (#19): N tenant stores sharing one pool, disk and time per extra tenant.

Every tenant is a ``PluginStore(tenant_root, pool=POOL)`` in one warm process, installing from
the example wheelhouse (tests/wheelhouse.py) offline. Three plugins whose resolved sets differ:
``greetings``, ``salute`` (brings greetings and example-textkit 1) and ``whisper``
(example-textkit 2), so the pool holds three environments.

1. ``time``: tenant 0 installs ``salute`` into the empty pool (the first install: it builds the
   environment, its uv cache, wheelhouse and bytecode start empty, as a new pool's do); each
   other tenant then installs the same plugin (resolve, fetch and hash-check the wheels, check
   the pooled environment against its wheels' RECORDs, write the generation). Reported: the
   median and best extra-tenant install against the first install. Then every tenant uninstalls
   it, ``clean`` collects the environment (uv's cache stays) and one tenant installs it again:
   the first install from a warm uv cache, a second, stricter reference. Target: an extra
   tenant at most 0.2x the (cold) first install.
2. ``disk``: after each tenant's install, every file and directory under the tenant root and
   under the pool is counted once per inode (allocated, ``st_blocks``). Reported: the tenant
   root's size and the pool's growth per extra tenant (its reference files). Target: at most
   150 KiB per extra tenant with one pooled plugin.
3. ``tenants x 3``: every tenant installs all three plugins. Reported: the pool's shared part
   (the three environments, uv's cache, the wheelhouse, the bytecode), what each tenant adds
   (its metadata set and its reference files in the pool; target: at most 3 x 150 KiB), and
   1,000 tenants extrapolated as the shared part plus 1,000 times what a tenant adds (a linear
   extrapolation from N tenants, not a run of 1,000).

    python benchmarks/bench_pool.py [--tenants N] [--json FILE] [--strict]

Exit status 0; 1 with ``--strict`` when a target is not met.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

from _measure import Side, finish, ms, print_sides  # noqa: E402
from wheelhouse import example_wheelhouse  # noqa: E402

from isolator import PluginStore  # noqa: E402

PLUGINS = ("openhands-plugin-salute", "openhands-plugin-greetings", "openhands-plugin-whisper")
TIME_RATIO_MAX = 0.2
TENANT_KIB_MAX = 150.0
KIB = 1024


def disk(path: Path, seen: set[tuple[int, int]] | None = None) -> int:
    """Bytes allocated under *path*, each inode once (as du)."""
    seen = set() if seen is None else seen
    total = 0
    for current, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            try:
                info = os.lstat(os.path.join(current, name))
            except OSError:
                continue
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_blocks * 512
    return total


def install(store: PluginStore, wheels: Path, package: str) -> float:
    started = time.perf_counter()
    store.install(f"pypi:{package}", find_links=[wheels], no_index=True)
    return time.perf_counter() - started


def bench(tenants: int, results: dict[str, Any]) -> None:
    wheels = example_wheelhouse()
    with tempfile.TemporaryDirectory(prefix="bench-pool-") as scratch:
        base = Path(scratch)
        pool = base / "pool"
        stores = [PluginStore(base / f"tenant-{i:04d}", pool=pool) for i in range(tenants)]
        first = Side("first install (empty pool: builds the environment)")
        extra = Side("an extra tenant, same plugin (pooled)")
        first.times.append(install(stores[0], wheels, PLUGINS[0]))
        tenant_kib: list[float] = []
        pool_growth: list[float] = []
        pool_before = disk(pool)
        for store in stores[1:]:
            extra.times.append(install(store, wheels, PLUGINS[0]))
            tenant_kib.append(disk(store.root) / KIB)
            now = disk(pool)
            pool_growth.append((now - pool_before) / KIB)
            pool_before = now
        # The stricter reference: the environment built again from a warm uv cache.
        for store in stores:
            store.uninstall("salute")
        stores[0].clean()
        warm = Side("first install, warm uv cache (after clean)")
        warm.times.append(install(stores[0], wheels, PLUGINS[0]))
        for store in stores[1:]:
            install(store, wheels, PLUGINS[0])
        print_sides(f"1. time: {tenants} tenants install salute into one pool",
                    [first, warm, extra])
        ratio = statistics.median(extra.times) / first.best
        ratio_warm = statistics.median(extra.times) / warm.best
        results["summary"].append(("extra tenant / first install (time)", f"{ratio:.2f}x",
                                   f"<= {TIME_RATIO_MAX:g}x", ratio <= TIME_RATIO_MAX))
        results["summary"].append(("  same, vs a first install from a warm uv cache",
                                   f"{ratio_warm:.2f}x", "none", None))
        per_tenant = statistics.median(tenant_kib) + statistics.median(pool_growth)
        print(f"\n2. disk per extra tenant with salute: tenant root "
              f"{statistics.median(tenant_kib):.0f} KiB + pool growth "
              f"{statistics.median(pool_growth):.0f} KiB (median of {len(tenant_kib)})")
        results["summary"].append(("disk per extra tenant, one plugin", f"{per_tenant:.0f} KiB",
                                   f"<= {TENANT_KIB_MAX:g} KiB", per_tenant <= TENANT_KIB_MAX))
        results["time"] = {"first": first.to_dict(), "warm": warm.to_dict(),
                           "extra": extra.to_dict()}

        # 3. every tenant with three plugins.
        for store in stores:
            for package in PLUGINS[1:]:
                install(store, wheels, package)
        envs = sorted((pool / "envs").iterdir())
        seen: set[tuple[int, int]] = set()
        env_kib = [disk(env, seen) / KIB for env in envs]
        pool_kib = disk(pool) / KIB
        tenants_kib = [disk(store.root) / KIB for store in stores]
        total_kib = pool_kib + sum(tenants_kib)
        per_set = statistics.median(tenants_kib)
        refs_kib = disk(pool / "refs") / KIB / tenants
        thousand = pool_kib - disk(pool / "refs") / KIB + 1000 * (per_set + refs_kib)
        print(f"\n3. {tenants} tenants x 3 plugins: {len(envs)} environments "
              f"({', '.join(f'{k:.0f}' for k in env_kib)} KiB, files they share counted once), "
              f"pool {pool_kib / KIB:.1f} MiB (uv cache, wheelhouse, bytecode, references), "
              f"a tenant's metadata set {per_set:.0f} KiB + {refs_kib:.0f} KiB of references: "
              f"{total_kib / KIB:.1f} MiB in all; extrapolated to 1,000 tenants: "
              f"{thousand / KIB:.1f} MiB")
        results["summary"].append(("environments for N tenants x 3 plugins", str(len(envs)),
                                   "3", len(envs) == 3))
        fixed = pool_kib - disk(pool / "refs") / KIB
        results["summary"].append((f"disk, {tenants} tenants x 3: the pool's shared part",
                                   f"{fixed / KIB:.1f} MiB", "none", None))
        results["summary"].append(("  3 environments in it (files shared counted once)",
                                   f"{sum(env_kib):.0f} KiB", "none", None))
        results["summary"].append(("disk per extra tenant, 3 plugins",
                                   f"{per_set + refs_kib:.0f} KiB",
                                   f"<= {3 * TENANT_KIB_MAX:g} KiB",
                                   per_set + refs_kib <= 3 * TENANT_KIB_MAX))
        results["summary"].append(("1,000 tenants x 3 plugins (extrapolated)",
                                   f"{thousand / KIB:.0f} MiB", "none", None))
        results["tenants_x3"] = {"tenants": tenants, "environments": len(envs),
                                 "env_kib": [round(k) for k in env_kib],
                                 "pool_kib": round(pool_kib), "tenant_kib": round(per_set),
                                 "refs_kib_per_tenant": round(refs_kib, 1),
                                 "total_kib": round(total_kib),
                                 "extrapolated_1000_kib": round(thousand)}
        results["pool_first_install_ms"] = ms(first.best)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=50, help="tenant stores (50)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the result here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is not met")
    args = parser.parse_args(argv)
    if args.tenants < 2:
        parser.error("--tenants at least 2")
    results: dict[str, Any] = {"summary": []}
    print(f"pool benchmark: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"{args.tenants} tenants")
    bench(args.tenants, results)
    return finish(results, args.json, args.strict)


if __name__ == "__main__":
    sys.exit(main())
