"""benchmarks/report.py and benchmarks/run: the report from hand-written results, and one real run.

The fixtures below have the shapes each benchmark's ``--json`` writes (trimmed to what the
report reads, plus a little it does not), with round numbers so the expected cells are easy
to check by hand.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "benchmarks" / "run"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _load_report() -> Any:
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "benchmarks" /
                                                  "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_report"] = module  # dataclasses look the module up while it executes
    spec.loader.exec_module(module)
    return module


report = _load_report()


def side(label: str, *times: float) -> dict[str, Any]:
    ordered = sorted(times)
    return {"label": label, "best_ms": min(times), "median_ms": ordered[len(ordered) // 2],
            "times_ms": list(times)}


def rate(label: str, p50: float, p99: float, best: int) -> dict[str, Any]:
    return {"label": label, "p50_us": p50, "p99_us": p99, "best_per_s": best,
            "median_per_s": best - 100, "calls": 10000}


LOADER = {
    "benchmark": "loader", "corpus_dirs": 141, "repeat": 5, "python": "3.13.0",
    "sides": {
        "openhands-sdk": {"first_s": 0.7, "times_s": [0.45, 0.5, 0.6, 0.48, 0.47],
                          "failures": [], "best_s": 0.45, "median_s": 0.48, "import_s": 11.0,
                          "version": "1.58.0"},
        "isolator": {"first_s": 0.16, "times_s": [0.15, 0.16, 0.2, 0.16, 0.17], "failures": [],
                     "best_s": 0.15, "median_s": 0.16, "import_s": 0.08, "version": "0.1.0"},
    },
    "isolator_error": None, "ratio_best": 3.0, "ratio_median": 3.0, "target_ratio": 2.0,
}

DISTINFO = [
    {"label": "site", "sites": 1, "distributions": 49,
     "best_ms": {"isolator": 2.5, "importlib.metadata": 45.0},
     "median_ms": {"isolator": 2.6, "importlib.metadata": 46.0}, "ratio": 18.0},
    {"label": "plugins", "sites": 100, "distributions": 300,
     "best_ms": {"isolator": 20.0, "importlib.metadata": 30.0},
     "median_ms": {"isolator": 21.0, "importlib.metadata": 31.0}, "ratio": 1.5},
]

STORE = {
    "summary": [
        ["install / floor without bytecode", "1.57x", "<= 1.25x", False],
        ["install / floor with bytecode", "0.60x", "<= 1.25x", True],
        ["virtualenv + pip / install", "23.2x", ">= 10x", True],
        ['backend="virtualenv" / install', "39.1x", "none", None],
        ["pip --target / install", "5.6x", "none", None],
        ["disk per additional venv (plugins/)", "232 KiB", "<= 300 KiB", True],
        ["  whole store per additional plugin", "368 KiB", "none", None],
        ["list_installed, 100 plugins", "2.9 ms", "< 50 ms", True],
        ["importlib.metadata / list_installed", "7.86x", ">= 2x", True],
        ["  same, first call on a new PluginStore", "1.74x", ">= 2x", False],
        ["store.load(name)", "0.54 ms", "none", None],
        ["install into a fresh store / floor with bytecode", "1.34x", "<= 1x", False],
        ["pool: extra tenant / first install (time)", "0.16x", "<= 0.2x", True],
        ["pool:   same, vs a first install from a warm uv cache", "0.28x", "none", None],
        ["pool: disk per extra tenant, one plugin", "44 KiB", "<= 150 KiB", True],
        ["pool: environments for N tenants x 3 plugins", "3", "3", True],
        ["pool: disk per extra tenant, 3 plugins", "88 KiB", "<= 450 KiB", True],
        ["pool: 1,000 tenants x 3 plugins (extrapolated)", "87 MiB", "none", None],
        ["ohp --help / python -c pass", "2.70x", "<= 2x", False],
        ["ohp list / python -c pass", "1.90x", "<= 2x", True],
        ["ohp show / python -c pass", "6.58x", "none", None],
    ],
    "pool": {
        "time": {"first": side("first install (empty pool: builds the environment)", 243.062),
                 "warm": side("first install, warm uv cache (after clean)", 141.13),
                 "extra": side("an extra tenant, same plugin (pooled)", 41.473, 37.122, 39.297)},
        "tenants_x3": {"tenants": 3, "environments": 3, "env_kib": [324, 140, 212],
                       "pool_kib": 1600, "tenant_kib": 72, "refs_kib_per_tenant": 16.0,
                       "total_kib": 1816, "extrapolated_1000_kib": 89552},
        "pool_first_install_ms": 243.062,
    },
    "cli": {"pass": side("python -c pass", 24.627, 17.589, 16.533),
            "help": side("ohp --help", 45.738, 47.447, 51.872),
            "list": side("ohp list", 91.891, 33.4, 30.0),
            "show": side("ohp show salute", 104.6, 115.6, 120.0)},
    "install": {
        "store": side("isolator PluginStore.install (uv)", 156.3, 186.0, 190.0),
        "fresh": side("  same, a fresh store root each run", 348.4, 432.3, 440.0),
        "floor": side("floor: uv venv + uv pip install", 99.6, 139.6, 150.0),
        "floor_compile": side("floor + --compile-bytecode", 260.9, 302.6, 310.0),
        "store_phases_ms": {"prepare: source, interpreter, store lock": 1.0,
                            "resolve: uv pip compile (pylock.toml)": 32.5, "uv venv": 26.4,
                            "uv pip install: start, query new venv, link": 115.8,
                            "uv pip install: bytecode compile": 0.0,
                            "dist-info, content check, metadata, switch": 7.6},
        "floor_steps_ms": {"uv venv": 27.1,
                           "uv pip install: start, query new venv, link": 107.7,
                           "uv pip install: bytecode compile": 151.0},
    },
    "store_install_best": 0.1563,
    "virtualenv": {
        "virtualenv": side("virtualenv + pip install", 3621.8, 4157.2, 4200.0),
        "store_virtualenv": side('isolator, backend="virtualenv"', 6108.6, 6772.4, 6800.0),
        "target": side("pip install --target DIR", 881.5, 1030.1, 1100.0),
        "pip": "26.3",
    },
    "disk": {"plugins": 10, "per_additional_kib_allocated": {
        "plugins": 232.0, "cache": 120.0, "wheelhouse": 8.0, "other": 8.0, "total": 368.0},
        "unshared_in_last_generation": {}},
    "list": {
        "store_root": "/root/.cache/isolator-bench/store100-x",
        "store": side("store.list_installed(), 100 plugins", 2.9, 3.2, 3.3),
        "first": side("  first call on a new PluginStore (no parsed records)", 13.0, 14.0, 15.0),
        "importlib": side("importlib.metadata over the 100 site-packages", 22.5, 24.6, 25.0),
        "load_store": side("store.load(name), 5 names", 0.542, 0.575, 0.6),
        "load_bare": side("load_plugin(content_dir), same dirs", 0.434, 0.461, 0.5),
    },
}

ROUNDTRIP = {
    "plugins": 141, "passed": 141, "failed": 0, "workers": 2, "total_s": 163.0,
    "package_s": 126.0, "package_per_plugin_s": 1.79, "install_compare_s": 37.0,
    "install_median_ms": 250, "install_p95_ms": 298, "content_only_install_median_ms": 12,
    "failures": {},
    "install_ms": [240.0 + (i % 7) * 10 for i in range(141)],
    "content_only_install_ms": [10.0 + (i % 5) for i in range(141)],
}

MSGPACK_ROW = "python -I -S -B, import msgpack (runtime copy)"
BRIDGE = {
    "summary": [
        ["cold start / bare msgpack import", "2.34x", "<= 1.5x", False],
        ["  cold start, HostBridge (best)", "41.3 ms", "none", None],
        ["sequential ping p50 / raw echo", "1.93x", "<= 1.5x", False],
        ["  sequential ping p50", "217 us", "none", None],
        ["  raw echo p50", "112 us", "none", None],
        ["  tools.call noop p50 (HostBridge)", "298 us", "none", None],
        ["sequential acall p50 / raw echo", "1.80x", "<= 2x", True],
        ["acall 8 in flight rate / raw echo", "0.62", ">= 0.5", True],
        ["ping 8 deep rate / raw echo", "0.37", ">= 0.5", False],
        ["  ping 8 deep", "25229/s", "none", None],
        ["1 MiB echo, HostBridge, one way", "255 MiB/s", ">= 500 MiB/s", False],
        ["  raw echo, one way", "168 MiB/s", "none", None],
        ["idle worker VmRSS", "12.8 MiB", "<= 15 MiB", True],
        ["  bare msgpack import VmRSS", "9.5 MiB", "none", None],
    ],
    "setup": {"host_python": "3.11.7", "cpus": 2,
              "hello": {"python": "3.11.7", "msgpack": "1.2.4", "uid": 65534},
              "launcher": ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--", "/usr/bin/unshare"]},
    "start": {
        "bridge": side("HostBridge(store).call_tool(noop), fresh", 41.3, 63.2, 70.0),
        "worker": side("Worker.start() + tools.call noop", 41.1, 66.0, 70.0),
        "pass": side("python -I -S -c pass", 10.7, 16.3, 17.0),
        "msgpack": side(MSGPACK_ROW, 17.6, 28.2, 30.0),
        "msgpack_pyc": side("  same, the host venv's msgpack (has .pyc)", 19.9, 28.0, 29.0),
        "launcher": side("  python -I -S -c pass behind the worker's launcher", 16.2, 19.6,
                         20.0),
        "worker_steps_ms": {"host: store.lease (read the generation, flock)": 0.3},
    },
    "roundtrip": {
        "sequential": {
            "raw": rate("raw echo, recv(64 KiB): ping", 112.5, 285.5, 10737),
            "ping": rate("Worker.request('ping')", 217.5, 707.2, 4671),
            "noop": rate("HostBridge.call_tool(noop)", 298.4, 1987.6, 3466),
            "acall": rate("RemoteTool.acall(noop)", 202.5, 600.0, 4900),
        },
        "in_flight": {
            "raw": rate("raw echo, recv(64 KiB): ping, 8 deep", 113.6, 400.3, 67296),
            "ping": rate("Worker.submit('ping'), 8 deep", 366.2, 1950.5, 25229),
            "acall": rate("RemoteTool.acall(noop), 8 at once", 300.0, 900.0, 41723),
        },
        "recv_probe_us": {"recv_1mib": 33.2, "recv_64kib": 3.4, "recv_1mib_after_free": 3.5},
    },
    "payload": {
        "raw": {**rate("raw echo, recv(64 KiB): echo(1 MiB)", 7756.2, 22585.0, 168),
                "best_mib_s_one_way": 168.0},
        "bridge": {**rate("HostBridge.call_tool(echo, 1 MiB)", 4948.1, 17213.2, 255),
                   "best_mib_s_one_way": 255.0},
    },
    "memory": {
        "worker: start, tools.call noop, idle 0.5 s":
            {"VmRSS": 12.8, "RssAnon": 6.3, "RssFile": 6.5, "RssShmem": 0.0},
        MSGPACK_ROW: {"VmRSS": 9.5, "RssAnon": 3.4, "RssFile": 6.1, "RssShmem": 0.0},
    },
}

SANDBOX = {
    "uid": 0,
    "layers": {"pid_namespace": True, "seccomp": True, "landlock": False},
    "rows": [
        {"profile": p, "what": w, "median_ms": m, "best_ms": m * 0.9, "ratio_to_off": r}
        for p, w, m, r in (
            ("off", "start", 37.0, 1.0), ("off", "call", 0.24, 1.0),
            ("off", "program", 33.0, 1.0), ("standard", "start", 47.5, 1.28),
            ("standard", "call", 0.25, 1.04), ("standard", "program", 52.0, 1.58),
            ("strict", "start", 45.0, 1.22), ("strict", "call", 0.25, 1.04),
            ("strict", "program", 46.0, 1.39))
    ],
}



def load_round(profile: str, round_: int, pss: float, ratio: float, *,
               rate: tuple[int, float, float], lost: int = 0) -> dict[str, Any]:
    per_s, p50, p99 = rate
    return {"profile": profile, "start_all_s": 0.172, "pss_mib": pss, "processes": 10,
            "pss_ratio": ratio, "calls": 80, "seconds": 0.008, "per_s": per_s, "p50_us": p50,
            "p99_us": p99, "lost": lost, "lost_examples": ["TimeoutError: noop"] if lost else [],
            "round": round_, "bare_pss_mib": 20.1}


# bench_load --workers 5 --threads 4 --calls 20 --rounds 1 (a real run), plus a second round
LOAD = {
    "setup": {"workers": 5, "threads": 4, "calls": 20, "python": "/usr/bin/python3.11",
              "cpus": 2},
    "rounds": [load_round("off", 0, 35.3, 1.76, rate=(8084, 352.5, 1465.1)),
               load_round("standard", 0, 39.0, 1.94, rate=(9805, 246.8, 1805.7)),
               load_round("strict", 0, 39.0, 1.94, rate=(10356, 270.6, 1046.7)),
               load_round("strict", 1, 38.0, 1.89, rate=(9000, 280.0, 1100.0), lost=2)],
    "summary": [
        ["off: live workers' PSS / bare interpreters", "1.76x", "<= 1.2x", False],
        ["off: PSS scaled to 100 workers", "706 MiB", "< 700 MiB", False],
        ["off: calls/s (best round), p99", "8084/s, 1465 us", "none", None],
        ["off: lost calls", "0", "0", True],
        ["standard: live workers' PSS / bare interpreters", "1.94x", "<= 1.2x", False],
        ["standard: PSS scaled to 100 workers", "780 MiB", "< 700 MiB", False],
        ["standard: calls/s (best round), p99", "9805/s, 1806 us", "none", None],
        ["standard: lost calls", "0", "0", True],
        ["strict: live workers' PSS / bare interpreters", "1.89x", "<= 1.2x", False],
        ["strict: PSS scaled to 100 workers", "760 MiB", "< 700 MiB", False],
        ["strict: calls/s (best round), p99", "10356/s, 1047 us", "none", None],
        ["strict: lost calls", "2", "0", False],
    ],
}


def openhands_row(what: str, profile: str, median: float, floor: float) -> dict[str, Any]:
    return {"what": what, "profile": profile, "median_ms": median, "best_ms": median * 0.8,
            "floor_median_ms": floor, "ratio": round(median / floor, 2), "target_ms": 100.0,
            "met": median < 100.0}


# bench_openhands --runs 3 (a real run; the strict MCP server made slower, to miss the target)
OPENHANDS = {
    "runs": 3,
    "rows": [openhands_row("hook", "off", 20.848, 1.369),
             openhands_row("hook", "standard", 46.781, 1.369),
             openhands_row("hook", "strict", 40.89, 1.369),
             openhands_row("mcp", "off", 25.52, 6.434),
             openhands_row("mcp", "standard", 39.429, 6.434),
             openhands_row("mcp", "strict", 108.41, 6.434)],
    "sides": {"hook floor": side("sh -c true", 1.369), "mcp floor": side("python, direct", 6.434),
              "hook off": side("hook, off", 20.848)},
    "summary": {"met": False},
}

# bench_ray --repeat 2 --calls 50 --json (a real run)
RAY = {
    "results": {"local": {"first_start_ms": 165.57174599984137, "start_ms": 47.64083200007008,
                          "roundtrip_us": 72.71350023074774,
                          "roundtrip_mean_us": 81.54686009220313},
                "ray": {"first_start_ms": 1074.0024209990224, "start_ms": 59.92445250012679,
                        "roundtrip_us": 1314.0364999344456,
                        "roundtrip_mean_us": 1317.293920001248}},
    "ratios": {"first_start_ms": 6.486628588189506, "start_ms": 1.2578380768001416,
               "roundtrip_us": 18.071424092699502, "roundtrip_mean_us": 16.15382760920303},
    "repeat": 2, "calls": 50,
}

RESULTS = {"loader": LOADER, "distinfo": DISTINFO, "store": STORE, "roundtrip": ROUNDTRIP,
           "bridge": BRIDGE, "load": LOAD, "sandbox": SANDBOX, "openhands": OPENHANDS,
           "ray": RAY}

MACHINE = {
    "cpu_model": "AMD EPYC", "cpus": 2, "cpus_usable": 2, "virtual_machine": True,
    "memory_gib": 23.5, "os": "Debian GNU/Linux 12 (bookworm)",
    "kernel": "Linux 6.18.44 x86_64", "python": "CPython 3.11.7", "uv": "0.13.9",
    "git_commit": "471afaf0123456789abcdef0123456789abcdef0",
    "git_subject": "docs/design.md: the sandbox is done", "git_uncommitted_changes": True,
}


def entry(name: str, status: str = "ok", **extra: Any) -> dict[str, Any]:
    bench = report.BY_NAME[name]
    record = {"name": name, "status": status,
              "command": bench.command(".venv/bin/python", False, None)}
    if status != "skipped":
        record.update(exit=0, duration_s=83.0, load_average=1.5, stderr_tail="")
    record.update(extra)
    return record


def write_results(tmp: Path, entries: list[dict[str, Any]], *, quick: bool = False,
                  results: dict[str, Any] | None = None) -> Path:
    directory = tmp / "results"
    directory.mkdir()
    data = RESULTS if results is None else results
    for item in entries:
        if item["status"] == "ok":
            (directory / f"{item['name']}.json").write_text(json.dumps(data[item["name"]]))
    run = {"format": 1, "started": "2026-11-22 11:05:00", "quick": quick, "custom_args": {},
           "note": "other sessions ran tests on the same two cores", "machine": MACHINE,
           "load_average": {"start": 0.28, "end": 1.9}, "benchmarks": entries,
           "total_s": 412.0}
    (directory / "run.json").write_text(json.dumps(run))
    return directory


@pytest.fixture
def all_ok(tmp_path: Path) -> Path:
    return write_results(tmp_path, [entry(name) for name in RESULTS])


def render(results: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch | None = None,
           charts: bool = False) -> str:
    if not charts and monkeypatch is not None:
        monkeypatch.setattr(report, "have_matplotlib", lambda: False)
    rendered = report.render(results, tmp / "docs" / "benchmarks.md")
    text: str = rendered.text
    assert (tmp / "docs" / "benchmarks.md").read_text(encoding="utf-8") == text
    return text


def rows_of(text: str) -> dict[str, list[str]]:
    """Every table row, by its first cell: the remaining cells."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows[cells[0]] = cells[1:]
    return rows


