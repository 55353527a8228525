"""`make bench` (part 2): time every report on a 5M-request store, process start included,
and the dashboard of its last 30 days (budget: 1 s, 128 MiB peak RSS, as a user runs it).

The store is the 1M-line bench log imported once, then copied four times in SQL with
its days shifted by 7, 14, 21 and 28 days (and distinct visitor ids), so 5M requests
over five weeks. Built once per schema version in bench/.data/reports-5M-v<N>.duckdb.

    python bench/bench_reports.py [--geoip PATH]
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from bench import DATA, ensure_log, run  # noqa: E402


def build_store(copies: int = 4) -> Path:
    from logalyse.store import SCHEMA_VERSION

    # Rebuilt for each schema version: timings are of a store the import made, not migrated.
    db = DATA / f"reports-5M-v{SCHEMA_VERSION}.duckdb"
    if db.exists():
        return db
    log = ensure_log(1_000_000)
    tmp = db.with_suffix(".tmp.duckdb")
    tmp.unlink(missing_ok=True)
    print(f"building {db} (once)...", file=sys.stderr)
    subprocess.run(
        [sys.executable, "-m", "logalyse", "--db", str(tmp), "import", "-q", str(log)], check=True
    )
    import duckdb

    from logalyse.store import remake_all_sessions

    con = duckdb.connect(str(tmp))
    cols = [r[0] for r in con.execute("DESCRIBE requests").fetchall()]
    for k in range(1, copies + 1):
        select = ", ".join(
            f"ts + INTERVAL {7 * k} DAY"
            if c == "ts"
            else f"visitor_id + {k}"
            if c == "visitor_id"
            else f"line_no + {k * 10_000_000}"
            if c == "line_no"
            else c
            for c in cols
        )
        con.execute(f"INSERT INTO requests SELECT {select} FROM requests WHERE line_no < 10000000")
    remake_all_sessions(con)  # the copies bypassed the import, which keeps sessions
    con.execute("CHECKPOINT")
    con.close()
    tmp.rename(db)
    Path(str(tmp) + ".keys").unlink(missing_ok=True)
    return db


def main() -> None:
    from logalyse.cli import REPORT_HELP

    db = build_store()
    print()
    print("| report (5M requests, wall incl. process start, best of 3) | seconds |")
    print("|---|---|")
    for name in REPORT_HELP:
        best = 1e9
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "logalyse", "--db", str(db), "report", name, "--json"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            best = min(best, time.perf_counter() - t)
        print(f"| {name} | {best:.2f} |")
    dashboard(db)


def dashboard(db: Path) -> None:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    (newest,) = con.execute("SELECT max(ts) FROM requests").fetchall()[0]
    con.close()
    since = (newest.date() - timedelta(days=29)).isoformat()
    out = DATA / "dashboard.html"
    runs = [
        run([sys.executable, "-m", "logalyse", "--db", str(db), "report", "dashboard", "-q",
             "--since", since, "--until", newest.date().isoformat(), "-o", str(out)])
        for _ in range(3)
    ]  # fmt: skip
    assert all(code == 0 for _, _, code in runs), runs
    wall = min(w for w, _, _ in runs)
    rss = max(r for _, r, _ in runs) / 1024
    # What any process pays before logalyse does anything: this VM's speed varies 2-3x
    # from day to day, so the page's time is read beside it.
    floor = [run([sys.executable, "-c", FLOOR]) for _ in range(3)]
    print()
    print("| dashboard, 30 days of 5M requests (best of 3; budget 1 s, 128 MiB) | |")
    print("|---|---|")
    print(f"| wall, process start included | {wall:.2f} s |")
    print(f"| peak RSS | {rss:.0f} MiB |")
    print(f"| page | {out.stat().st_size / 1024:.0f} KiB |")
    print(
        f'| process floor, same run: `python -c "{FLOOR}"` | '
        f"{min(w for w, _, _ in floor):.2f} s, {max(r for _, r, _ in floor) / 1024:.0f} MiB |"
    )


FLOOR = "import duckdb; duckdb.connect().execute('select 1')"


if __name__ == "__main__":
    main()
