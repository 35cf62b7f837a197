"""docs/benchmarks.md from the JSON that ``benchmarks/run`` collects: tables, charts, the machine.

A results directory holds ``run.json`` (the machine, the run's options, and for every benchmark
its command, exit status, duration and stderr tail) and one ``<name>.json`` per benchmark that
ran, as that benchmark writes it with ``--json``. :func:`render` turns it into one Markdown
file and PNG charts beside it (``img/bench-<name>.png``, matplotlib's Agg backend, drawn only
when matplotlib is installed: the ``bench`` extra). The Markdown depends on nothing but the
results directory, so rendering the same directory twice gives the same text.

Every table has the same columns: the figure, isolator's value, the alternative or floor
measured in the same run, their ratio, the target and whether it is met. Store and bridge
judge their own targets (their JSON ``summary``); the report repeats their verdicts and adds
the values compared. The targets of the other benchmarks are read from their JSON or, for
bench_distinfo, from its docstring (``DISTINFO_*`` below).
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / "benchmarks"
RUN_FILE = "run.json"
RUN_FORMAT = 1
RESULTS_TOKEN = "$RESULTS"  # stands for the results directory in recorded commands
DISTINFO_RATIO_MIN = 2.0  # bench_distinfo's docstring: at least 2x faster than importlib
DISTINFO_MS_MAX = 50.0  # ... and under 50 ms for 100 plugin venvs
DISTINFO_VENVS = 100
PSS_RATIO_MAX = 1.2  # bench_load: live workers' PSS at most 1.2x the bare interpreters' (#19)
STDERR_TAIL = 3000  # characters of a failed benchmark's stderr kept in run.json
SHORT_READ = 900  # docstrings longer than this are cut to their first and "judged" paragraphs
OURS_COLOUR = "#1f77b4"
ALT_COLOUR = "#9a9a9a"
TARGET_COLOUR = "#d62728"


# ---- the benchmarks ------------------------------------------------------------------------


@dataclass(frozen=True)
class Benchmark:
    """One benchmark script and how ``benchmarks/run`` runs it."""

    name: str
    script: str
    title: str
    quick_args: tuple[str, ...]
    full_args: tuple[str, ...] = ()
    json_on_stdout: bool = False  # bench_sandbox: ``--json`` prints the JSON instead of a table
    needs_shared: bool = False  # the corpus and the SDK oracle (../shared)
    needs_ray: bool = False  # runs in tests/ray_cluster.py's interpreter (one that imports Ray)

    @property
    def path(self) -> Path:
        return BENCH_DIR / self.script

    def command(self, python: str, quick: bool, args: Sequence[str] | None = None) -> list[str]:
        """The command line, with :data:`RESULTS_TOKEN` where the results directory goes."""
        chosen = list(args) if args is not None else list(
            self.quick_args if quick else self.full_args)
        out = f"{RESULTS_TOKEN}/{self.name}.json"
        tail = ["--json", ">", out] if self.json_on_stdout else ["--json", out]
        return [python, f"benchmarks/{self.script}", *chosen, *tail]


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("loader", "bench_loader.py", "Content loader", ("--repeat", "1"),
              needs_shared=True),
    Benchmark("distinfo", "bench_distinfo.py", "dist-info reading",
              ("--repeat", "3", "--venvs", "10")),
    Benchmark("store", "bench_store.py", "Store",
              ("--repeat", "1", "--slow-repeat", "1", "--list-repeat", "3",
               "--disk-plugins", "2", "--list-plugins", "10", "--pool-tenants", "5",
               "--cli-repeat", "5")),
    Benchmark("roundtrip", "bench_roundtrip.py", "Corpus round trip", ("--limit", "4"),
              needs_shared=True),
    Benchmark("bridge", "bench_bridge.py", "Bridge",
              ("--repeat", "2", "--calls", "200", "--passes", "1", "--payloads", "5")),
    Benchmark("load", "bench_load.py", "Load: many live workers",
              ("--workers", "10", "--threads", "4", "--calls", "50", "--rounds", "1")),
    Benchmark("sandbox", "bench_sandbox.py", "Sandbox profiles",
              ("--starts", "2", "--calls", "100"), json_on_stdout=True),
    Benchmark("openhands", "bench_openhands.py", "OpenHands hooks and MCP servers",
              ("--runs", "5")),
    Benchmark("ray", "bench_ray.py", "Ray", ("--repeat", "3", "--calls", "200"),
              json_on_stdout=True, needs_ray=True),
    Benchmark("security", "bench_security.py", "Security fixes, before and after",
              ("--quick",)),
)
BY_NAME = {bench.name: bench for bench in BENCHMARKS}


# ---- formatting ----------------------------------------------------------------------------


def fmt_ms(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def fmt_us(value: float) -> str:
    return fmt_ms(value / 1000) if value >= 1000 else f"{value:.0f} us"


def fmt_ratio(value: float) -> str:
    return f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def fmt_seconds(value: float) -> str:
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min {seconds:02d} s"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "es" if word.endswith("s") else "s")


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def verdict(met: bool | None) -> str:
    return "" if met is None else ("met" if met else "**NOT met**")


# ---- rows ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One figure beside what it is compared with."""

    figure: str
    ours: str
    alternative: str = ""  # "what: value", measured in the same run
    ratio: str = ""
    target: str = ""
    met: bool | None = None


TABLE_HEAD = ("| figure | isolator | alternative, same run | ratio | target | |\n"
              "| --- | ---: | --- | ---: | --- | --- |")


def table(rows: Iterable[Row]) -> str:
    lines = [TABLE_HEAD]
    for row in rows:
        lines.append("| " + " | ".join(cell(text) for text in (
            row.figure, row.ours, row.alternative, row.ratio, row.target,
            verdict(row.met))) + " |")
    return "\n".join(lines)


def _side_ms(side: dict[str, Any] | None, key: str = "best_ms") -> str:
    return "" if side is None else fmt_ms(side[key])


def _versus(side: dict[str, Any] | None, value: str) -> str:
    return "" if side is None else f"{side['label'].strip()}: {value}"


def loader_rows(data: dict[str, Any]) -> list[Row]:
    sides = data["sides"]
    sdk, ours = sides["openhands-sdk"], sides.get("isolator")
    n = data["corpus_dirs"]
    against = f"openhands-sdk {sdk.get('version') or ''} Plugin.load".replace("  ", " ")
    if ours is None:
        return [Row(f"openhands-sdk / isolator, {n} corpus dirs",
                    f"not measured: {data.get('isolator_error')}",
                    f"{against}: {fmt_ms(sdk['best_s'] * 1e3)}",
                    target=f">= {data['target_ratio']:g}x", met=False)]
    return [
        Row(f"openhands-sdk / isolator, best of {plural(data['repeat'], 'pass')} over {n} "
            "dirs",
            fmt_ms(ours["best_s"] * 1e3), f"{against}: {fmt_ms(sdk['best_s'] * 1e3)}",
            fmt_ratio(data["ratio_best"]), f">= {data['target_ratio']:g}x",
            data["ratio_best"] >= data["target_ratio"]),
        Row("↳ same, median pass", fmt_ms(ours["median_s"] * 1e3),
            f"{against}: {fmt_ms(sdk['median_s'] * 1e3)}", fmt_ratio(data["ratio_median"])),
        Row("↳ per plugin dir, median pass", fmt_us(ours["median_s"] / n * 1e6),
            f"{against}: {fmt_us(sdk['median_s'] / n * 1e6)}"),
        Row("openhands-sdk / isolator, import (not counted)", fmt_ms(ours["import_s"] * 1e3),
            f"import openhands.sdk.plugin: {fmt_ms(sdk['import_s'] * 1e3)}",
            fmt_ratio(sdk["import_s"] / ours["import_s"])),
    ]


def loader_notes(data: dict[str, Any]) -> list[str]:
    notes = [f"Python {data['python']} (the oracle's interpreter), {data['corpus_dirs']} "
             f"corpus plugin directories."]
    for name, side in data["sides"].items():
        if side["failures"]:
            notes.append(f"{name} failed on {len(side['failures'])} dirs, e.g. "
                         f"`{side['failures'][0][:200]}`.")
    return notes


def distinfo_rows(data: list[dict[str, Any]]) -> list[Row]:
    rows = []
    for entry in data:
        plugins = entry["label"] == "plugins"
        what = (f"{entry['sites']} plugin venvs" if plugins
                else "this venv's site-packages") + f", {entry['distributions']} distributions"
        best = entry["best_ms"]
        rows.append(Row(
            f"importlib.metadata / isolator, {what}", fmt_ms(best["isolator"]),
            f"importlib.metadata: {fmt_ms(best['importlib.metadata'])}",
            fmt_ratio(entry["ratio"]), f">= {DISTINFO_RATIO_MIN:g}x" if plugins else "",
            entry["ratio"] >= DISTINFO_RATIO_MIN if plugins else None))
        if plugins:
            judged = entry["sites"] >= DISTINFO_VENVS
            rows.append(Row(
                f"↳ isolator, {entry['sites']} plugin venvs", fmt_ms(best["isolator"]),
                target=f"< {DISTINFO_MS_MAX:g} ms" + ("" if judged else
                                                      f" at {DISTINFO_VENVS} venvs"),
                met=best["isolator"] < DISTINFO_MS_MAX if judged else None))
    return rows


