"""What bounds the import's speed: the fastest pipelines DuckDB allows on this machine.

Issue 6 asks for >= 400k lines/s (and 10x GoAccess) in <= 256 MiB. This measures, on the
bench's 1M-line log, pipelines that do *less* than `logalyse import` does, so that their
speed is a ceiling for it:

- `csv`: DuckDB's CSV reader alone (2 threads) splits the log into 10 text columns and
  parses times, request lines and numbers. Nothing is enriched, hashed or written.
- `bulk`: the whole file in two streaming passes over DuckDB's CSV reader (2 threads), with
  the real schema and enrichment: distinct (day, address, user agent) first, for GeoIP and
  visitor ids; then one INSERT of every request, a checkpoint and the sessions. It leaves out
  what the import must also do: line numbers and byte offsets (the exactly-once checkpoints,
  and a kill -9 that loses nothing), malformed lines, escapes, X-Forwarded-For, hosts,
  campaigns, and the ~0.3 s a command takes to start. `--line-numbers` adds them the only way
  DuckDB's reader allows (row_number() over the file, in file order).

    python bench/bench_floor.py [--memory-limit 200MB] [--line-numbers] [--threads 2]
                                [--variant csv|bulk]

Each variant runs in a fresh process; peak RSS is that process's own.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from bench import default_geoip, ensure_log  # noqa: E402

LINES = 1_000_000


def csv_source(log: Path) -> str:
    csv = (
        f"read_csv('{log}', delim=' ', quote='\"', escape='', header=false, all_varchar=true, "
        "strict_mode=false, null_padding=true, "
        "names=['ip','ident','usr','t1','t2','req','status','bytes','ref','ua'])"
    )
    return f"""(
        SELECT strptime(substr(t1, 2) || ' ' || rtrim(t2, ']'), '%d/%b/%Y:%H:%M:%S %z')::TIMESTAMP
               AS ts, ip AS client, split_part(req, ' ', 1) AS method,
               split_part(req, ' ', 2) AS tgt, split_part(req, ' ', 3) AS proto,
               try_cast(status AS INTEGER) AS status,
               CASE WHEN bytes = '-' THEN 0 ELSE try_cast(bytes AS BIGINT) END AS bytes,
               nullif(ref, '-') AS ref, CASE WHEN ua = '-' THEN '' ELSE ua END AS ua
        FROM {csv})"""


def run_csv(log: Path) -> str:
    import duckdb

    con = duckdb.connect(config={"threads": 2, "temp_directory": ""})
    con.execute(f"CREATE TABLE x AS SELECT * FROM {csv_source(log)}")
    return f"{con.execute('SELECT count(*) FROM x').fetchall()[0][0]:,} rows in memory"


def run_bulk(
    log: Path, memory_limit: str, line_numbers: bool, geoip: Path | None, threads: int
) -> str:
    from logalyse.enrich import classify_agent
    from logalyse.enrich.geo import GeoIP
    from logalyse.enrich.pages import is_asset_sql, pageview_sql, referrer_host_steps, source_sql
    from logalyse.privacy import (
        client_address,
        hmac_pads,
        scrub_query_sql,
        strip_referrer_sql,
        visitor_id_sql,
    )
    from logalyse.store import Store, remake_dirty_sessions

    tmp = tempfile.mkdtemp()
    store = Store(Path(tmp) / "floor.duckdb", memory_limit=memory_limit)
    store.attach()
    db = store.con
    db.execute(f"SET threads = {threads}")
    # In file order only if line numbers are wanted: otherwise DuckDB may reorder (less memory).
    db.execute(f"SET preserve_insertion_order = {str(line_numbers).lower()}")
    parsed = csv_source(log)
    db.execute(
        # The import's visitor key: (day, client, forwarded-for, user agent, host); this
        # log has neither X-Forwarded-For nor $host.
        "CREATE TABLE memory.main.combos AS SELECT ts::DATE AS day, client, ua, "
        f"hash(ts::DATE, client, '', ua, '') AS ck FROM {parsed} GROUP BY ALL"
    )
    geo = GeoIP(geoip) if geoip else None
    clients = [
        r[0] for r in db.execute("SELECT DISTINCT client FROM memory.main.combos").fetchall()
    ]
    addrs = [client_address(c, "") for c in clients]
    countries = [geo.lookup(a)[0] if geo else None for a in addrs]
    uas = [r[0] for r in db.execute("SELECT DISTINCT ua FROM memory.main.combos").fetchall()]
    bots = [classify_agent(u).is_bot for u in uas]
    db.execute(
        "CREATE TABLE memory.main.ipmap AS SELECT unnest($1::VARCHAR[]) AS client, "
        "unnest($2::VARCHAR[]) AS addr, unnest($3::VARCHAR[]) AS country",
        [clients, addrs, countries],
    )
    db.execute(
        "CREATE TABLE memory.main.uamap AS SELECT hash(u) AS uh, "
        "(row_number() OVER ())::INTEGER AS ua_id, b AS is_bot "
        "FROM (SELECT unnest($1::VARCHAR[]) AS u, unnest($2::BOOLEAN[]) AS b)",
        [uas, bots],
    )
    days = [r[0] for r in db.execute("SELECT DISTINCT day FROM memory.main.combos").fetchall()]
    pads = [hmac_pads(os.urandom(32)) for _ in days]
    db.execute(
        "CREATE TABLE memory.main.k AS SELECT unnest($1::DATE[]) AS day, "
        "unnest($2::BLOB[]) AS ipad, unnest($3::BLOB[]) AS opad",
        [days, [p[0] for p in pads], [p[1] for p in pads]],
    )
    vid = visitor_id_sql("k.ipad", "k.opad", "m.addr", "c.ua", "''")
    db.execute(
        f"CREATE TABLE memory.main.vmap AS SELECT c.ck, {vid} AS vid, m.country "
        "FROM memory.main.combos c JOIN memory.main.ipmap m USING (client) "
        "JOIN memory.main.k USING (day)"
    )
    db.execute("DROP TABLE memory.main.combos")
    (a, e1), (b, e2), (_, e3) = referrer_host_steps("r_raw")
    kind, name = source_sql("NULL", "NULL", "NULL", "referrer_host", "''", ())
    pageview = pageview_sql("u.is_bot", "method", "status", "is_asset")
    query = "CASE WHEN contains(tgt, '?') THEN substr(tgt, instr(tgt, '?') + 1) END"
    line_no = "row_number() OVER ()" if line_numbers else "0"
    (n,) = db.execute(
        f"""
        INSERT INTO requests BY NAME
        SELECT date_trunc('second', ts) AS ts, v.vid AS visitor_id, method,
               split_part(tgt, '?', 1) AS path, q AS query, proto AS protocol, status, bytes,
               referrer, u.ua_id, 1 AS source_id, {line_no} AS line_no, v.country, u.is_bot,
               {pageview} AS is_pageview, referrer_host, {kind} AS source_kind,
               {name} AS source_name
        FROM (
            SELECT *, {e3} AS referrer_host FROM (
                SELECT *, {e2} AS {b} FROM (
                    SELECT *, {e1.replace("r_raw", "ref")} AS {a},
                           {strip_referrer_sql("ref")} AS referrer,
                           {scrub_query_sql(query)} AS q,
                           {is_asset_sql("split_part(tgt, '?', 1)")} AS is_asset,
                           hash(ts::DATE, client, '', ua, '') AS ck, hash(ua) AS uh
                    FROM {parsed})))
        JOIN memory.main.vmap v USING (ck) JOIN memory.main.uamap u USING (uh)
        """
    ).fetchall()[0]
    db.execute("CHECKPOINT")
    db.execute(
        "INSERT OR REPLACE INTO meta SELECT 'sessions_dirty', "
        "strftime(min(ts), '%Y-%m-%dT%H:%M:%S') || '|' || strftime(max(ts), '%Y-%m-%dT%H:%M:%S') "
        "FROM requests"
    )
    db.execute("SET threads = 1")
    remake_dirty_sessions(db)
    (sessions,) = db.execute("SELECT count(*) FROM sessions").fetchall()[0]
    store.close()
    return f"{n:,} requests, {sessions:,} sessions stored"


def child(args: argparse.Namespace) -> None:
    log = ensure_log(LINES)
    start = time.perf_counter()
    try:
        what = (
            run_csv(log)
            if args.variant == "csv"
            else run_bulk(log, args.memory_limit, args.line_numbers, default_geoip(), args.threads)
        )
    except Exception as e:  # an OutOfMemoryException is a result too
        what = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:90]}"
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{seconds:.2f}\t{LINES / seconds:,.0f}\t{peak:.0f}\t{what}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", choices=["csv", "bulk"])
    ap.add_argument("--memory-limit", default="200MB", help="DuckDB's, for bulk")
    ap.add_argument("--line-numbers", action="store_true")
    ap.add_argument("--threads", type=int, default=2, help="DuckDB's, for bulk")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    ensure_log(LINES)
    runs = [("csv", args.memory_limit, False)] if args.variant in (None, "csv") else []
    if args.variant in (None, "bulk"):
        runs += [("bulk", args.memory_limit, args.line_numbers)]
        if args.variant is None and not args.line_numbers:
            runs += [("bulk", "1GB", True)]
    print(f"| pipeline (1M lines, {args.threads} threads) | s | lines/s | peak RSS MiB | result |")
    print("|---|---|---|---|---|")
    for variant, limit, numbered in runs:
        cmd = [sys.executable, __file__, "--child", "--variant", variant]
        cmd += ["--memory-limit", limit, "--threads", str(args.threads)]
        cmd += ["--line-numbers"] if numbered else []
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
        seconds, rate, peak, what = out.split("\t")
        label = (
            variant
            if variant == "csv"
            else f"bulk, limit {limit}" + (", line numbers" if numbered else "")
        )
        print(f"| {label} | {seconds} | {rate} | {peak} | {what} |")


if __name__ == "__main__":
    main()
