"""`python -m bench`: measure, print, save JSON and a plot, optionally rewrite the docs page.

python -m bench                         every system, 3 runs (about 45 minutes)
python -m bench --quick --only scoter   tiny sizes, one run: the CI smoke run
python -m bench --only scoter,huey --backends sqlite --runs 5
python -m bench --only scoter-process,huey-process --runs 1   the process executors only
python -m bench --only scoter-sqlite,scoter-metrics-sqlite   metrics on vs off, same run
python -m bench --render bench/results/latest.json --write-docs   docs from saved results
python -m bench maintenance --tasks 200000   maintenance at scale (bench/maintenance.py)
python -m bench lateness                     how late scheduled tasks start (bench/lateness.py)
python -m bench consumers                    drains by 1, 2, 4 processes (bench/consumers.py)
python -m bench limits                       what a limit costs a claim (bench/limits.py)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import traceback
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import docs, machine, metrics, plot, report
from bench.runner import QUICK, Run, Sizes, run_system
from bench.systems import BACKENDS, SYSTEMS, System

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs"
console = Console() if sys.stdout.isatty() else Console(width=200)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes and one run (smoke test)")
    p.add_argument(
        "--only",
        default="",
        help="systems by name, name-executor or key: scoter,huey-process; variants such as "
        "scoter-metrics run only when named",
    )
    p.add_argument("--backends", default="", help=f"subset of {','.join(BACKENDS)}")
    p.add_argument("--runs", type=int, help="runs per figure (default 3; 1 with --quick)")
    p.add_argument("--drain", type=int, help="tasks per drain (default 20000)")
    p.add_argument("--latency", type=int, help="sequential latency tasks (default 500)")
    p.add_argument("--results", type=Path, default=HERE / "results", help="results folder")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--write-docs", action="store_true", help="rewrite docs/performance.md")
    p.add_argument("--render", type=Path, help="report a saved results.json, measure nothing")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["maintenance"]:
        from bench import maintenance

        maintenance.main(argv[1:])
        return
    if argv[:1] == ["lateness"]:
        from bench import lateness

        lateness.main(argv[1:])
        return
    if argv[:1] == ["consumers"]:
        from bench import consumers

        consumers.main(argv[1:])
        return
    if argv[:1] == ["limits"]:
        from bench import limits

        limits.main(argv[1:])
        return
    args = parse(argv)
    if args.render:
        results = json.loads(args.render.read_text())
        png = None if args.no_plot else plot.drain_plot(results, args.render.parent / "drain.png")
        finish(results, png, args)
        return
    out = args.results / datetime.now().strftime("%Y%m%d-%H%M%S")
    (out / "logs").mkdir(parents=True)
    results = measure(args, out)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    shutil.copyfile(out / "results.json", args.results / "latest.json")
    png = None if args.no_plot else plot.drain_plot(results, out / "drain.png")
    console.print(f"results: {out / 'results.json'}" + (f", plot: {png}" if png else ""))
    finish(results, png, args)


def finish(results: dict[str, Any], png: Path | None, args: argparse.Namespace) -> None:
    report.print_report(console, results)
    if args.write_docs:
        name = None
        if png is not None:
            name = "performance-drain.png"
            shutil.copyfile(png, DOCS / name)
        (DOCS / "performance.md").write_text(docs.render(results, name))
        console.print(f"wrote {DOCS / 'performance.md'}")


def sizes_of(args: argparse.Namespace) -> tuple[Sizes, int]:
    sizes = QUICK if args.quick else Sizes()
    if args.drain:
        sizes = replace(sizes, drain=args.drain)
    if args.latency:
        sizes = replace(sizes, latency=args.latency)
    runs = args.runs or (1 if args.quick else 3)
    return sizes, runs


def selected(args: argparse.Namespace) -> list[System]:
    only = {w.strip() for w in args.only.split(",") if w.strip()}
    backends = {w.strip() for w in args.backends.split(",") if w.strip()}
    return [
        s
        for s in SYSTEMS
        if (not backends or s.backend in backends)
        and (
            {s.family, s.key} & only if s.variant else not only or {s.name, s.family, s.key} & only
        )
    ]


def measure(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    sizes, runs = sizes_of(args)
    started, t0 = datetime.now(timezone.utc), time.perf_counter()
    load_before = os.getloadavg()[0]
    systems = {s.key: _entry(s, sizes) for s in selected(args)}
    ready = _check(selected(args), systems, out)
    samples: dict[str, list[Run]] = {s.key: [] for s in ready}
    for i in range(runs):
        for system in ready:
            _one(system, sizes, out, i, runs, samples, systems)
    for system in ready:
        _collect(systems[system.key], samples[system.key])
    return {
        "started": started.isoformat(timespec="seconds"),
        "runs": runs,
        "duration_s": time.perf_counter() - t0,
        "sizes": asdict(sizes),
        "machine": machine.describe({s.package: s.version for s in selected(args)}),
        "systems": systems,
        "ratios": metrics.ratios(systems),
        "targets": metrics.check_targets(systems),
        "load": {"before": load_before, "after": os.getloadavg()[0]},
    }


def _entry(system: System, sizes: Sizes) -> dict[str, Any]:
    return {
        "name": system.name,
        "backend": system.backend,
        "executor": system.executor,
        "variant": system.variant,
        "groups": list(system.groups),
        "version": system.version,
        "concurrency": system.concurrency,
        "sizes": asdict(sizes.for_system(system)),
        "skipped": None,
        "errors": [],
        "commands": {},
        "metrics": {},
    }


def _check(chosen: list[System], systems: dict[str, Any], out: Path) -> list[System]:
    ready = []
    for system in chosen:
        problem = system.check(out)
        if problem:
            systems[system.key]["skipped"] = problem
            console.print(f"[yellow]skip[/] {system.key}: {problem}", highlight=False)
        else:
            ready.append(system)
    return ready


def _one(
    system: System,
    sizes: Sizes,
    out: Path,
    i: int,
    runs: int,
    samples: dict[str, list[Run]],
    systems: dict[str, Any],
) -> None:
    console.print(f"[bold]{system.key}[/] run {i + 1}/{runs} …", highlight=False)
    t0 = time.perf_counter()
    try:
        run = run_system(system, sizes, out, out / "logs")
    except Exception as exc:  # a bug of the harness: keep the other systems going
        run = Run(errors=[repr(exc)[:800]])
        (out / "logs" / f"{system.key}-error.txt").write_text(traceback.format_exc())
    for error in run.errors:
        systems[system.key]["errors"].append(f"run {i + 1}: {error}")
        console.print(f"  [red]failed[/] {error}", highlight=False)
    samples[system.key].append(run)
    if i == 0:
        systems[system.key]["commands"] = run.commands
        for label, command in run.commands.items():
            console.print(f"  {label}: {command}", highlight=False, soft_wrap=True)
    brief = ", ".join(f"{k} {v:,.1f}" for k, v in run.metrics.items() if "wall" not in k)
    console.print(f"  {brief} [dim]({time.perf_counter() - t0:.0f} s)[/]", highlight=False)


def _collect(entry: dict[str, Any], runs: list[Run]) -> None:
    if runs:
        entry["metrics"] = metrics.aggregate([r.metrics for r in runs])