# Store and bridge: their own summary (figure, value, target, met), and for each figure what
# it compares: (part, key of isolator's side, key of the alternative); None drops a row
# whose values the table already shows beside another figure.
Context = tuple[str, str | None, str | None] | None
STORE_CONTEXT: dict[str, Context] = {
    "install / floor without bytecode": ("install", "store", "floor"),
    "install / floor with bytecode": ("install", "store", "floor_compile"),
    "install into a fresh store / floor with bytecode": ("install", "fresh", "floor_compile"),
    "virtualenv + pip / install": ("virtualenv", None, "virtualenv"),
    'backend="virtualenv" / install': ("virtualenv", None, "store_virtualenv"),
    "pip --target / install": ("virtualenv", None, "target"),
    "importlib.metadata / list_installed": ("list", "store", "importlib"),
    "same, first call on a new PluginStore": ("list", "first", "importlib"),
    "store.load(name)": ("list", "load_store", "load_bare"),
}


def _summary_key(figure: str) -> tuple[str, bool]:
    """A summary figure without its indentation, and whether it was indented (a detail of the
    figure above). A part's prefix stays in front: ``"pool:   same, ..."`` is ``"pool: same,
    ..."``, indented."""
    match = re.fullmatch(r"(\w+: )?( *)(.*)", figure, re.DOTALL)
    assert match is not None  # the pattern matches every string
    prefix, spaces, rest = match.groups()
    return (prefix or "") + rest.strip(), bool(spaces)


def _summary_rows(data: dict[str, Any], make: Callable[[str, str], tuple[str, str, str]]
                  | None = None, context: dict[str, Context] | None = None) -> list[Row]:
    rows = []
    for figure, value, target, met in data.get("summary", []):
        key, indented = _summary_key(figure)
        if context is not None and key in context and context[key] is None:
            continue
        ours, alternative, ratio = make(key, value) if make else (value, "", "")
        label = ("↳ " + key) if indented else key
        rows.append(Row(label, ours, alternative, ratio, "" if target == "none" else target,
                        met))
    return rows


def _is_ratio(value: str) -> bool:
    return re.fullmatch(r"[\d.]+x?", value) is not None


# The pool's time rows: the median extra tenant against the first install's best (bench_pool);
# the CLI's rows: a command's median against python -c pass's (bench_cli).
POOL_TIME = {"pool: extra tenant / first install (time)": "first",
             "pool: same, vs a first install from a warm uv cache": "warm"}
CLI_COMMANDS = {"ohp --help / python -c pass": "help", "ohp list / python -c pass": "list",
                "ohp show / python -c pass": "show"}


def _pool_cli_cells(data: dict[str, Any], key: str, value: str) -> tuple[str, str, str] | None:
    if key in POOL_TIME:
        times = data.get("pool", {}).get("time", {})
        extra, alt = times.get("extra"), times.get(POOL_TIME[key])
        if extra is None or alt is None:
            return None
        return (f"{fmt_ms(extra['median_ms'])} median", _versus(alt, fmt_ms(alt["best_ms"])),
                value)
    if key.startswith("pool: 1,000 tenants"):
        tenants = data.get("pool", {}).get("tenants_x3", {}).get("tenants")
        return (f"{value}, from {tenants} tenants" if tenants else value), "", ""
    if key in CLI_COMMANDS:
        cli = data.get("cli", {})
        ours, alt = cli.get(CLI_COMMANDS[key]), cli.get("pass")
        if ours is None or alt is None:
            return None
        return (f"{fmt_ms(ours['median_ms'])} median",
                _versus(alt, f"{fmt_ms(alt['median_ms'])} median"), value)
    return None


def store_rows(data: dict[str, Any]) -> list[Row]:
    ours_install = data.get("install", {}).get("store")

    def make(key: str, value: str) -> tuple[str, str, str]:
        cells = _pool_cli_cells(data, key, value)
        if cells is not None:
            return cells
        found = STORE_CONTEXT.get(key)
        if found is None:
            return value, "", ""
        part, ours_key, alt_key = found
        sides = data.get(part, {})
        ours = ours_install if ours_key is None else sides.get(ours_key)
        alt = sides.get(alt_key) if alt_key else None
        if ours is None or alt is None:
            return value, "", ""
        if _is_ratio(value):
            return _side_ms(ours), _versus(alt, _side_ms(alt)), value
        return value, _versus(alt, _side_ms(alt)), fmt_ratio(ours["best_ms"] / alt["best_ms"])

    return _summary_rows(data, make, STORE_CONTEXT)


BRIDGE_CONTEXT: dict[str, Context] = {
    "cold start / bare msgpack import": ("start", "bridge", "msgpack"),
    "cold start, HostBridge (best)": None,
    "sequential ping p50 / raw echo": ("sequential", "ping", "raw"),
    "sequential ping p50": None,
    "raw echo p50": None,
    "tools.call noop p50 (HostBridge)": ("sequential", "noop", "raw"),
    "sequential acall p50 / raw echo": ("sequential", "acall", "raw"),
    "ping 8 deep": None,
    "raw echo, one way": None,
    "bare msgpack import VmRSS": None,
}
MSGPACK_RSS = "python -I -S -B, import msgpack (runtime copy)"


def _bridge_value(part: str, side: dict[str, Any]) -> str:
    if part == "start":
        return fmt_ms(side["best_ms"])
    if part == "in_flight":
        return f"{side['best_per_s']}/s"
    return fmt_us(side["p50_us"])


def bridge_rows(data: dict[str, Any]) -> list[Row]:
    roundtrip = data.get("roundtrip", {})
    parts = {"start": data.get("start", {}), "sequential": roundtrip.get("sequential", {}),
             "in_flight": roundtrip.get("in_flight", {})}

    def make(key: str, value: str) -> tuple[str, str, str]:
        if key.startswith("ping ") and "deep rate / raw echo" in key:
            return _rate_cells(parts["in_flight"], value)
        if key.startswith("acall ") and "in flight rate / raw echo" in key:
            return _rate_cells(parts["in_flight"], value, "acall")
        if key.startswith("1 MiB echo"):
            return _payload_cells(data.get("payload", {}), value)
        if key == "idle worker VmRSS":
            return _memory_cells(data.get("memory", {}), value)
        found = BRIDGE_CONTEXT.get(key)
        if found is None:
            return value, "", ""
        part, ours_key, alt_key = found
        ours = parts[part].get(ours_key or "")
        alt = parts[part].get(alt_key or "")
        if ours is None or alt is None:
            return value, "", ""
        shown = _versus(alt, _bridge_value(part, alt))
        if _is_ratio(value):
            return _bridge_value(part, ours), shown, value
        return value, shown, fmt_ratio(ours["p50_us"] / alt["p50_us"])

    return _summary_rows(data, make, BRIDGE_CONTEXT)


def _rate_cells(in_flight: dict[str, Any], value: str,
                ours_key: str = "ping") -> tuple[str, str, str]:
    ours, alt = in_flight.get(ours_key), in_flight.get("raw")
    if ours is None or alt is None:
        return value, "", ""
    return (f"{ours['best_per_s']}/s", _versus(alt, f"{alt['best_per_s']}/s"), value)


def _payload_cells(payload: dict[str, Any], value: str) -> tuple[str, str, str]:
    ours, alt = payload.get("bridge"), payload.get("raw")
    if ours is None or alt is None:
        return value, "", ""
    return (value, _versus(alt, f"{alt['best_mib_s_one_way']:.0f} MiB/s"),
            fmt_ratio(ours["best_mib_s_one_way"] / alt["best_mib_s_one_way"]))


def _memory_cells(memory: dict[str, Any], value: str) -> tuple[str, str, str]:
    bare = memory.get(MSGPACK_RSS)
    idle = next(iter(memory.values()), None)
    if bare is None or idle is None:
        return value, "", ""
    return value, f"{MSGPACK_RSS}: {bare['VmRSS']:.1f} MiB", fmt_ratio(
        idle["VmRSS"] / bare["VmRSS"])


def bridge_notes(data: dict[str, Any]) -> list[str]:
    setup = data.get("setup", {})
    hello = setup.get("hello", {})
    if not hello:
        return []
    launcher = " ".join(Path(word).name for word in setup.get("launcher", [])) or "none"
    return [f"Host Python {setup.get('host_python')}, worker Python {hello.get('python')} "
            f"as uid {hello.get('uid')}, msgpack {hello.get('msgpack')}; launcher: "
            f"`{launcher}`."]