def test_tables_put_each_figure_beside_its_alternative_with_ratio_and_verdict(
        all_ok: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = rows_of(render(all_ok, tmp_path, monkeypatch))
    assert rows["openhands-sdk / isolator, best of 5 passes over 141 dirs"] == [
        "150 ms", "openhands-sdk 1.58.0 Plugin.load: 450 ms", "3.00x", ">= 2x", "met"]
    assert rows["openhands-sdk / isolator, import (not counted)"][2] == "137.5x"
    # dist-info: the 2x target is not met on the plugin venvs, 50 ms is (100 venvs)
    assert rows["importlib.metadata / isolator, 100 plugin venvs, 300 distributions"] == [
        "20.0 ms", "importlib.metadata: 30.0 ms", "1.50x", ">= 2x", "**NOT met**"]
    assert rows["↳ isolator, 100 plugin venvs"] == ["20.0 ms", "", "", "< 50 ms", "met"]
    assert rows["importlib.metadata / isolator, this venv's site-packages, 49 distributions"][
        2:] == ["18.0x", "", ""]
    # store: the verdicts are the benchmark's own; the values compared come from its parts
    assert rows["install / floor without bytecode"] == [
        "156 ms", "floor: uv venv + uv pip install: 99.6 ms", "1.57x", "<= 1.25x",
        "**NOT met**"]
    assert rows["virtualenv + pip / install"] == [
        "156 ms", "virtualenv + pip install: 3.62 s", "23.2x", ">= 10x", "met"]
    assert rows["↳ same, first call on a new PluginStore"] == [
        "13.0 ms", "importlib.metadata over the 100 site-packages: 22.5 ms", "1.74x", ">= 2x",
        "**NOT met**"]
    assert rows["store.load(name)"] == [
        "0.54 ms", "load_plugin(content_dir), same dirs: 0.43 ms", "1.25x", "", ""]
    assert rows["list_installed, 100 plugins"] == ["2.9 ms", "", "", "< 50 ms", "met"]
    # bridge: ratio rows show both values; absolute figures get a ratio computed here
    assert rows["cold start / bare msgpack import"] == [
        "41.3 ms", f"{MSGPACK_ROW}: 17.6 ms", "2.34x", "<= 1.5x", "**NOT met**"]
    assert rows["ping 8 deep rate / raw echo"] == [
        "25229/s", "raw echo, recv(64 KiB): ping, 8 deep: 67296/s", "0.37", ">= 0.5",
        "**NOT met**"]
    assert rows["1 MiB echo, HostBridge, one way"] == [
        "255 MiB/s", "raw echo, recv(64 KiB): echo(1 MiB): 168 MiB/s", "1.52x",
        ">= 500 MiB/s", "**NOT met**"]
    assert rows["idle worker VmRSS"] == [
        "12.8 MiB", f"{MSGPACK_ROW}: 9.5 MiB", "1.35x", "<= 15 MiB", "met"]
    assert rows["↳ tools.call noop p50 (HostBridge)"][:3] == [
        "298 us", "raw echo, recv(64 KiB): ping: 112 us", "2.65x"]
    for shown_beside_another in ("↳ raw echo p50", "↳ ping 8 deep", "↳ raw echo, one way"):
        assert shown_beside_another not in rows
    # round trip and sandbox
    assert rows["plugins that load the same from their wheel as from their directory"] == [
        "141 of 141", "", "", "all", "met"]
    assert rows["install + load + compare + uninstall, per plugin, median"][:3] == [
        "250 ms", "content-only install of the same directory (a copy): 12.0 ms", "20.8x"]
    assert rows["worker start (to the handshake), standard, median"] == [
        "47.5 ms", "profile off: 37.0 ms", "1.28x", "", ""]
    assert rows['run_program(["true"]), strict, median'][2] == "1.39x"


def test_the_issue_19_rows_of_store_and_bridge(all_ok: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    rows = rows_of(render(all_ok, tmp_path, monkeypatch))
    assert rows["install into a fresh store / floor with bytecode"] == [
        "348 ms", "floor + --compile-bytecode: 261 ms", "1.34x", "<= 1x", "**NOT met**"]
    # the pool's time: the median extra tenant against the first install's best
    assert rows["pool: extra tenant / first install (time)"] == [
        "39.3 ms median", "first install (empty pool: builds the environment): 243 ms",
        "0.16x", "<= 0.2x", "met"]
    assert rows["↳ pool: same, vs a first install from a warm uv cache"][:3] == [
        "39.3 ms median", "first install, warm uv cache (after clean): 141 ms", "0.28x"]
    assert rows["pool: disk per extra tenant, one plugin"] == [
        "44 KiB", "", "", "<= 150 KiB", "met"]
    assert rows["pool: 1,000 tenants x 3 plugins (extrapolated)"] == [
        "87 MiB, from 3 tenants", "", "", "", ""]
    assert rows["ohp --help / python -c pass"] == [
        "47.4 ms median", "python -c pass: 17.6 ms median", "2.70x", "<= 2x", "**NOT met**"]
    assert rows["ohp show / python -c pass"][4] == ""
    text = render(all_ok, tmp_path / "again", monkeypatch)
    assert "The 1,000-tenant figure is extrapolated from these 3" in text
    assert rows["sequential acall p50 / raw echo"] == [
        "202 us", "raw echo, recv(64 KiB): ping: 112 us", "1.80x", "<= 2x", "met"]
    assert rows["acall 8 in flight rate / raw echo"] == [
        "41723/s", "raw echo, recv(64 KiB): ping, 8 deep: 67296/s", "0.62", ">= 0.5", "met"]


def test_load_openhands_and_ray_tables(all_ok: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    text = render(all_ok, tmp_path, monkeypatch)
    rows = rows_of(text)
    # load: the verdicts are bench_load's; the values compared come from its best round
    assert rows["standard: live workers' PSS / bare interpreters"] == [
        "39.0 MiB, 5 workers", "5 bare interpreters (import msgpack): 20.1 MiB", "1.94x",
        "<= 1.2x", "**NOT met**"]
    assert rows["strict: live workers' PSS / bare interpreters"][:3] == [
        "38.0 MiB, 5 workers", "5 bare interpreters (import msgpack): 20.1 MiB", "1.89x"]
    assert rows["off: PSS scaled to 100 workers"] == [
        "706 MiB, scaled from 5", "100 bare interpreters (scaled): 402 MiB", "1.76x",
        "< 700 MiB", "**NOT met**"]
    assert rows["standard: calls/s (best round), p99"] == [
        "9805/s, 1806 us (p50 247 us)", "", "", "", ""]
    assert rows["strict: lost calls"] == ["2 of 160", "", "", "0", "**NOT met**"]
    assert rows["off: start 5 workers from 4 threads (best round)"][0] == "172 ms"
    assert "* strict, round 1: 2 lost, e.g. `TimeoutError: noop`." in text
    assert "The 100-worker PSS is scaled from 5 workers." in text
    # openhands: each start against its unsandboxed floor, judged on 100 ms
    assert rows["hook command to its exit, standard, median"] == [
        "46.8 ms", "unsandboxed sh -c true: 1.37 ms", "34.2x", "< 100 ms", "met"]
    assert rows["stdio MCP server to its first line, strict, median"] == [
        "108 ms", "unsandboxed python, direct: 6.43 ms", "16.9x", "< 100 ms", "**NOT met**"]
    # ray: through Ray against local, no target
    assert rows["through Ray / local: worker start and first call, the node's venv cached, "
                "median"] == ["59.9 ms", "local worker: 47.6 ms", "1.26x", "", ""]
    assert rows["through Ray / local: call_tool round trip on a running worker, median"][
        :3] == ["1.31 ms", "local worker: 73 us", "18.1x"]
    assert rows["[Load: many live workers](#load-many-live-workers-bench_loadpy)"][3] == (
        "2 of 9; not met: off: live workers' PSS / bare interpreters; off: PSS scaled to 100 "
        "workers; standard: live workers' PSS / bare interpreters; standard: PSS scaled to 100 "
        "workers; strict: live workers' PSS / bare interpreters; strict: PSS scaled to 100 "
        "workers; strict: lost calls")
    # the docstring's first paragraph whole, though it takes three lines
    assert "cost to start through the sandbox launcher, as `hostbridge.openhands.attach` " \
        "hands them to the OpenHands SDK (#17, deliverable 3: \"well under 100 ms\")." in text


def glance_of(text: str) -> dict[str, list[str]]:
    """The rows of the targets-at-a-glance table, by their figure without its link."""
    part = text.split("## Targets of #17, #19 and #20 at a glance", 1)[1].split("\n## ", 1)[0]
    return {re.sub(r"\[(.*?)\]\(#[\w-]+\)", r"\1", key): cells
            for key, cells in rows_of(part).items()}


def test_targets_at_a_glance_judge_each_issue_target(all_ok: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    text = render(all_ok, tmp_path, monkeypatch)
    assert text.index("at a glance") < text.index("## Machine and run")
    glance = glance_of(text)
    assert len(glance) == len(report.GOALS) + 1  # and the head
    assert ("#17: [a plugin's hook through the launcher, to its exit (median)]"
            "(#openhands-hooks-and-mcp-servers-bench_openhandspy), slowest profile: standard"
            ) in text
    assert glance["#17: a plugin's hook through the launcher, to its exit (median), slowest "
                  "profile: standard"] == [
        "46.8 ms", "unsandboxed sh -c true: 1.37 ms", "34.2x", "< 100 ms", "met"]
    assert glance["#17: a plugin's stdio MCP server through the launcher, to its first line "
                  "(median), slowest profile: strict"][3:] == ["< 100 ms", "**NOT met**"]
    assert glance["#19: an extra tenant's install / the first install (time)"][2:] == [
        "0.16x", "<= 0.2x", "met"]
    assert glance["#19: disk per extra tenant, one plugin"] == [
        "44 KiB", "", "", "<= 150 KiB", "met"]
    assert glance["#19: disk, 1,000 tenants x 3 plugins (extrapolated, not measured)"] == [
        "87 MiB, from 3 tenants", "", "", "", ""]
    assert glance["#19: `ohp list` / `python -c pass`"][2:] == ["1.90x", "<= 2x", "met"]
    assert glance["#19: install into a fresh store / the uv floor that compiles bytecode"][
        2:] == ["1.34x", "<= 1.0x", "**NOT met**"]
    # the issue's 1.0x is judged here, not bench_bridge's own 1.5x
    assert glance["#19: worker cold start (standard), exec'd (the fallback) / bare "
                  "`import msgpack`"] == [
        "41.3 ms", f"{MSGPACK_ROW}: 17.6 ms", "2.34x", "<= 1.0x", "**NOT met**"]
    assert glance["#19: live workers' PSS / as many bare interpreters, worst profile: "
                  "standard"][2:] == ["1.94x", "<= 1.2x", "**NOT met**"]
    assert glance["#19: PSS of 100 live workers, worst profile: standard"][0] == (
        "780 MiB, scaled from 5")
    assert glance["#19: lost calls under load, worst profile: strict"] == [
        "2 of 160", "", "", "0", "**NOT met**"]
    assert glance["#19: calls/s and p99 under load (threads x calls over the workers), "
                  "profile: standard"][0] == "9805/s, 1806 us (p50 247 us)"
    assert glance["#19: sequential call p50 / raw echo (Worker ping)"][2:] == [
        "1.93x", "<= 2x", "met"]
    assert glance["#19: 8 calls in flight, rate / raw echo's (Worker ping)"][2:] == [
        "0.37", ">= 0.5", "**NOT met**"]
    assert glance["#19: 8 calls in flight, rate / raw echo's (acall)"][2:] == [
        "0.62", ">= 0.5", "met"]
    assert glance["#20: call round trip through Ray / local (median)"] == [
        "1.31 ms", "local worker: 73 us", "18.1x", "", ""]
    # a cold start bench_bridge's own 1.5x lets through misses the issue's 1.0x
    looser = copy.deepcopy(BRIDGE)
    looser["summary"][0] = ["cold start / bare msgpack import", "1.20x", "<= 1.5x", True]
    rows = report.bridge_rows(looser)
    assert rows[0].met is True
    [cold] = [row for row in report.glance_rows([report.Section(entry("bridge"), looser,
                                                                rows=tuple(rows))])
              if "cold start" in row.figure and "exec'd" in row.figure]
    assert (cold.ratio, cold.target, cold.met) == ("1.20x", "<= 1.0x", False)


def test_no_worker_process_found_is_no_memory_figure() -> None:
    """bench_load finds a worker's processes by its process group: a round that found none
    measured 0 MiB, which is no figure and meets no target."""
    lost = copy.deepcopy(LOAD)
    for item in lost["rounds"]:
        if item["profile"] == "off":
            item.update(pss_mib=0.0, processes=0, pss_ratio=0.0)
    for item in lost["summary"]:
        if item[0].startswith("off: ") and "PSS" in item[0]:
            item[1:] = ["0.00x" if "/" in item[0] else "0 MiB", item[2], True]
    rows = {row.figure: row for row in report.load_rows(lost)}
    for figure in ("off: live workers' PSS / bare interpreters", "off: PSS scaled to 100 workers"):
        assert rows[figure].ours == "not measured: no worker process found", figure
        assert (rows[figure].ratio, rows[figure].met) == ("", None)
    assert rows["standard: PSS scaled to 100 workers"].met is False
    glance = {row.figure.split("](")[0]: row for row in report.glance_rows(
        [report.Section(entry("load"), lost, rows=tuple(rows.values()))])}
    assert glance["#19: [PSS of 100 live workers"].ours == "780 MiB, scaled from 5"


def test_targets_at_a_glance_say_what_did_not_run(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ties = copy.deepcopy(LOAD)
    for item in ties["summary"]:
        if item[0].endswith("lost calls"):
            item[1:] = ["0", "0", True]
    results = write_results(tmp_path, [
        entry("ray", "skipped", reason="needs Ray: no venv with the ray extra"),
        entry("bridge", "failed", exit=1, reason="exit status 1, no JSON written"),
        entry("load"),
    ], results={**RESULTS, "load": ties})
    glance = glance_of(render(results, tmp_path, monkeypatch))
    assert glance["#20: call round trip through Ray / local (median)"] == [
        "skipped (ray)", "", "", "", ""]
    assert glance["#19: sequential call p50 / raw echo (Worker ping)"] == [
        "failed (bridge)", "", "", "<= 2x", ""]
    assert glance["#19: `ohp --help` / `python -c pass`"] == [
        "not run (store)", "", "", "<= 2x", ""]
    assert glance["#19: lost calls under load, worst profile: off, standard and strict"] == [
        "0 of 80", "", "", "0", "met"]
    # none of the issues' benchmarks ran: no table
    (tmp_path / "only").mkdir()
    only = write_results(tmp_path / "only", [entry("distinfo")])
    assert "at a glance" not in render(only, tmp_path / "only", monkeypatch)


@pytest.mark.parametrize(("value", "target", "met"), [
    ("0.16x", "<= 0.2x", True), ("0.2x", "<= 0.2x", True), ("0.21x", "<= 0.2x", False),
    ("1.02 s", "< 100 ms", False), ("99.9 ms", "< 100 ms", True), ("850 us", "< 1 ms", True),
    ("780 MiB, scaled from 5", "< 700 MiB", False), ("1.5 MiB", "<= 1600 KiB", True),
    ("0.37", ">= 0.5", False), ("0 of 800", "0", True), ("2 of 800", "0", False),
    ("44 KiB", "<= 150 ms", None), ("not measured", "<= 2x", None), ("2x", "", None),
])
def test_judge_reads_numbers_and_units(value: str, target: str, met: bool | None) -> None:
    assert report.judge(value, target) is met


def test_overview_counts_targets_and_names_those_not_met(
        all_ok: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = rows_of(render(all_ok, tmp_path, monkeypatch))
    assert rows["[Store](#store-bench_storepy)"] == [
        "ok", "1 min 23 s", "1.50",
        "10 of 14; not met: install / floor without bytecode; same, first call on a new "
        "PluginStore; install into a fresh store / floor with bytecode; ohp --help / python -c "
        "pass"]
    assert rows["[Content loader](#content-loader-bench_loaderpy)"][3] == "1 of 1"
    assert rows["[Sandbox profiles](#sandbox-profiles-bench_sandboxpy)"][3] == ""
    assert rows["[Bridge](#bridge-bench_bridgepy)"][3].startswith("3 of 7; not met: cold start")


def test_machine_section_and_run_kind(all_ok: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    text = render(all_ok, tmp_path, monkeypatch)
    rows = rows_of(text)
    assert rows["CPU"] == ["AMD EPYC, 2 CPUs, a virtual machine"]
    assert rows["memory"] == ["23.5 GiB"]
    assert rows["OS"] == ["Debian GNU/Linux 12 (bookworm), Linux 6.18.44 x86_64"]
    assert rows["Python"] == ["CPython 3.11.7"]
    assert rows["uv"] == ["0.13.9"]
    assert rows["date"] == ["2026-11-22 11:05:00 (UTC)"]
    assert rows["git commit"] == ["`471afaf01234` docs/design.md: the sandbox is done (plus "
                                  "uncommitted changes in the working tree)"]
    assert rows["run"][0].startswith("full: every benchmark's default repeat counts")
    assert rows["total time"] == ["6 min 52 s"]
    assert rows["load average (1 min)"] == ["0.28 at the start, 1.90 at the end"]
    assert rows["note"] == ["other sessions ran tests on the same two cores"]
    assert "Quick run" not in text
    # the exact command, and how to read it, from the docstring
    assert ".venv/bin/python benchmarks/bench_store.py --json $RESULTS/store.json" in text
    assert ".venv/bin/python benchmarks/bench_sandbox.py --json > $RESULTS/sandbox.json" in text
    assert "Everything runs in ONE warm process through the Python API" in text
    assert "    python benchmarks/bench_store.py" not in text  # usage lines are left out


def test_quick_run_and_custom_arguments_are_said(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    results = write_results(tmp_path, [entry("distinfo")], quick=True)
    run = json.loads((results / "run.json").read_text())
    run["custom_args"] = {"store": ["--repeat", "3"]}
    (results / "run.json").write_text(json.dumps(run))
    text = render(results, tmp_path, monkeypatch)
    assert "> **Quick run** (`--quick`)" in text
    assert rows_of(text)["run"][0].startswith("`--quick`: each benchmark's smallest")
    assert "reduced or changed arguments for store (`--repeat 3`)" in text
    assert "## Store" not in text  # only what ran is reported
    # in a quick run the 100-venv target is shown but not judged on 10 venvs
    quick = copy.deepcopy(DISTINFO)
    quick[1]["sites"] = 10
    assert report.distinfo_rows(quick)[-1].met is None


def test_failed_skipped_and_nonzero_exit_are_reported(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    differing = {**ROUNDTRIP, "passed": 140, "failed": 1,
                 "failures": {"acme/bad-plugin": ["skills differ: x.md missing"]}}
    results = write_results(tmp_path, [
        entry("loader", "skipped", reason="needs ../shared (the plugin corpus and the SDK "
                                          "oracle): /x/shared/oracle/setup.sh not found"),
        entry("bridge", "failed", exit=2, duration_s=3.1, load_average=None,
              reason="exit status 2, no JSON written",
              stderr_tail="Traceback ...\nbench_bridge: the worker did not start\n"),
        entry("roundtrip", exit=1, stderr_tail="DIFFERS acme/bad-plugin\n"),
        entry("sandbox"),
    ], results={**RESULTS, "roundtrip": differing})
    text = render(results, tmp_path, monkeypatch)
    rows = rows_of(text)
    assert rows["[Content loader](#content-loader-bench_loaderpy)"] == ["skipped", "", "", ""]
    assert rows["[Bridge](#bridge-bench_bridgepy)"] == ["failed", "3.1 s", "", ""]
    assert rows["[Corpus round trip](#corpus-round-trip-bench_roundtrippy)"][:2] == [
        "ok (exit 1)", "1 min 23 s"]
    assert ("**Skipped**: needs ../shared (the plugin corpus and the SDK oracle): "
            "/x/shared/oracle/setup.sh not found.") in text
    assert "**Failed**: exit status 2, no JSON written. Took 3.1 s, exit status 2." in text
    assert "```\nTraceback ...\nbench_bridge: the worker did not start\n```" in text
    assert rows["plugins that load the same from their wheel as from their directory"] == [
        "140 of 141", "", "", "all", "**NOT met**"]
    assert "* Differs: `acme/bad-plugin`: skills differ: x.md missing" in text
    assert "```\nDIFFERS acme/bad-plugin\n```" in text  # a non-zero exit shows its stderr
    assert "cold start / bare msgpack import" not in text


def test_unreadable_json_is_a_failure_not_a_crash(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    results = write_results(tmp_path, [entry("store"), entry("sandbox")],
                            results={**RESULTS, "sandbox": {"uid": 0}})
    (results / "store.json").write_text("{not json")
    text = render(results, tmp_path, monkeypatch)
    assert "**Failed**: its JSON could not be read" in text
    assert "**Failed**: the report could not read its JSON: KeyError: 'rows'" in text


def test_rendering_is_deterministic(all_ok: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    first = render(all_ok, tmp_path / "a", monkeypatch)
    assert render(all_ok, tmp_path / "b", monkeypatch) == first


def test_without_matplotlib_the_report_says_so(all_ok: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    text = render(all_ok, tmp_path, monkeypatch)
    assert "Charts are not drawn: matplotlib is not installed" in text
    assert "![" not in text
    assert not (tmp_path / "docs" / "img").exists()


def test_charts_are_png_files_embedded_in_the_report(all_ok: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    img = tmp_path / "docs" / "img"
    img.mkdir(parents=True)
    (img / "bench-gone.png").write_bytes(PNG_MAGIC)  # from an earlier render: removed
    text = render(all_ok, tmp_path, charts=True)
    assert sorted(p.name for p in img.iterdir()) == sorted(
        f"bench-{name}.png" for name in RESULTS)
    for name in RESULTS:
        data = (img / f"bench-{name}.png").read_bytes()
        assert data.startswith(PNG_MAGIC), name
        assert len(data) > 8000, (name, len(data))
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert width >= 500 and height >= 150, (name, width, height)
        assert f"](img/bench-{name}.png)" in text
    assert "Charts are not drawn" not in text


def test_how_to_read_comes_from_each_benchmark_docstring() -> None:
    for bench in report.BENCHMARKS:
        text = report.how_to_read(bench.path)
        assert len(text) > 150, bench.name
        assert "``" not in text and "\n    python" not in text, bench.name
        assert len(text) < 2500, (bench.name, len(text))


def test_describe_machine_describes_this_machine() -> None:
    machine = report.describe_machine()
    assert machine["cpus"] >= 1
    assert machine["cpu_model"]
    assert re.fullmatch(r"\w+ 3\.\d+\.\d+\S*", machine["python"])
    assert machine["kernel"].startswith("Linux ")
    assert machine["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", machine["git_commit"])


def test_run_from_renders_without_running(all_ok: Path, tmp_path: Path) -> None:
    out = tmp_path / "from" / "x.md"
    proc = subprocess.run([sys.executable, str(RUN), "--from", str(all_ok), "--out", str(out),
                           "--only", "store", "sandbox"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text(encoding="utf-8")
    assert "## Store (`bench_store.py`)" in text and "## Sandbox profiles" in text
    assert "## Bridge" not in text
    assert not list(all_ok.glob("*.stderr.txt"))  # nothing ran


def test_run_skips_the_corpus_benchmarks_without_shared(tmp_path: Path) -> None:
    env = {**os.environ, "ISOLATOR_SHARED": str(tmp_path / "no-shared")}
    env.pop("ISOLATOR_BENCH_REEXEC", None)
    out, results = tmp_path / "x.md", tmp_path / "results"
    proc = subprocess.run([str(RUN), "--only", "loader", "roundtrip", "--out", str(out),
                           "--results", str(results)], capture_output=True, text=True,
                          timeout=120, check=False, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("skipped: needs ../shared") == 2, proc.stdout
    run = json.loads((results / "run.json").read_text())
    assert [(e["name"], e["status"]) for e in run["benchmarks"]] == [
        ("loader", "skipped"), ("roundtrip", "skipped")]
    text = out.read_text(encoding="utf-8")
    assert text.count(f"**Skipped**: needs ../shared (the plugin corpus and the SDK oracle): "
                      f"{tmp_path / 'no-shared'}/oracle/setup.sh not found") == 2


def test_run_skips_ray_when_no_interpreter_has_it(tmp_path: Path) -> None:
    """The cached Ray venv (tests/ray_cluster.py) cannot be built offline from an empty uv
    cache: ray is reported skipped, with uv's reason, and the run goes on."""
    env = {k: v for k, v in os.environ.items() if k != "ISOLATOR_BENCH_REEXEC"}
    env.update(ISOLATOR_TEST_RAY_VENV="cached", ISOLATOR_TEST_CACHE=str(tmp_path / "cache"),
               UV_OFFLINE="1", UV_CACHE_DIR=str(tmp_path / "uv-cache"))
    out, results = tmp_path / "x.md", tmp_path / "results"
    proc = subprocess.run([str(RUN), "--only", "ray", "--out", str(out), "--results",
                           str(results)], capture_output=True, text=True, timeout=300,
                          check=False, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = json.loads((results / "run.json").read_text())
    [ray] = run["benchmarks"]
    assert (ray["name"], ray["status"]) == ("ray", "skipped")
    assert ray["reason"].startswith("needs Ray: no interpreter with Ray could be had")
    assert "installing isolator[ray] failed" in ray["reason"]
    assert "\n" not in ray["reason"]
    text = out.read_text(encoding="utf-8")
    assert "**Skipped**: needs Ray: " in text
    assert "| #20: [call round trip through Ray / local (median)](#ray-bench_raypy) | " \
        "skipped (ray) |" in text


@pytest.mark.slow
def test_real_quick_run_of_the_cheapest_benchmark(tmp_path: Path) -> None:
    """bench_distinfo --quick: 10 plugin venvs made by uv, 3 passes; a few seconds."""
    out, results = tmp_path / "x.md", tmp_path / "results"
    env = {k: v for k, v in os.environ.items() if k != "ISOLATOR_BENCH_REEXEC"}
    proc = subprocess.run([str(RUN), "--only", "distinfo", "--quick", "--out", str(out),
                           "--results", str(results)], capture_output=True, text=True,
                          timeout=300, check=False, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\[1/1\] distinfo +ok +\d+\.\d s", proc.stdout), proc.stdout
    run = json.loads((results / "run.json").read_text())
    assert [(e["name"], e["status"], e["exit"]) for e in run["benchmarks"]] == [
        ("distinfo", "ok", 0)]
    assert run["quick"] is True
    assert run["benchmarks"][0]["command"][1:] == [
        "benchmarks/bench_distinfo.py", "--repeat", "3", "--venvs", "10", "--json",
        "$RESULTS/distinfo.json"]
    figures = json.loads((results / "distinfo.json").read_text())
    assert [f["label"] for f in figures] == ["site", "plugins"]
    rows = rows_of(out.read_text(encoding="utf-8"))
    plugins = rows["importlib.metadata / isolator, 10 plugin venvs, 30 distributions"]
    assert plugins[1].startswith("importlib.metadata: ") and plugins[2].endswith("x")
    assert plugins[4] in ("met", "**NOT met**")
    assert rows["↳ isolator, 10 plugin venvs"][3:] == ["< 50 ms at 100 venvs", ""]
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "img" / "bench-distinfo.png").read_bytes().startswith(PNG_MAGIC)
