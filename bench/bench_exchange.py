"""`make bench` (issue 21): Parquet exports and reports over many of them.

1. Export of the 5M-request store `bench_reports.py` builds: wall time, peak RSS, size
   on disk per 1M requests; and the rerun (nothing changed: nothing written).
2. A 3M-line log dealt in turn to three "servers" (one shared seed), each imported into
   its own store and exported; `report overview` and `report sessions` `--from` the three
   exports beside the same reports on one store that imported the whole log.

Every figure is a fresh process (`logalyse ...`), process start included.

    python bench/bench_exchange.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from bench_reports import build_store  # noqa: E402

from bench import DATA, ensure_log, run  # noqa: E402

EXE = [sys.executable, "-m", "logalyse"]


def size_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def three_servers() -> tuple[list[Path], Path]:
    """Exports of three stores that each imported a third of a 3M-line log (round robin,
    one shared seed), and a store that imported it all (kept in bench/.data)."""
    from logalyse.store import SCHEMA_VERSION

    base = DATA / f"three-servers-v{SCHEMA_VERSION}"
    exports = [base / f"export{i}" for i in range(3)]
    whole = base / "whole.duckdb"
    if whole.exists():
        return exports, whole
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    log = ensure_log(3_000_000)
    print("dealing the 3M-line log to three servers (once)...", file=sys.stderr)
    parts = [open(base / f"server{i}.log", "wb") for i in range(3)]
    with open(log, "rb") as f:
        for n, line in enumerate(f):
            parts[n % 3].write(line)
    for p in parts:
        p.close()
    seed = base / "seed"
    subprocess.run([*EXE, "keys", "init", "--shared", "-q", "-o", str(seed)], check=True)
    for i in range(3):
        db = str(base / f"server{i}.duckdb")
        copy = base / f"seed{i}"
        shutil.copyfile(seed, copy)
        subprocess.run([*EXE, "--db", db, "keys", "adopt", "-q", str(copy)], check=True)
        subprocess.run([*EXE, "--db", db, "import", "-q", str(base / f"server{i}.log")], check=True)
        subprocess.run([*EXE, "--db", db, "export", "-q", str(exports[i])], check=True)
        (base / f"server{i}.log").unlink()
    seed.unlink()
    subprocess.run([*EXE, "--db", str(whole), "import", "-q", str(log)], check=True)
    return exports, whole


def main() -> None:
    store = build_store()
    (requests,) = (
        __import__("duckdb")
        .connect(str(store), read_only=True)
        .execute("SELECT count(*) FROM requests")
        .fetchone()
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="logalyse-export-") as tmp:
        out = Path(tmp) / "export"
        wall, rss, code = run([*EXE, "--db", str(store), "export", "-q", str(out)])
        assert code == 0
        per_million = size_mib(out) / (requests / 1e6)
        rows.append(
            (
                f"export of a {requests / 1e6:.0f}M-request store",
                f"{wall:.1f} s, {rss / 1024:.0f} MiB; {per_million:.1f} MiB per 1M requests "
                f"(the store: {store.stat().st_size / 2**20 / (requests / 1e6):.1f})",
            )
        )
        again, _, _ = run([*EXE, "--db", str(store), "export", "-q", str(out)])
        rows.append(("the same export again (nothing changed)", f"{again:.1f} s"))
    exports, whole = three_servers()
    froms = [a for e in exports for a in ("--from", str(e))]
    for name in ("overview", "sessions"):
        merged = min(run([*EXE, "report", name, "--json", *froms])[:2] for _ in range(2))
        one = min(run([*EXE, "--db", str(whole), "report", name, "--json"])[:2] for _ in range(2))
        rows.append(
            (
                f"report {name}: --from 3 x 1M exports | one 3M store",
                f"{merged[0]:.2f} s, {merged[1] / 1024:.0f} MiB | "
                f"{one[0]:.2f} s, {one[1] / 1024:.0f} MiB",
            )
        )
    print()
    print("| exports (issue 21) | |")
    print("|---|---|")
    for label, value in rows:
        print(f"| {label} | {value} |")


if __name__ == "__main__":
    main()