def store_notes(data: dict[str, Any]) -> list[str]:
    pip = data.get("virtualenv", {}).get("pip")
    notes = [f"pip {pip} (seeded by virtualenv)."] if pip else []
    disk = data.get("disk")
    if disk:
        notes.append(f"Disk: {disk['plugins']} plugins sharing six and idna in one store; "
                     "KiB allocated per additional plugin by area: " + ", ".join(
                         f"{area} {kib:g}" for area, kib in
                         disk["per_additional_kib_allocated"].items()) + ".")
    return notes + pool_notes(data)


def pool_notes(data: dict[str, Any]) -> list[str]:
    x3 = data.get("pool", {}).get("tenants_x3")
    if not x3:
        return []
    return [f"Pool: {x3['tenants']} tenants x 3 plugins measured: {x3['environments']} pooled "
            f"environments ({', '.join(f'{k} KiB' for k in x3['env_kib'])}), the pool "
            f"{x3['pool_kib'] / 1024:.1f} MiB, each tenant {x3['tenant_kib']} KiB of metadata "
            f"+ {x3['refs_kib_per_tenant']:g} KiB of references in the pool, "
            f"{x3['total_kib'] / 1024:.1f} MiB in all. The 1,000-tenant figure is extrapolated "
            f"from these {x3['tenants']} (the pool's shared part + 1,000 x what a tenant adds), "
            "not a run of 1,000."]


def roundtrip_rows(data: dict[str, Any]) -> list[Row]:
    copy = data["content_only_install_median_ms"]
    rows = [Row("plugins that load the same from their wheel as from their directory",
                f"{data['passed']} of {data['plugins']}", target="all",
                met=data["failed"] == 0)]
    if data.get("install_median_ms") is not None:
        rows += [
            Row("install + load + compare + uninstall, per plugin, median",
                fmt_ms(data["install_median_ms"]),
                f"content-only install of the same directory (a copy): {fmt_ms(copy)}",
                fmt_ratio(data["install_median_ms"] / copy)),
            Row("↳ p95", fmt_ms(data["install_p95_ms"])),
        ]
    rows += [
        Row(f"package_plugin (uv build, setuptools), {data['workers']} at a time",
            fmt_seconds(data["package_s"]),
            ratio="", target=""),
        Row("↳ per plugin, one worker's time", fmt_seconds(data["package_per_plugin_s"])),
        Row("install + compare, one plugin after another", fmt_seconds(
            data["install_compare_s"])),
        Row(f"whole round trip, {data['plugins']} plugins", fmt_seconds(data["total_s"])),
    ]
    return rows


def roundtrip_notes(data: dict[str, Any]) -> list[str]:
    return [f"Differs: `{name}`: {problems[0][:200]}"
            for name, problems in sorted(data.get("failures", {}).items())]


SANDBOX_WHAT = {"start": "worker start (to the handshake)", "call": "noop round trip, warm",
                "program": 'run_program(["true"])'}


def sandbox_rows(data: dict[str, Any]) -> list[Row]:
    off = {row["what"]: row for row in data["rows"] if row["profile"] == "off"}
    rows = []
    for row in data["rows"]:
        base = off.get(row["what"])
        if row["profile"] == "off" or base is None:
            continue
        rows.append(Row(f"{SANDBOX_WHAT.get(row['what'], row['what'])}, {row['profile']}, "
                        "median", fmt_ms(row["median_ms"]),
                        f"profile off: {fmt_ms(base['median_ms'])}",
                        fmt_ratio(row["ratio_to_off"])))
    return rows


def sandbox_notes(data: dict[str, Any]) -> list[str]:
    layers = data.get("layers", {})
    works = [name for name, ok in layers.items() if ok]
    missing = [name for name, ok in layers.items() if ok is False]
    text = f"Host uid {data.get('uid')}; layers that work here: {', '.join(works) or 'none'}"
    return [text + (f"; not here: {', '.join(missing)}." if missing else ".")]


SECURITY_FIGURES = (  # (figure, part, key, format)
    ("worker cold start to the first result, p50", "start", "p50_ms", "ms"),
    ("↳ p90", "start", "p90_ms", "ms"),
    ("call_tool noop round trip, warm, p50", "call", "p50_us", "us"),
    ("↳ p99", "call", "p99_us", "us"),
    ("↳ host CPU per 1000 calls", "call", "host_cpu_ms_per_1000", "ms"),
    ("↳ worker CPU per 1000 calls", "call", "worker_cpu_ms_per_1000", "ms"),
    ("host memory per live worker (USS growth / K)", "memory_per_worker", "uss_kib", "kib"),
    ("↳ Rss growth / K", "memory_per_worker", "rss_kib", "kib"),
)


def _security_value(summary: dict[str, Any] | None, part: str, key: str) -> float | None:
    value = ((summary or {}).get(part) or {}).get(key)
    return None if value is None else float(value)


def _security_text(value: float | None, kind: str) -> str:
    if value is None:
        return ""
    if kind == "ms":
        return fmt_ms(value)
    if kind == "us":
        return fmt_us(value)
    return f"{value / 1024:.2f} MiB" if abs(value) >= 1024 else f"{value:.0f} KiB"


def security_rows(data: dict[str, Any]) -> list[Row]:
    configs, ref = data["configs"], data["old"]["ref"]
    rows = []
    for profile in ("off", "standard", "strict"):
        old, new = configs.get(f"old/{profile}"), configs.get(f"new/{profile}")
        if new is None:
            continue
        for figure, part, key, kind in SECURITY_FIGURES:
            ours = _security_value(new, part, key)
            theirs = _security_value(old, part, key)
            if ours is None and theirs is None:
                continue
            label = figure if figure.startswith("↳") else f"{figure}, {profile}"
            ratio = fmt_ratio(ours / theirs) if ours is not None and theirs else ""
            rows.append(Row(label, _security_text(ours, kind) or "failed",
                            f"{ref}: {_security_text(theirs, kind) or 'failed'}", ratio))
    for profile in ("standard", "strict"):
        new, world = configs.get(f"new/{profile}/default"), configs.get(f"new/{profile}")
        if new is None:
            continue
        for figure, part, key, kind in (SECURITY_FIGURES[0], SECURITY_FIGURES[2],
                                        SECURITY_FIGURES[6]):
            ours, theirs = _security_value(new, part, key), _security_value(world, part, key)
            ratio = fmt_ratio(ours / theirs) if ours is not None and theirs else ""
            rows.append(Row(f"{figure}, {profile}, the default interpreter",
                            _security_text(ours, kind) or "failed",
                            f"the world interpreter: {_security_text(theirs, kind)}", ratio))
    return rows


def security_notes(data: dict[str, Any]) -> list[str]:
    old, new, load = data["old"], data["new"], data["load_average"]
    changes = " plus its uncommitted changes" if new.get("dirty") else ""
    notes = [f"Measured {data['date']} (UTC): `{old['commit'][:12]}` ({old['ref']}, before the "
             f"fixes) against the working tree at `{new['commit'][:12]}`{changes}; "
             f"{data['rounds']} interleaved rounds of {data['starts_per_round']} starts, "
             f"{data['calls_per_round']} calls and {data['workers']} live workers per "
             f"configuration; load average {load['start']:.2f} at the start, "
             f"{load['end']:.2f} at the end, {data.get('cpus')} CPUs."
             + (f" {data['note']}" if data.get("note") else "")]
    python = data.get("python", {})
    notes.append(f"Plugin interpreter `{python.get('world')}` (the world interpreter: uid 65534 "
                 f"may run it); the default interpreter is the host's, `{python.get('default')}`"
                 f". Host uid {data.get('host_uid')}.")
    said = []
    for profile, probe in data.get("default_interpreter_probes", {}).get("old", {}).items():
        if "error" in probe:
            reach = re.search(r"cannot reach \S+", probe["error"])
            said.append(f"refuses {profile}" + (f" ({reach.group(0)})" if reach else ""))
        elif probe.get("uid") == 0:
            said.append(f"runs {profile} as root (uid 0)")
        else:
            said.append(f"runs {profile} as uid {probe.get('uid')}")
    if said:
        notes.append(f"With the default interpreter, {data['old']['ref']} " + " and ".join(said)
                     + ": not comparable, so those rows stand beside the working tree with the "
                     "world interpreter (what differs: the private mount namespace, and another "
                     "build of Python).")
    check = (data["configs"].get("new/standard") or {}).get("check_interpreter_files_ms")
    if check is not None:
        notes.append(f"Of the working tree's start: `PluginStore.check_interpreter_files`, "
                     f"run before every launch, takes {check:.2f} ms (median).")
    for key, summary in data["configs"].items():
        if summary.get("errors"):
            notes.append(f"`{key}`: {len(summary['errors'])} round(s) failed, e.g. "
                         f"`{summary['errors'][0][:200]}`.")
    return notes


def _load_rounds(data: dict[str, Any], profile: str) -> list[dict[str, Any]]:
    return [r for r in data.get("rounds", []) if r.get("profile") == profile]


