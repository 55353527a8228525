"""`make bench` (part 2): time every report on a 5M-request store, process start included.

The store is the 1M-line bench log imported once, then copied four times in SQL with
its days shifted by 7, 14, 21 and 28 days (and distinct visitor ids), so 5M requests
over five weeks. Built once per schema version in bench/.data/reports-5M-v<N>.duckdb.

    python bench/bench_reports.py [--geoip PATH]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from bench import DATA, ensure_log  # noqa: E402


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


if __name__ == "__main__":
    main()
