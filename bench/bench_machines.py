"""`make bench` (part 5): how well machines with a browser's user agent are told by their
behaviour (`logalyse.enrich.behaviour`), on a generated log whose ground truth is known:
people as `loggen` makes them, and `loggen.machine_lines` machines of every kind each day.

    python bench/bench_machines.py [--lines 200000] [--days 7] [--per-kind 3]
"""

from __future__ import annotations

import argparse
import collections
import tempfile
from datetime import datetime, timezone
from pathlib import Path


def main() -> None:
    from logalyse.ingest import ingest
    from logalyse.loggen import generate_lines, machine_kind, machine_lines, with_machines
    from logalyse.store import Store

    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--per-kind", type=int, default=3)
    args = parser.parse_args()
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    tmp = Path(tempfile.mkdtemp())
    log = tmp / "access.log"
    with open(log, "w") as f:
        lines = with_machines(
            generate_lines(args.lines, seed=5, start=start, days=args.days, returning=0.1),
            machine_lines(seed=5, start=start, days=args.days, per_kind=args.per_kind),
        )
        f.writelines(line + "\n" for line in lines)
    with Store(tmp / "s.duckdb") as store:
        ingest(store, [log])
        rows = store.query(
            "SELECT u.ua, r.bot_reason IS NOT NULL, count(*), count(DISTINCT r.visitor_id) "
            "FROM requests r JOIN user_agents u ON u.id = r.ua_id "
            "WHERE NOT coalesce(u.is_bot, FALSE) GROUP BY ALL"
        )
    got: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    people = people_marked = 0
    for ua, marked, n, _ in rows:
        kind = machine_kind(ua) or "person"
        total[kind] += n
        got[kind] += n if marked else 0
    people, people_marked = total.pop("person"), got.pop("person")
    caught = sum(got.values())
    print(
        f"\n| machines with a browser's user agent ({args.lines:,} lines of people, "
        f"{args.days} days, {args.per_kind} machines of each kind a day) "
        "| requests | marked | recall |"
    )
    print("|---|---|---|---|")
    for kind in ("rate", "regular", "repeat", "shape", "stealth"):
        print(f"| {kind} | {total[kind]:,} | {got[kind]:,} | {got[kind] / total[kind]:.1%} |")
    print(f"| people's requests (browser user agents) | {people:,} | {people_marked:,} | |")
    precision = caught / (caught + people_marked) if caught + people_marked else 1.0
    recall = caught / sum(total.values())
    print(f"\nprecision {precision:.1%}, recall {recall:.1%} (stealth included)")


if __name__ == "__main__":
    main()