def load_rows(data: dict[str, Any]) -> list[Row]:
    setup = data["setup"]
    workers = setup["workers"]
    scale = 100 / workers

    def make(key: str, value: str) -> tuple[str, str, str]:
        profile, _, figure = key.partition(": ")
        rounds = _load_rounds(data, profile)
        if not rounds:
            return value, "", ""
        if figure == "live workers' PSS / bare interpreters":
            best = min(rounds, key=lambda r: r["pss_ratio"] or 0.0)
            return (f"{best['pss_mib']:.1f} MiB, {workers} workers",
                    f"{workers} bare interpreters (import msgpack): "
                    f"{best['bare_pss_mib']:.1f} MiB", value)
        if figure == "PSS scaled to 100 workers":
            best = min(rounds, key=lambda r: r["pss_mib"])
            bare = best["bare_pss_mib"] * scale
            return (f"{value}, scaled from {workers}",
                    f"100 bare interpreters (scaled): {bare:.0f} MiB",
                    fmt_ratio(best["pss_mib"] / best["bare_pss_mib"]))
        if figure == "lost calls":
            calls = sum(r.get("calls", 0) for r in rounds)
            return f"{value} of {calls}", "", ""
        if figure.startswith("calls/s"):
            p50 = min(r["p50_us"] or 0.0 for r in rounds)
            return f"{value} (p50 {fmt_us(p50)})", "", ""
        return value, "", ""

    rows = [_unmeasured_pss(data, row) for row in _summary_rows(data, make)]
    for profile in dict.fromkeys(r["profile"] for r in data.get("rounds", [])):
        rounds = _load_rounds(data, profile)
        rows.append(Row(f"{profile}: start {workers} workers from {setup['threads']} threads "
                        "(best round)", fmt_ms(min(r["start_all_s"] for r in rounds) * 1e3)))
    return rows


def _unmeasured_pss(data: dict[str, Any], row: Row) -> Row:
    """A PSS row of a profile where no worker process was found: 0 MiB is no measurement,
    so it meets no target."""
    profile, _, figure = row.figure.partition(": ")
    rounds = _load_rounds(data, profile)
    if "PSS" not in figure or not rounds or any(r.get("processes") for r in rounds):
        return row
    return dataclasses.replace(row, ours="not measured: no worker process found",
                               alternative="", ratio="", met=None)


def load_notes(data: dict[str, Any]) -> list[str]:
    setup = data["setup"]
    rounds = {r.get("round") for r in data.get("rounds", [])}
    notes = [f"{setup['workers']} live workers (one HostBridge each), {setup['threads']} threads "
             f"x {setup['calls']} `call_tool(noop)` calls, {plural(len(rounds), 'round')} over "
             f"the profiles, interleaved; plugin interpreter `{setup['python']}`, "
             f"{setup.get('cpus')} CPUs. The 100-worker PSS is scaled from "
             f"{setup['workers']} workers."]
    for row in data.get("rounds", []):
        if row.get("lost_examples"):
            notes.append(f"{row['profile']}, round {row['round']}: {row['lost']} lost, e.g. "
                         f"`{row['lost_examples'][0][:200]}`.")
    return notes


OPENHANDS_WHAT = {"hook": ("hook command to its exit", "hook floor"),
                  "mcp": ("stdio MCP server to its first line", "mcp floor")}


def openhands_rows(data: dict[str, Any]) -> list[Row]:
    sides = data.get("sides", {})
    rows = []
    for row in data["rows"]:
        what, floor_key = OPENHANDS_WHAT.get(row["what"], (row["what"], ""))
        floor = sides.get(floor_key, {}).get("label", "floor")
        rows.append(Row(f"{what}, {row['profile']}, median", fmt_ms(row["median_ms"]),
                        f"unsandboxed {floor}: {fmt_ms(row['floor_median_ms'])}",
                        fmt_ratio(row["ratio"]), f"< {row['target_ms']:g} ms", row["met"]))
    return rows


def openhands_notes(data: dict[str, Any]) -> list[str]:
    return [f"{data['runs']} runs of each, profiles interleaved run by run; the commands are "
            "made once by `program_command`, as `hostbridge.openhands.attach` makes them, and "
            "run as the SDK runs them."]


RAY_FIGURES = (  # (key, figure, unit)
    ("start_ms", "worker start and first call, the node's venv cached, median", "ms"),
    ("first_start_ms", "first start of a new host (Ray: agent, venv built on the node)", "ms"),
    ("roundtrip_us", "call_tool round trip on a running worker, median", "us"),
    ("roundtrip_mean_us", "↳ mean", "us"),
)


def ray_rows(data: dict[str, Any]) -> list[Row]:
    local, ray = data["results"]["local"], data["results"]["ray"]
    rows = []
    for key, figure, unit in RAY_FIGURES:
        show = fmt_ms if unit == "ms" else fmt_us
        label = figure if figure.startswith("↳") else f"through Ray / local: {figure}"
        rows.append(Row(label, show(ray[key]), f"local worker: {show(local[key])}",
                        fmt_ratio(ray[key] / local[key])))
    return rows


def ray_notes(data: dict[str, Any]) -> list[str]:
    return [f"One Ray node at 127.0.0.1 on this machine; {data['repeat']} starts and "
            f"{data['calls']} calls per side. The plugin is the example `shout`. No target "
            "is judged here: the ratios are what running a worker on a node costs."]



# ---- charts --------------------------------------------------------------------------------


