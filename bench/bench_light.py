"""`make bench` (issue 19): light enough for a 1 GB machine, beside GoAccess, one run.

Prints one table: the steady RSS of a `tail` fed a live log; a nightly import of a
10,000-line day into a store that holds yesterday, its cron re-run; a report on a
140k-request store; a 1M-line import on two cores and on one (`taskset -c 0`); a 1M-line
log with the cardinalities of a real one (`loggen --realistic`). GoAccess runs on the same
files in the same run (its HTML report for the day, as a cron job would write it; JSON
for the 1M-line logs, as `bench.py` does). Every logalyse figure is a fresh process,
process start included; all enrichment is on, countries included.

    python bench/bench_light.py [--runs 3] [--tail-minutes 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from bench_tail import measure  # noqa: E402

from bench import DATA, default_geoip, ensure_log, run  # noqa: E402

EXE = [sys.executable, "-m", "logalyse"]


def day_log(name: str, lines: int, day: int, seed: int) -> Path:
    """A generated log of one day of November 2026 (written once)."""
    path = DATA / name
    if not path.exists():
        from logalyse.loggen import write_log

        DATA.mkdir(parents=True, exist_ok=True)
        start = datetime(2026, 11, day, tzinfo=timezone.utc)
        with open(path.with_suffix(".tmp"), "wb") as f:
            write_log(f, lines, seed=seed, start=start, days=1)
        path.with_suffix(".tmp").rename(path)
    return path


def realistic_log(lines: int) -> Path:
    path = DATA / f"access-{lines // 1000}k-realistic.log"
    if not path.exists():
        print(f"writing {path} ({lines:,} lines, once)...", file=sys.stderr)
        DATA.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".tmp"), "wb") as f:
            subprocess.run(
                [sys.executable, "-m", "logalyse.loggen", str(lines), "--realistic"],
                stdout=f,
                check=True,
            )
        path.with_suffix(".tmp").rename(path)
    return path


def best(runs: int, cmd: list[str], before: Callable[[], None] | None = None) -> tuple[float, int]:
    """(best wall seconds, peak RSS KiB of that run) over `runs` fresh processes."""
    results = []
    for _ in range(runs):
        if before:
            before()
        wall, rss, code = run(cmd)
        if code != 0:
            sys.exit(f"{' '.join(cmd)} failed with exit code {code}")
        results.append((wall, rss))
    return min(results)


def goaccess(log: Path, html: bool = False, one_core: bool = False) -> tuple[float, int] | None:
    exe = shutil.which("goaccess")
    if exe is None:
        return None
    out = Path(tempfile.mkdtemp(prefix="goaccess-bench-")) / ("out.html" if html else "out.json")
    cmd = [exe, str(log), "--log-format=COMBINED", "-o", str(out)]
    try:
        return best(2, ["taskset", "-c", "0", *cmd] if one_core else cmd)
    finally:
        shutil.rmtree(out.parent)


def _remover(db: Path) -> Callable[[], None]:
    def remove() -> None:
        for suffix in ("", ".keys"):
            Path(str(db) + suffix).unlink(missing_ok=True)

    return remove


def fmt(m: tuple[float, int] | None) -> str:
    return "-" if m is None else f"{m[0]:.2f} s, {m[1] / 1024:.0f} MiB"


def ratio(ours: tuple[float, int], theirs: tuple[float, int] | None) -> str:
    return "" if theirs is None else f" ({theirs[0] / ours[0]:.2f}x GoAccess's speed)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tail-minutes", type=float, default=2.0)
    args = ap.parse_args()
    # Bytecode as an installed package has it, even where PYTHONDONTWRITEBYTECODE is set
    # (compiling logalyse's modules again at each start costs a small run ~50 ms).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "logalyse")])
    geoip = default_geoip()
    geo = ["--geoip", str(geoip)] if geoip else []
    rows: list[tuple[str, str, str, str]] = []
    work = Path(tempfile.mkdtemp(prefix="logalyse-light-"))
    try:
        # The nightly cron job: yesterday is in the store, today's 10k lines come in.
        yesterday, today = (
            day_log("day1-10k.log", 10_000, 1, 11),
            day_log("day2-10k.log", 10_000, 2, 12),
        )
        seeded = work / "seeded.duckdb"
        subprocess.run(
            [*EXE, "--db", str(seeded), "import", "-q", *geo, str(yesterday)], check=True
        )
        db = work / "nightly.duckdb"

        def fresh() -> None:  # the store as it was last night, its day keys with it
            for suffix in ("", ".keys"):
                Path(str(db) + suffix).unlink(missing_ok=True)
                if Path(str(seeded) + suffix).exists():
                    shutil.copy2(str(seeded) + suffix, str(db) + suffix)

        nightly_cmd = [*EXE, "--db", str(db), "import", "-q", *geo, str(today)]
        nightly = best(args.runs, nightly_cmd, fresh)
        ga_day = goaccess(today, html=True)
        rows.append(
            (
                "nightly import of a 10,000-line day",
                fmt(nightly),
                fmt(ga_day),
                "<= 0.6 s, <= 100 MiB",
            )
        )
        rerun = best(args.runs, nightly_cmd)
        rows.append(("the same file again (cron re-run)", fmt(rerun), "re-reads it", "<= 0.2 s"))

        # A report on a 140k-request store.
        store = work / "140k.duckdb"
        log140 = ensure_log(140_000)
        subprocess.run([*EXE, "--db", str(store), "import", "-q", *geo, str(log140)], check=True)
        for name in ("overview", "sessions"):
            rep = best(args.runs, [*EXE, "--db", str(store), "report", name])
            rows.append(
                (f"report {name} on a 140k-request store", fmt(rep), "-", "<= 0.25 s, <= 80 MiB")
            )

        # 1M lines: two cores, one core, and realistic cardinalities.
        big = ensure_log(1_000_000)
        real = realistic_log(1_000_000)
        for label, log, pin, target in (
            ("1M-line import, all enrichment", big, False, ">= 2x GoAccess, <= 256 MiB"),
            ("the same on one core (taskset -c 0)", big, True, ">= 1.2x GoAccess"),
            (
                "1M lines of realistic cardinality (loggen --realistic)",
                real,
                False,
                ">= 2x GoAccess",
            ),
        ):
            million = work / "1M.duckdb"
            clean = _remover(million)
            cmd = [*EXE, "--db", str(million), "import", "-q", *geo, str(log)]
            ours = best(1, ["taskset", "-c", "0", *cmd] if pin else cmd, clean)
            theirs = goaccess(log, one_core=pin)
            rows.append((label, fmt(ours) + ratio(ours, theirs), fmt(theirs), target))

        # The resident tail, fed a live log at 200 lines/s.
        sent, stored, samples = measure(args.tail_minutes, 200, geoip)
        last = [x for x in samples if x[0] >= samples[-1][0] - 60] if samples else []
        steady = statistics.median(r for _, r, _ in last) if last else 0.0
        anon = statistics.median(a for _, _, a in last) if last else 0.0
        peak = max((r for _, r, _ in samples), default=0.0)
        rows.insert(
            0,
            (
                f"`tail` steady state, a live log ({args.tail_minutes:g} min at 200 lines/s)",
                f"{steady:.0f} MiB, median of its last minute ({anon:.0f} MiB anonymous); "
                f"{peak:.0f} MiB peak ({stored:,}/{sent:,} lines stored)",
                "(real-time HTML server)",
                "<= 80 MiB",
            ),
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    version = subprocess.run(["goaccess", "--version"], capture_output=True, text=True).stdout
    print()
    name = version.splitlines()[0] if version else "absent"
    print(f"Issue 19's table ({os.cpu_count()} cores; GoAccess: {name}):")
    print()
    print("| case | logalyse | GoAccess, same input | target |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