def _bars(ax: Axes, labels: Sequence[str], values: Sequence[float], ours: Sequence[bool],
          unit: str, *, log: bool = False, marks: Sequence[Sequence[float]] = ()) -> None:
    """Horizontal bars, isolator's in colour, the alternatives' grey; *marks*: dots per bar."""
    positions = list(range(len(labels)))[::-1]
    colours = [OURS_COLOUR if mine else ALT_COLOUR for mine in ours]
    ax.barh(positions, values, color=colours, height=0.6)
    for position, dots in zip(positions, marks, strict=False):
        ax.plot(list(dots), [position] * len(dots), "o", color="black", markersize=2.5,
                alpha=0.6)
    for position, value in zip(positions, values, strict=True):  # above the bar's end
        ax.annotate(_short(value), (value, position + 0.3), ha="center", va="bottom",
                    fontsize=7)
    ax.set_yticks(positions, list(labels), fontsize=8)
    ax.set_xlabel(unit, fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    if log:
        ax.set_xscale("log")
    ax.margins(x=0.15)


def _short(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def _target_line(ax: Axes, value: float, text: str) -> None:
    ax.axvline(value, color=TARGET_COLOUR, linestyle="--", linewidth=1)
    ax.annotate(f" {text}", (value, 0.01), xycoords=("data", "axes fraction"),
                color=TARGET_COLOUR, fontsize=7, ha="left", va="bottom")


def chart_loader(fig: Figure, data: dict[str, Any]) -> bool:
    sides = data["sides"]
    ax = fig.subplots()
    names = list(sides)
    _bars(ax, [f"{name} best" for name in names],
          [sides[name]["best_s"] * 1e3 for name in names], [n == "isolator" for n in names],
          f"ms to load {data['corpus_dirs']} corpus plugin dirs (dots: every pass)",
          marks=[[t * 1e3 for t in sides[name]["times_s"]] for name in names])
    ratio = f" ({data['ratio_best']:.2f}x)" if data.get("ratio_best") else ""
    ax.set_title(f"Content loader: openhands-sdk Plugin.load vs isolator.load_plugin{ratio}",
                 fontsize=9)
    return True


def chart_distinfo(fig: Figure, data: list[dict[str, Any]]) -> bool:
    axes = fig.subplots(1, len(data), squeeze=False)[0]
    for ax, entry in zip(axes, data, strict=True):
        names = list(entry["best_ms"])
        _bars(ax, names, [entry["best_ms"][n] for n in names], [n == "isolator" for n in names],
              "ms, best pass")
        ax.set_title(f"{entry['label']}: {entry['sites']} site(s), "
                     f"{entry['distributions']} dists ({entry['ratio']:.1f}x)", fontsize=8)
    return True


STORE_INSTALL_SIDES = (("install", "store"), ("install", "fresh"), ("install", "floor"),
                       ("install", "floor_compile"), ("virtualenv", "virtualenv"),
                       ("virtualenv", "store_virtualenv"), ("virtualenv", "target"))
STORE_PHASE_GROUPS = (("resolve", "resolve (uv pip compile)"), ("uv venv", "uv venv"),
                      ("bytecode", "bytecode compile"),
                      ("uv pip install", "uv pip install: start, link"))


def _phase_group(name: str) -> str:
    for needle, group in STORE_PHASE_GROUPS:
        if needle in name:
            return group
    return "the store's own steps"


def chart_store(fig: Figure, data: dict[str, Any]) -> bool:
    sides = [(part, key, data[part][key]) for part, key in STORE_INSTALL_SIDES
             if key in data.get(part, {})]
    phases = data.get("install", {}).get("store_phases_ms")
    if not sides:
        return False
    axes = fig.subplots(1, 2 if phases else 1, squeeze=False,
                        gridspec_kw={"width_ratios": [3, 2]} if phases else None)[0]
    _bars(axes[0], [side["label"].strip() for *_, side in sides],
          [side["best_ms"] for *_, side in sides],
          [key in ("store", "fresh", "store_virtualenv") for _, key, _ in sides],
          "ms, best run (dots: every run; log scale)", log=True,
          marks=[side["times_ms"] for *_, side in sides])
    axes[0].set_title("Install one plugin + six + idna, offline, warm uv cache", fontsize=9)
    if phases:
        _stacked_phases(axes[1], phases, data["install"].get("floor_steps_ms", {}))
    return True


def _stacked_phases(ax: Axes, store: dict[str, float], floor: dict[str, float]) -> None:
    groups = [*dict.fromkeys(group for _, group in STORE_PHASE_GROUPS),
              "the store's own steps"]
    bars = {"store (median)": store, "floor + --compile-bytecode": floor}
    colours = ("#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", OURS_COLOUR)
    widest = 0.0
    for position, steps in enumerate(bars.values()):
        totals = dict.fromkeys(groups, 0.0)
        for name, value in steps.items():
            totals[_phase_group(name)] += value
        left = 0.0
        for group, colour in zip(groups, colours, strict=True):
            ax.barh(position, totals[group], left=left, color=colour, height=0.6,
                    label=group if position == 0 else None)
            left += totals[group]
        ax.annotate(f" {left:.0f}", (left, position), va="center", fontsize=7)
        widest = max(widest, left)
    ax.set_xlim(0, widest * 1.15 or 1.0)  # a zero-width segment's edge would stop margins
    ax.set_yticks(range(len(bars)), list(bars), fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ms, median", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    ax.set_title("Where the install's time goes", fontsize=9)


def chart_bridge(fig: Figure, data: dict[str, Any]) -> bool:
    panels = [(draw, data[key]) for key, draw in (
        ("start", _bridge_start), ("roundtrip", _bridge_roundtrip),
        ("payload", _bridge_payload), ("memory", _bridge_memory)) if key in data]
    if not panels:
        return False
    axes = fig.subplots(2, 2, squeeze=False).flatten()
    for ax, (draw, part) in zip(axes, panels, strict=False):
        draw(ax, part)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return True


def _bridge_start(ax: Axes, start: dict[str, Any]) -> None:
    keys = [k for k in ("bridge", "worker", "msgpack", "msgpack_pyc", "launcher", "pass")
            if k in start]
    _bars(ax, [start[k]["label"].strip() for k in keys], [start[k]["best_ms"] for k in keys],
          [k in ("bridge", "worker") for k in keys], "ms, best (dots: every run)",
          marks=[start[k]["times_ms"] for k in keys])
    ax.set_title("Cold start to the first tool result", fontsize=9)


def _bridge_roundtrip(ax: Axes, roundtrip: dict[str, Any]) -> None:
    seq = roundtrip["sequential"]
    keys = list(seq)
    _bars(ax, [seq[k]["label"].strip() for k in keys], [seq[k]["p50_us"] for k in keys],
          [k in ("ping", "noop_worker", "noop") for k in keys],
          "us per call, p50 (dots: p99; log scale)", log=True,
          marks=[[seq[k]["p99_us"]] for k in keys])
    ax.set_title("Sequential round trips", fontsize=9)


def _bridge_payload(ax: Axes, payload: dict[str, Any]) -> None:
    keys = list(payload)
    _bars(ax, [payload[k]["label"].strip() for k in keys],
          [payload[k]["best_mib_s_one_way"] for k in keys],
          [k in ("worker", "bridge") for k in keys], "MiB/s one way, best pass")
    _target_line(ax, 500.0, "target 500")
    ax.set_title("1 MiB payloads", fontsize=9)


def _bridge_memory(ax: Axes, memory: dict[str, Any]) -> None:
    labels = list(memory)[::-1]
    positions = range(len(labels))
    anon = [memory[label]["RssAnon"] for label in labels]
    files = [memory[label]["RssFile"] for label in labels]
    ax.barh(positions, anon, color=OURS_COLOUR, height=0.6, label="RssAnon")
    ax.barh(positions, files, left=anon, color=ALT_COLOUR, height=0.6, label="RssFile")
    ax.set_yticks(list(positions), [label.strip() for label in labels], fontsize=7)
    ax.set_xlabel("MiB resident", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    _target_line(ax, 15.0, "target 15 (worker)")
    ax.legend(fontsize=6, loc="center right")
    ax.set_title("Memory (VmRSS = anon + file)", fontsize=9)


def chart_roundtrip(fig: Figure, data: dict[str, Any]) -> bool:
    ours, copies = data.get("install_ms"), data.get("content_only_install_ms")
    if not ours or not copies:
        return False
    ax = fig.subplots()
    for values, colour, label in ((ours, OURS_COLOUR, "install from its wheel, load, compare"),
                                  (copies, ALT_COLOUR, "content-only install (a copy)")):
        ordered = sorted(values)
        fractions = [(i + 1) / len(ordered) for i in range(len(ordered))]
        ax.step(ordered, fractions, where="post", color=colour, label=f"{label} ({len(values)})")
    ax.set_xscale("log")
    ax.set_xlabel("ms per plugin (log scale)", fontsize=8)
    ax.set_ylabel("fraction of plugins", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="center")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title("Per-plugin install time over the corpus", fontsize=9)
    return True


def chart_sandbox(fig: Figure, data: dict[str, Any]) -> bool:
    profiles = list(dict.fromkeys(row["profile"] for row in data["rows"]))
    whats = list(dict.fromkeys(row["what"] for row in data["rows"]))
    ratio = {(row["profile"], row["what"]): row["ratio_to_off"] for row in data["rows"]}
    ax = fig.subplots()
    width = 0.8 / len(profiles)
    colours = (ALT_COLOUR, OURS_COLOUR, "#ff7f0e", "#2ca02c")
    for index, profile in enumerate(profiles):
        xs = [w + (index - (len(profiles) - 1) / 2) * width for w in range(len(whats))]
        ax.bar(xs, [ratio.get((profile, w), 0.0) for w in whats], width=width,
               color=colours[index % len(colours)], label=profile)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(whats)), [SANDBOX_WHAT.get(w, w) for w in whats], fontsize=8)
    ax.set_ylabel("median / profile off", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7)
    ax.set_title("Cost of each sandbox profile, as a ratio to off", fontsize=9)
    return True


SECURITY_CHART = (("start p50", "start", "p50_ms"), ("start p90", "start", "p90_ms"),
                  ("call p50", "call", "p50_us"), ("call p99", "call", "p99_us"),
                  ("host CPU/call", "call", "host_cpu_ms_per_1000"),
                  ("USS/worker", "memory_per_worker", "uss_kib"))


def chart_security(fig: Figure, data: dict[str, Any]) -> bool:
    configs = data["configs"]
    ax = fig.subplots()
    profiles = [p for p in ("off", "standard", "strict") if f"new/{p}" in configs]
    if not profiles:
        return False
    width = 0.8 / len(profiles)
    colours = (ALT_COLOUR, OURS_COLOUR, "#ff7f0e")
    for index, profile in enumerate(profiles):
        ratios = []
        for _, part, key in SECURITY_CHART:
            old = _security_value(configs.get(f"old/{profile}"), part, key)
            new = _security_value(configs.get(f"new/{profile}"), part, key)
            ratios.append(new / old if old and new is not None else 0.0)
        xs = [i + (index - (len(profiles) - 1) / 2) * width for i in range(len(SECURITY_CHART))]
        ax.bar(xs, ratios, width=width, color=colours[index % len(colours)], label=profile)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(SECURITY_CHART)), [name for name, *_ in SECURITY_CHART], fontsize=8)
    ax.set_ylabel(f"working tree / {data['old']['ref']}", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7)
    ax.set_title("What the security fixes cost, per profile (1 = no change)", fontsize=9)
    return True


def chart_load(fig: Figure, data: dict[str, Any]) -> bool:
    profiles = list(dict.fromkeys(r["profile"] for r in data.get("rounds", [])))
    if not profiles:
        return False
    workers = data["setup"]["workers"]
    axes = fig.subplots(1, 2)
    labels, values, ours = [], [], []
    bare = min(r["bare_pss_mib"] for r in data["rounds"])
    for profile in profiles:
        labels.append(f"{profile}: {workers} workers")
        values.append(min(r["pss_mib"] for r in _load_rounds(data, profile)))
        ours.append(True)
    labels.append(f"{workers} bare interpreters")
    values.append(bare)
    ours.append(False)
    _bars(axes[0], labels, values, ours, "MiB PSS, best round")
    _target_line(axes[0], bare * PSS_RATIO_MAX, f"{PSS_RATIO_MAX:g}x bare")
    axes[0].set_title("Memory of live workers", fontsize=9)
    rates = [max(r["per_s"] for r in _load_rounds(data, p)) for p in profiles]
    setup = data["setup"]
    _bars(axes[1], profiles, rates, [True] * len(profiles), "calls/s, best round")
    axes[1].set_title(f"{setup['threads']} threads x {setup['calls']} calls over "
                      f"{workers} workers", fontsize=9)
    return True


def chart_openhands(fig: Figure, data: dict[str, Any]) -> bool:
    rows = data.get("rows", [])
    if not rows:
        return False
    ax = fig.subplots()
    labels, values, ours = [], [], []
    for what in dict.fromkeys(row["what"] for row in rows):
        mine = [row for row in rows if row["what"] == what]
        for row in mine:
            labels.append(f"{what}, {row['profile']}")
            values.append(row["median_ms"])
            ours.append(True)
        labels.append(f"{what}, unsandboxed floor")
        values.append(mine[0]["floor_median_ms"])
        ours.append(False)
    _bars(ax, labels, values, ours, "ms to start, median")
    _target_line(ax, rows[0]["target_ms"], f"target {rows[0]['target_ms']:g} ms")
    ax.set_title("A plugin's hook and stdio MCP server through the launcher", fontsize=9)
    return True


def chart_ray(fig: Figure, data: dict[str, Any]) -> bool:
    local, ray = data["results"]["local"], data["results"]["ray"]
    axes = fig.subplots(1, 3)
    for ax, (key, title, unit) in zip(axes, (
            ("first_start_ms", "first start", "ms"), ("start_ms", "start, venv cached", "ms"),
            ("roundtrip_us", "round trip", "us")), strict=True):
        _bars(ax, ["local", "through Ray"], [local[key], ray[key]], [False, True],
              f"{unit}, median" if key != "first_start_ms" else unit)
        ax.set_title(f"{title} ({ray[key] / local[key]:.1f}x)", fontsize=9)
    return True


@dataclass(frozen=True)
class Renderer:
    rows: Callable[[Any], list[Row]]
    notes: Callable[[Any], list[str]]
    chart: Callable[[Figure, Any], bool]
    size: tuple[float, float]


def _no_notes(_data: Any) -> list[str]:
    return []


RENDERERS: dict[str, Renderer] = {
    "loader": Renderer(loader_rows, loader_notes, chart_loader, (7.5, 2.0)),
    "distinfo": Renderer(distinfo_rows, _no_notes, chart_distinfo, (8.0, 2.0)),
    "store": Renderer(store_rows, store_notes, chart_store, (11.0, 3.6)),
    "roundtrip": Renderer(roundtrip_rows, roundtrip_notes, chart_roundtrip, (7.0, 3.2)),
    "bridge": Renderer(bridge_rows, bridge_notes, chart_bridge, (12.0, 6.5)),
    "load": Renderer(load_rows, load_notes, chart_load, (10.0, 2.6)),
    "sandbox": Renderer(sandbox_rows, sandbox_notes, chart_sandbox, (7.0, 3.0)),
    "openhands": Renderer(openhands_rows, openhands_notes, chart_openhands, (7.5, 3.0)),
    "ray": Renderer(ray_rows, ray_notes, chart_ray, (10.0, 2.0)),
    "security": Renderer(security_rows, security_notes, chart_security, (8.0, 3.0)),
}


def draw_chart(name: str, data: Any, path: Path) -> bool:
    """The benchmark's chart as a PNG at *path*; False when there is nothing to draw."""
    from matplotlib.figure import Figure

    renderer = RENDERERS[name]
    fig = Figure(figsize=renderer.size, layout="constrained")
    if not renderer.chart(fig, data):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100, metadata={"Software": None})
    return True


def have_matplotlib() -> bool:
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    return True


# ---- the docstring: how to read -----------------------------------------------------------


def docstring_paragraphs(script: Path) -> list[str]:
    """The script's docstring in paragraphs, Markdown quoting, without usage and exit status."""
    doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
    paragraphs = [p.strip("\n") for p in re.split(r"\n\s*\n", doc)]
    return [p.replace("``", "`") for p in paragraphs[1:]
            if p and not p.startswith("    ") and "Exit status" not in p]


def how_to_read(script: Path) -> str:
    paragraphs = docstring_paragraphs(script)
    if sum(map(len, paragraphs)) > SHORT_READ:
        first = paragraphs[0]
        if first.endswith(":"):  # the list that followed is left out: say where it is
            first = first[:-1] + " (each part is described in the script's docstring)."
        paragraphs = [first] + [p for p in paragraphs[1:]
                                if "judged" in p.lower() and not p[0].isdigit()]
    return "\n\n".join(paragraphs)


def summary_line(script: Path) -> str:
    """The docstring's first paragraph, on one line."""
    doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
    first = re.split(r"\n\s*\n", doc, maxsplit=1)[0]
    return " ".join(first.split()).replace("``", "`")


# ---- the machine --------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return ""


def _field(text: str, key: str, sep: str = ":") -> str | None:
    for line in text.splitlines():
        name, found, value = line.partition(sep)
        if found and name.strip() == key:
            return value.strip().strip('"')
    return None


def _output(cmd: Sequence[str]) -> str | None:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30,
                              check=False, cwd=REPO_ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _uv_version() -> str | None:
    try:
        if str(REPO_ROOT) not in sys.path:
            sys.path.append(str(REPO_ROOT))
        from isolator.store._backends import find_uv

        uv: str | None = find_uv()
    except Exception:
        uv = shutil.which("uv")
    output = _output([uv, "--version"]) if uv else None
    return output.split()[1] if output and len(output.split()) > 1 else output


def describe_machine(python: str = sys.executable) -> dict[str, Any]:
    """What the benchmarks ran on: CPU, memory, OS, Python, uv, git commit, load."""
    cpuinfo = _read("/proc/cpuinfo")
    mem_kib = _field(_read("/proc/meminfo"), "MemTotal")
    flags = _field(cpuinfo, "flags") or ""
    commit = _output(["git", "rev-parse", "HEAD"])
    changed = None
    if commit is not None:
        changed = subprocess.run(["git", "diff", "--quiet", "HEAD", "--"], cwd=REPO_ROOT,
                                 capture_output=True, check=False).returncode != 0
    py = _output([python, "-c", "import platform, sys; print(platform.python_implementation(),"
                  " sys.version.split()[0])"])
    return {
        "cpu_model": _field(cpuinfo, "model name") or platform.processor() or "unknown",
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else None,
        "virtual_machine": " hypervisor" in f" {flags}",
        "memory_gib": round(int(mem_kib.split()[0]) / 1024 / 1024, 1) if mem_kib else None,
        "os": _field(_read("/etc/os-release"), "PRETTY_NAME", "=") or platform.platform(),
        "kernel": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": py or sys.version.split()[0],
        "uv": _uv_version(),
        "git_commit": commit,
        "git_subject": _output(["git", "log", "-1", "--format=%s"]),
        "git_uncommitted_changes": changed,
    }


def machine_table(run: dict[str, Any]) -> str:
    machine = run["machine"]
    cpus = f"{machine['cpus']} CPUs"
    if machine.get("cpus_usable") not in (None, machine["cpus"]):
        cpus += f" ({machine['cpus_usable']} usable)"
    vm = ", a virtual machine" if machine.get("virtual_machine") else ""
    commit = machine.get("git_commit") or "unknown"
    if machine.get("git_commit"):
        commit = f"`{commit[:12]}` {machine.get('git_subject') or ''}".strip()
        if machine.get("git_uncommitted_changes"):
            commit += " (plus uncommitted changes in the working tree)"
    load = run.get("load_average", {})
    rows = [
        ("CPU", f"{machine['cpu_model']}, {cpus}{vm}"),
        ("memory", f"{machine['memory_gib']} GiB" if machine.get("memory_gib") else "unknown"),
        ("OS", f"{machine['os']}, {machine['kernel']}"),
        ("Python", machine["python"]),
        ("uv", machine.get("uv") or "not found"),
        ("date", f"{run['started']} (UTC)"),
        ("git commit", commit),
        ("run", run_kind(run)),
        ("total time", fmt_seconds(run.get("total_s", 0.0))),
    ]
    if load:
        rows.append(("load average (1 min)", f"{load.get('start', 0):.2f} at the start, "
                                             f"{load.get('end', 0):.2f} at the end"))
    if run.get("note"):
        rows.append(("note", run["note"]))
    return "| | |\n| --- | --- |\n" + "\n".join(f"| {k} | {cell(v)} |" for k, v in rows)


def run_kind(run: dict[str, Any]) -> str:
    if run.get("quick"):
        text = ("`--quick`: each benchmark's smallest sensible repeat counts, a smoke run; "
                "its figures are noisy and not the ones to quote")
    else:
        text = "full: every benchmark's default repeat counts"
    custom = run.get("custom_args") or {}
    if custom:
        text += "; reduced or changed arguments for " + ", ".join(
            f"{name} (`{' '.join(args)}`)" for name, args in sorted(custom.items()))
    return text


# ---- the issues' targets at a glance -------------------------------------------------------


UNITS = {"KiB": ("KiB", 1.0), "MiB": ("KiB", 1024.0), "GiB": ("KiB", 1024.0 ** 2),
         "us": ("ms", 1e-3), "ms": ("ms", 1.0), "s": ("ms", 1e3), "x": ("", 1.0), "": ("", 1.0)}
QUANTITY = re.compile(r"([0-9][0-9,]*(?:\.[0-9]+)?)\s*(KiB|MiB|GiB|us|ms|s|x)?(?![A-Za-z])")


def quantity(text: str) -> tuple[float, str] | None:
    """The first number in *text* with its unit, in KiB, ms or none (``"780 MiB (from 50)"``:
    798720.0, "KiB"); None when there is no number."""
    match = QUANTITY.search(text)
    if match is None:
        return None
    base, factor = UNITS[match.group(2) or ""]
    return float(match.group(1).replace(",", "")) * factor, base


def judge(value: str, target: str) -> bool | None:
    """Whether *value* meets *target* (``"<= 0.2x"``, ``"< 100 ms"``, ``">= 0.5"``, ``"0"``);
    None when either cannot be read or their units differ."""
    match = re.fullmatch(r"(<=|>=|<|>)?\s*(.+)", target.strip())
    if not target.strip() or match is None:
        return None
    have, want = quantity(value), quantity(match.group(2))
    if have is None or want is None or have[1] != want[1]:
        return None
    op = match.group(1)
    return {"<=": have[0] <= want[0], "<": have[0] < want[0], ">=": have[0] >= want[0],
            ">": have[0] > want[0], None: have[0] == want[0]}[op]


if TYPE_CHECKING:
    Pick = Callable[[Sequence[Row]], tuple[Row, str] | None]  # a section's row, and its name


def _figure(row: Row) -> str:
    return row.figure.removeprefix("↳ ")


def row_named(pattern: str) -> Pick:
    """The first row whose figure matches *pattern* (a regular expression, whole figure)."""
    def pick(rows: Sequence[Row]) -> tuple[Row, str] | None:
        found = [row for row in rows if re.fullmatch(pattern, _figure(row))]
        return (found[0], "") if found else None
    return pick


def _cell(row: Row, column: str) -> str:
    """*row*'s cell *column* ("ratio" or "ours"), or the other when it is empty: a ratio a
    benchmark reports as its figure's value sits in "ours"."""
    value = getattr(row, column)
    return value or (row.ours if column == "ratio" else row.ratio)


def worst_of(pattern: str, column: str, *, highest: bool = True) -> Pick:
    """Of the rows whose figure matches *pattern* (its group 1 names the row: a profile),
    the one whose *column* is highest (or lowest): the one a target applies to hardest; named
    with every row that ties with it."""
    def pick(rows: Sequence[Row]) -> tuple[Row, str] | None:
        found = []
        for row in rows:
            match = re.fullmatch(pattern, _figure(row))
            amount = quantity(_cell(row, column))
            if match and amount is not None:
                found.append((amount[0], match.group(1), row))
        if not found:
            return None
        worst = (max if highest else min)(found, key=lambda item: item[0])
        names = [name for amount, name, _ in found if amount == worst[0]]
        named = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        return worst[2], named
    return pick


def preferring(pattern: str, names: Sequence[str]) -> Pick:
    """The row for the first of *names* (group 1 of *pattern*) that has one."""
    def pick(rows: Sequence[Row]) -> tuple[Row, str] | None:
        found: dict[str, Row] = {}
        for row in rows:
            match = re.fullmatch(pattern, _figure(row))
            if match:
                found.setdefault(match.group(1), row)
        for name in [*names, *found]:
            if name in found:
                return found[name], name
        return None
    return pick


@dataclass(frozen=True)
class Goal:
    """A target one of the issues sets, judged on a row of a benchmark's section."""

    issue: str
    bench: str
    figure: str
    target: str  # the issue's; "" for a figure the issue asks to see, without a bound
    pick: Pick
    column: str = "ratio"  # the cell judged: "ratio" or "ours"
    which: str = ""  # what the picked row's name stands for ("worst profile", ...)


PROFILE = r"(off|standard|strict)"
GOALS: tuple[Goal, ...] = (
    Goal("#17", "openhands", "a plugin's hook through the launcher, to its exit (median)",
         "< 100 ms", worst_of(r"hook command to its exit, (\w+), median", "ours"), "ours",
         "slowest profile"),
    Goal("#17", "openhands", "a plugin's stdio MCP server through the launcher, to its first "
         "line (median)", "< 100 ms",
         worst_of(r"stdio MCP server to its first line, (\w+), median", "ours"), "ours",
         "slowest profile"),
    Goal("#19", "store", "an extra tenant's install / the first install (time)", "<= 0.2x",
         row_named(r"pool: extra tenant / first install \(time\)")),
    Goal("#19", "store", "disk per extra tenant, one plugin", "<= 150 KiB",
         row_named(r"pool: disk per extra tenant, one plugin"), "ours"),
    Goal("#19", "store", "disk per extra tenant, 3 plugins", "<= 450 KiB",
         row_named(r"pool: disk per extra tenant, 3 plugins"), "ours"),
    Goal("#19", "store", "disk, 1,000 tenants x 3 plugins (extrapolated, not measured)", "",
         row_named(r"pool: 1,000 tenants x 3 plugins.*"), "ours"),
    Goal("#19", "store", "`ohp --help` / `python -c pass`", "<= 2x",
         row_named(r"ohp --help / python -c pass")),
    Goal("#19", "store", "`ohp list` / `python -c pass`", "<= 2x",
         row_named(r"ohp list / python -c pass")),
    Goal("#19", "store", "install into a fresh store / the uv floor that compiles bytecode",
         "<= 1.0x", row_named(r"install into a fresh store / floor with bytecode")),
    Goal("#19", "bridge", "worker cold start (standard), forked by the zygote (the default) / "
         "bare `import msgpack`", "<= 1.0x",
         row_named(r"cold start, zygote / bare msgpack import")),
    Goal("#19", "bridge", "worker cold start (standard), exec'd (the fallback) / bare "
         "`import msgpack`", "<= 1.0x", row_named(r"cold start / bare msgpack import")),
    Goal("#19", "load", "live workers' PSS / as many bare interpreters", "<= 1.2x",
         worst_of(PROFILE + r"(?:, zygote)?: live workers' PSS / bare interpreters", "ratio"),
         which="worst profile"),
    Goal("#19", "load", "PSS of 100 live workers", "< 700 MiB",
         worst_of(PROFILE + r"(?:, zygote)?: PSS scaled to 100 workers", "ours"), "ours",
         "worst profile"),
    Goal("#19", "load", "calls/s and p99 under load (threads x calls over the workers)", "",
         preferring(PROFILE + r"(?:, zygote)?: calls/s.*", ("standard",)), "ours", "profile"),
    Goal("#19", "load", "lost calls under load", "0",
         worst_of(PROFILE + r"(?:, zygote)?: lost calls", "ours"), "ours", "worst profile"),
    Goal("#19", "bridge", "sequential call p50 / raw echo (Worker ping)", "<= 2x",
         row_named(r"sequential ping p50 / raw echo")),
    Goal("#19", "bridge", "sequential call p50 / raw echo (call_tool)", "<= 2x",
         row_named(r"sequential call_tool p50 / raw echo")),
    Goal("#19", "bridge", "sequential call p50 / raw echo (acall)", "<= 2x",
         row_named(r"sequential acall p50 / raw echo")),
    Goal("#19", "bridge", "8 calls in flight, rate / raw echo's (Worker ping)", ">= 0.5",
         row_named(r"ping \d+ deep rate / raw echo")),
    Goal("#19", "bridge", "8 calls in flight, rate / raw echo's (acall)", ">= 0.5",
         row_named(r"acall \d+ in flight rate / raw echo")),
    Goal("#19", "bridge", "8 threads calling, rate / raw echo's (call_tool)", ">= 0.5",
         row_named(r"\d+ threads call_tool rate / raw echo")),
    Goal("#20", "ray", "worker start through Ray / local, the node's venv cached", "",
         row_named(r"through Ray / local: worker start.*")),
    Goal("#20", "ray", "first start on a node (agent, venv built there) / local", "",
         row_named(r"through Ray / local: first start.*")),
    Goal("#20", "ray", "call round trip through Ray / local (median)", "",
         row_named(r"through Ray / local: call_tool round trip.*")),
)
GLANCE_HEADING = "## Targets of #17, #19 and #20 at a glance"
GLANCE_INTRO = """\
Every target issues #17, #19 and #20 set, each judged here against the issue's own figure on
the row of the benchmark's section that holds it (linked; where a benchmark's own target
differs, the section shows the benchmark's). A row without a target is a figure the issue asks
to see. "worst profile": of off, standard and strict, the one furthest from the target."""


def glance_rows(sections: Sequence[Section]) -> list[Row]:
    by_name = {section.entry["name"]: section for section in sections}
    rows = []
    for goal in GOALS:
        bench = BY_NAME[goal.bench]
        section = by_name.get(goal.bench)
        figure = f"{goal.issue}: [{goal.figure}](#{slug(bench)})"
        if section is None:
            rows.append(Row(figure, f"not run ({goal.bench})", target=goal.target))
            continue
        if section.status != "ok":
            rows.append(Row(figure, f"{section.status} ({goal.bench})", target=goal.target))
            continue
        picked = goal.pick(section.rows)
        if picked is None:
            rows.append(Row(figure, "not measured", target=goal.target))
            continue
        row, name = picked
        if name:
            figure += f", {goal.which}: {name}" if goal.which else f", {name}"
        judged = _cell(row, goal.column)
        rows.append(Row(figure, row.ours, row.alternative, row.ratio, goal.target,
                        judge(judged, goal.target)))
    return rows


# ---- the document ---------------------------------------------------------------------------


INTRO = """\
Generated by [`benchmarks/run`](../benchmarks/run) from the JSON each benchmark wrote in one run;
do not edit by hand. Every figure stands beside its floor or the alternative measured in the
same run. **ratio**: as the figure names it (`A / B`); for a figure that names one thing,
isolator's value over the alternative's. Times are the best run unless a row says otherwise
(the least disturbed by other load, as timeit advises). The method of each benchmark is in its
script's docstring; hand-written notes on the figures are in
[benchmarks/README.md](../benchmarks/README.md)."""


def load_run(results: Path) -> dict[str, Any]:
    path = results / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a results directory of benchmarks/run")
    run: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return run


def load_result(results: Path, entry: dict[str, Any]) -> tuple[Any, str | None]:
    """The benchmark's JSON, or why there is none to read."""
    path = results / f"{entry['name']}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except OSError as exc:
        return None, f"no JSON ({exc.strerror}: {path.name})"
    except json.JSONDecodeError as exc:
        return None, f"its JSON could not be read: {exc}"


@dataclass
class Section:
    """One benchmark's part of the document."""

    entry: dict[str, Any]
    data: Any = None
    problem: str | None = None
    rows: tuple[Row, ...] = ()

    @property
    def status(self) -> str:
        if self.entry["status"] == "skipped":
            return "skipped"
        return "failed" if self.problem is not None else "ok"


def build_section(results: Path, entry: dict[str, Any]) -> Section:
    section = Section(entry)
    if entry["status"] == "skipped":
        return section
    if entry["status"] == "failed":
        section.problem = entry.get("reason") or "failed"
        return section
    data, problem = load_result(results, entry)
    if problem is not None:
        section.problem = problem
        return section
    section.data = data
    try:
        section.rows = tuple(RENDERERS[entry["name"]].rows(data))
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError) as exc:
        section.problem = f"the report could not read its JSON: {type(exc).__name__}: {exc}"
    return section


def overview(sections: Sequence[Section]) -> str:
    lines = ["| benchmark | status | time | load after | targets met |",
             "| --- | --- | ---: | ---: | --- |"]
    for section in sections:
        entry = section.entry
        bench = BY_NAME[entry["name"]]
        judged = [row for row in section.rows if row.met is not None]
        met = sum(1 for row in judged if row.met)
        missed = [row.figure.removeprefix("↳ ") for row in judged if not row.met]
        targets = f"{met} of {len(judged)}" if judged else ""
        if missed:
            targets += "; not met: " + "; ".join(missed)
        status = section.status if section.status != "ok" or entry.get("exit", 0) == 0 \
            else f"ok (exit {entry['exit']})"
        duration = fmt_seconds(entry["duration_s"]) if entry.get("duration_s") else ""
        load = entry.get("load_average")
        load_text = "" if load is None else f"{load:.2f}"
        anchor = f"[{bench.title}](#{slug(bench)})"
        lines.append(f"| {anchor} | {status} | {duration} | {load_text} | {cell(targets)} |")
    return "\n".join(lines)


def slug(bench: Benchmark) -> str:
    """The anchor GitHub and mkdocs give the section's heading."""
    heading = f"{bench.title} ({bench.script})".lower()
    return re.sub(r"[^a-z0-9 _-]", "", heading).replace(" ", "-")


def command_text(entry: dict[str, Any]) -> str:
    """The command as a shell takes it: words with spaces quoted (``--note TEXT``)."""
    return " ".join(shlex.quote(word) if any(c.isspace() for c in word) else word
                    for word in entry["command"])


def render_section(section: Section, chart: str | None) -> str:
    entry = section.entry
    bench = BY_NAME[entry["name"]]
    parts = [f"## {bench.title} (`{bench.script}`)", summary_line(bench.path)]
    if section.status == "skipped":
        parts.append(f"**Skipped**: {entry.get('reason', 'no reason given')}.")
        return "\n\n".join(parts)
    exit_code = entry.get("exit")
    ran = f"Took {fmt_seconds(entry.get('duration_s', 0.0))}, exit status {exit_code}."
    if section.status == "failed":
        parts.append(f"**Failed**: {section.problem}. {ran}")
    else:
        if exit_code not in (0, None):
            ran += " The benchmark wrote its figures but exited non-zero (see its stderr below)."
        parts.append(ran)
        parts.append(table(section.rows))
        notes = RENDERERS[entry["name"]].notes(section.data)
        if notes:
            parts.append("\n".join(f"* {note}" for note in notes))
        if chart is not None:
            parts.append(f"![{bench.title}: chart]({chart})")
    parts.append(f"Command (`$RESULTS`: the results directory):\n\n```\n{command_text(entry)}\n"
                 "```")
    tail = entry.get("stderr_tail", "").strip()
    if tail and (section.status == "failed" or exit_code not in (0, None)):
        parts.append(f"stderr (tail):\n\n```\n{tail}\n```")
    if section.status == "ok":
        parts.append(f"**How to read** (from the docstring of [`benchmarks/{bench.script}`]"
                     f"(../benchmarks/{bench.script})):\n\n{how_to_read(bench.path)}")
    return "\n\n".join(parts)


def render_markdown(run: dict[str, Any], sections: Sequence[Section],
                    charts: dict[str, str], charts_note: str | None) -> str:
    parts = ["# Benchmarks", INTRO]
    if run.get("quick"):
        parts.append("> **Quick run** (`--quick`): the smallest repeat counts, to check that "
                     "every benchmark runs; the figures below are noisy and the targets are "
                     "judged on fewer samples, some on fewer plugins than they are set for.")
    if any(goal.bench == section.entry["name"] for goal in GOALS for section in sections):
        parts += [GLANCE_HEADING, GLANCE_INTRO, table(glance_rows(sections))]
    parts += ["## Machine and run", machine_table(run), "## Overview", overview(sections)]
    if charts_note:
        parts.append(charts_note)
    parts += [render_section(section, charts.get(section.entry["name"]))
              for section in sections]
    return "\n\n".join(parts) + "\n"


@dataclass
class Rendered:
    """What :func:`render` wrote."""

    markdown: Path
    charts: list[Path]
    text: str


def render(results: Path, out: Path, only: Sequence[str] | None = None,
           note: str | None = None) -> Rendered:
    """Write the report for the results directory *results* to *out*, charts to out/../img;
    *note* replaces the run's note (``--note`` when rendering ``--from`` a directory)."""
    run = load_run(results)
    if note is not None:
        run["note"] = note
    entries = [entry for entry in run["benchmarks"]
               if entry["name"] in RENDERERS and (not only or entry["name"] in only)]
    sections = [build_section(results, entry) for entry in entries]
    img = out.parent / "img"
    charts: dict[str, str] = {}
    written: list[Path] = []
    note = None
    drawable = [s for s in sections if s.status == "ok"]
    if drawable and have_matplotlib():
        for section in drawable:
            name = section.entry["name"]
            path = img / f"bench-{name}.png"
            try:
                drawn = draw_chart(name, section.data, path)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                print(f"report: no chart for {name}: {type(exc).__name__}: {exc}",
                      file=sys.stderr)
                drawn = False
            if drawn:
                charts[name] = f"img/{path.name}"
                written.append(path)
    elif drawable:
        note = ("Charts are not drawn: matplotlib is not installed (`pip install -e "
                "'.[bench]'`, then `benchmarks/run --from DIR`).")
    _remove_stale_charts(img, written)
    text = render_markdown(run, sections, charts, note)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return Rendered(out, written, text)


def _remove_stale_charts(img: Path, written: Sequence[Path]) -> None:
    """Charts of benchmarks this report does not show, left by an earlier render."""
    if not img.is_dir():
        return
    keep = {path.name for path in written}
    for path in img.glob("bench-*.png"):
        if path.name not in keep:
            path.unlink()
