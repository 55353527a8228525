"""Beyond one server (issue 21): Parquet exports, reports over many of them (`--from`), and
shared day keys, checked on one real log split over three "servers" as a round-robin load
balancer would split it."""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from logalyse.admin import adopt_shared_seed, write_shared_seed
from logalyse.cli import cli
from logalyse.errors import ConfigError, KeyFileError, StoreError
from logalyse.exchange import MANIFEST, export, open_exports
from logalyse.ingest import ImportOptions, ingest
from logalyse.keys import DayKeys, derive_key, parse_seed_text, ratchet
from logalyse.loggen import generate_lines, machine_lines, with_machines
from logalyse.reports import report
from logalyse.store import SCHEMA_VERSION, Store

from .conftest import LOGS

REAL = LOGS / "hackers-access.log"  # nielsbasjes/logparser's demo log, 3,456 lines
WITH_HOST = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" "$host"'
)


def round_robin(log: Path, out: Path, servers: int = 3) -> list[Path]:
    """The log's lines dealt to `servers` files in turn, as a round-robin balancer would."""
    parts: list[list[bytes]] = [[] for _ in range(servers)]
    for n, line in enumerate(log.read_bytes().splitlines(keepends=True)):
        parts[n % servers].append(line)
    paths = []
    for i, lines in enumerate(parts):
        path = out / f"server{i}.log"
        path.write_bytes(b"".join(lines))
        paths.append(path)
    return paths


def servers(tmp_path: Path, log: Path, *, shared: bool) -> list[Path]:
    """Import each part of `log` into its own store (with one shared seed, or not) and
    export each; the export directories."""
    seed = tmp_path / "seed"
    if shared:
        write_shared_seed(seed)
    exports = []
    for i, part in enumerate(round_robin(log, tmp_path)):
        with Store(tmp_path / f"server{i}.duckdb") as store:
            if shared:
                copy = tmp_path / f"seed-copy{i}"
                copy.write_bytes(seed.read_bytes())
                adopt_shared_seed(store, copy)
                assert not copy.exists()  # adopted: overwritten and deleted
            ingest(store, [part])
            export(store, tmp_path / f"export{i}")
        exports.append(tmp_path / f"export{i}")
    return exports


def records(store: Store, name: str) -> list[list[dict[str, Any]]]:
    return [list(r.records()) for r in report(store, name)]


def test_three_servers_with_a_shared_seed_report_as_one_store(tmp_path: Path) -> None:
    exports = servers(tmp_path, REAL, shared=True)
    with Store(tmp_path / "one.duckdb") as one:
        ingest(one, [REAL])
        with open_exports([str(tmp_path / "export*")]) as merged:
            for name in ("overview", "sessions", "referrers", "pages", "status", "bots"):
                assert records(merged, name) == records(one, name), name
            (overview,) = records(merged, "overview")
    assert [r["requests"] for r in overview] == [3456]
    assert len(exports) == 3


def test_without_the_shared_seed_a_visitor_is_one_per_server(tmp_path: Path) -> None:
    servers(tmp_path, REAL, shared=False)
    with Store(tmp_path / "one.duckdb") as one:
        ingest(one, [REAL])
        (alone,) = records(one, "overview")
    with open_exports([str(tmp_path / "export*")]) as merged:
        (split,) = records(merged, "overview")
    # What README says: requests and pageviews add up; visitors and sessions do not (a
    # person seen by three servers is up to three visitors, their sessions cut).
    assert split[0]["requests"] == alone[0]["requests"] == 3456
    assert split[0]["pageviews"] == alone[0]["pageviews"]
    assert split[0]["visitors"] > 1.5 * alone[0]["visitors"]
    assert split[0]["sessions"] > alone[0]["sessions"]


def test_machines_spread_over_servers_are_marked_over_all_of_them(tmp_path: Path) -> None:
    """A scraper's 200 pages in an hour are ~67 per server: under the rate rule on each,
    over it together. The merged reports mark it as the one store does."""
    start = datetime(2026, 11, 2, tzinfo=timezone.utc)
    lines = with_machines(
        generate_lines(3000, seed=5, start=start, days=1),
        machine_lines(seed=5, start=start, days=1, per_kind=1),
    )
    log = tmp_path / "machines.log"
    log.write_text("".join(line + "\n" for line in lines))
    servers(tmp_path, log, shared=True)
    with Store(tmp_path / "one.duckdb") as one:
        ingest(one, [log])
        with open_exports([str(tmp_path / "export*")]) as merged:
            for name in ("overview", "bots", "sessions"):
                assert records(merged, name) == records(one, name), name
            bots = {r["bot"] for r in records(merged, "bots")[0]}
    assert "(behaviour: rate)" in bots


def test_export_layout_schema_and_a_second_engine(tmp_path: Path) -> None:
    pads = pytest.importorskip("pyarrow.dataset")
    with Store(tmp_path / "db.duckdb") as store:
        ingest(store, [REAL])
        export(store, tmp_path / "out")
        (overview,) = records(store, "overview")
    out = tmp_path / "out"
    days = sorted(p.name for p in (out / "requests").iterdir())
    assert days[0].startswith("day=2015-") and len(days) >= 6
    files = sorted(out.glob("requests/day=*/host=*/data.parquet"))
    assert files and all(not p.name.startswith(".") for p in out.rglob("*"))  # no temp left
    con = duckdb.connect()
    (version,) = con.execute(
        "SELECT DISTINCT decode(value) FROM parquet_kv_metadata($1) "
        "WHERE decode(key) = 'logalyse_schema'",
        [[str(f) for f in out.rglob("*.parquet")]],
    ).fetchall()
    assert version == (str(SCHEMA_VERSION),)
    # pyarrow reads the hive partitions as they are, and counts what the overview says.
    import pyarrow as pa

    parts = pads.partitioning(
        pa.schema([("day", pa.date32()), ("host", pa.string())]), flavor="hive"
    )
    table = pads.dataset(out / "requests", format="parquet", partitioning=parts).to_table()
    assert table.num_rows == overview[0]["requests"]
    rows = table.to_pylist()
    pageviews = [r for r in rows if r["is_pageview"]]
    assert len(pageviews) == overview[0]["pageviews"]
    visitors = {(str(r["day"]), r["visitor_id"]) for r in pageviews}
    assert len(visitors) == overview[0]["visitors"]  # daily ids, summed over days
    assert "host" in table.column_names and "day" in table.column_names
    # README's DuckDB query, as it is written there (over every server's export).
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    query = readme.split("-- DuckDB\n", 1)[1].split(";", 1)[0]
    query = query.replace("/mnt/stats/*", str(tmp_path / "out*"))
    (counts,) = con.execute(query).fetchall()
    assert counts == tuple(overview[0][k] for k in ("requests", "pageviews", "visitors"))


def test_export_is_incremental_and_idempotent(tmp_path: Path) -> None:
    day1 = generate_lines(300, seed=1, start=datetime(2026, 11, 1, tzinfo=timezone.utc), days=1)
    day2 = generate_lines(300, seed=2, start=datetime(2026, 11, 2, tzinfo=timezone.utc), days=1)
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("".join(x + "\n" for x in day1))
    b.write_text("".join(x + "\n" for x in day2))
    out = tmp_path / "out"
    with Store(tmp_path / "db.duckdb") as store:
        ingest(store, [a])
        first = export(store, out)
        assert first.days_written["requests"] == ["2026-11-01"]
        before = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
        again = export(store, out)
        assert again.rows == 0 and again.days_written == {}
        assert {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")} == before
        ingest(store, [b])
        third = export(store, out)
    assert third.days_written["requests"] == ["2026-11-02"]
    unchanged = out / "requests" / "day=2026-11-01"
    assert all(before[p] == p.stat().st_mtime_ns for p in unchanged.rglob("*.parquet"))
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert sorted(manifest["tables"]["requests"]) == ["2026-11-01", "2026-11-02"]


def test_a_host_written_by_strangers_stays_inside_its_partition(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    long = "a" * 400 + ".example"
    log.write_text(
        '203.0.113.9 - - [01/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8" '
        '"../../../etc"\n'
        f'203.0.113.9 - - [01/Nov/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8" '
        f'"{long}"\n'
    )
    with Store(tmp_path / "db.duckdb") as store:
        ingest(store, [log], ImportOptions(format=WITH_HOST))
        stored = sorted(h for (h,) in store.query("SELECT host FROM requests"))
        export(store, tmp_path / "out")
    assert "../../../etc" in stored
    names = sorted(p.name for p in (tmp_path / "out" / "requests" / "day=2026-11-01").iterdir())
    assert "host=..%2F..%2F..%2Fetc" in names
    assert all(len(n) <= 255 for n in names) and len(names) == 2
    assert not (tmp_path / "etc").exists()
    with open_exports([str(tmp_path / "out")]) as merged:
        hosts = sorted(h for (h,) in merged.query("SELECT host FROM requests"))
    assert "../../../etc" in hosts and len(hosts) == 2


def test_shared_seed_derives_the_same_keys_and_ratchets_past_closed_days(
    tmp_path: Path,
) -> None:
    seed = tmp_path / "seed"
    write_shared_seed(seed, "2026-11-01")
    assert stat.S_IMODE(seed.stat().st_mode) == 0o600
    first_day, root = parse_seed_text(seed.read_text())
    with pytest.raises(ConfigError, match="exists"):
        write_shared_seed(seed)
    a, b = DayKeys(tmp_path / "a.keys"), DayKeys(tmp_path / "b.keys")
    a.adopt(first_day, root)
    b.adopt(first_day, root)
    assert a.key("2026-11-03") == b.key("2026-11-03") == derive_key(ratchet(root, 2), "2026-11-03")
    a.destroy(["2026-11-03"])  # day 3 closes on server a: the seed moves to day 4
    reread = DayKeys(tmp_path / "a.keys")
    assert reread.shared_since == "2026-11-04"
    assert ratchet(root, 3) in (tmp_path / "a.keys").read_bytes()  # in place of the old one
    assert root not in (tmp_path / "a.keys").read_bytes()
    # A late line of the closed day gets a fresh random key, not the derivable one.
    assert reread.key("2026-11-03") != b.key("2026-11-03")
    # Later days: still the same on both servers, without talking to each other.
    assert reread.key("2026-11-05") == b.key("2026-11-05")


def test_keys_commands_and_their_errors(tmp_path: Path, runner: CliRunner) -> None:
    seed = tmp_path / "seed"
    db = str(tmp_path / "db.duckdb")
    result = runner.invoke(cli, ["keys", "init", "--shared", "-o", str(seed)])
    assert result.exit_code == 0, result.output
    link = tmp_path / "link"
    link.symlink_to(seed)
    result = runner.invoke(cli, ["--db", db, "keys", "adopt", str(link)])
    assert result.exit_code == 1 and "cannot read the seed file" in result.output
    assert seed.exists()  # never followed, never erased through the link
    result = runner.invoke(cli, ["--db", db, "keys", "adopt", str(seed)])
    assert result.exit_code == 0, result.output
    assert not seed.exists() and "overwritten and deleted" in result.output
    junk = tmp_path / "junk"
    junk.write_text("hello\n")
    result = runner.invoke(cli, ["--db", db, "keys", "adopt", str(junk)])
    assert result.exit_code == 1 and "not a logalyse shared seed" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_export_and_from_on_the_command_line(tmp_path: Path, runner: CliRunner) -> None:
    db = str(tmp_path / "db.duckdb")
    out = tmp_path / "out"
    assert runner.invoke(cli, ["--db", db, "import", "-q", str(REAL)]).exit_code == 0
    result = runner.invoke(cli, ["--db", db, "export", str(out)])
    assert result.exit_code == 0, result.output
    assert "exported" in result.output and "requests" in result.output
    result = runner.invoke(cli, ["--db", db, "export", str(out)])
    assert "exported 0 rows" in result.output
    mine = runner.invoke(cli, ["--db", db, "report", "overview", "--format", "json"]).stdout
    theirs = runner.invoke(cli, ["report", "overview", "--from", str(out), "--format", "json"])
    assert theirs.exit_code == 0, theirs.output
    assert json.loads(theirs.stdout) == json.loads(mine)
    pages = []
    for source in (["--from", str(out)], ["--db", db]):
        page = tmp_path / "index.html"
        args = ["report", "dashboard", "-q", "--since", "2015-10-01", "-o", str(page)]
        assert runner.invoke(cli, args + source).exit_code == 0
        pages.append(re.sub(r"made [0-9: -]+ UTC", "made", page.read_text()))  # a new minute
    assert pages[0] == pages[1] and "2,344" in pages[0]  # pageviews
    for args, message in (
        (["report", "pages", "--from", str(tmp_path / "nothing")], "names no logalyse export"),
        (["--db", db, "export", str(out), "--tables", "requests,secrets"], "unknown table"),
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, result.output
        assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_an_export_of_another_schema_or_a_torn_manifest_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST).write_text(json.dumps({"schema_version": 99, "tables": {}}))
    with pytest.raises(StoreError, match="schema version 99"):
        open_exports([str(out)])
    (out / MANIFEST).write_text('{"schema_ver')
    with pytest.raises(StoreError, match="cannot read"):
        open_exports([str(out)])


def test_seed_file_is_refused_when_it_is_not_one(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text("logalyse shared seed 1\nday 2026-11-01\nseed abcd\n")
    with pytest.raises(KeyFileError, match="32 bytes"):
        parse_seed_text(bad.read_text())
    assert os.path.exists(bad)


def test_an_export_holds_no_address(tmp_path: Path) -> None:
    """The hostile corpus (addresses hidden in requests, referrers, user agents, campaign
    values) and its clients: none in any column of any exported file, nor in its bytes."""
    import ipaddress

    from .test_hostile import ADDRESSES, HIDDEN

    log = tmp_path / "access.log"
    log.write_text("".join(HIDDEN))
    with Store(tmp_path / "db.duckdb") as store:
        ingest(store, [log])
        export(store, tmp_path / "out")
    forms = {f"198.51.100.{i}" for i in range(1, 10)}
    for a in ADDRESSES:
        ip = ipaddress.ip_address(a)
        forms |= {a, str(ip), ip.exploded}
    files = [str(p) for p in (tmp_path / "out").rglob("*.parquet")]
    con = duckdb.connect()
    text = " ".join(
        str(row)
        for f in files
        for row in con.execute("SELECT * FROM read_parquet($1)", [f]).fetchall()
    )
    assert not [f for f in forms if f in text]
    for f in (tmp_path / "out").rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert not [a for a in forms if a.encode() in data], f
    assert "x.x.x.x" in text  # the masked forms are there: the scan read the text


def test_adopt_waits_for_a_writer_and_keeps_the_seed_file_when_it_cannot(
    tmp_path: Path, runner: CliRunner
) -> None:
    seed, db = tmp_path / "seed", tmp_path / "db.duckdb"
    write_shared_seed(seed)
    with Store(db) as store, store.writer_lock():  # an import or a tail, writing
        result = runner.invoke(
            cli, ["--db", str(db), "keys", "adopt", "--lock-timeout", "0.2", str(seed)]
        )
    assert result.exit_code == 4, result.output
    assert "the seed was not adopted" in result.output and seed.exists()
    assert DayKeys(Path(str(db) + ".keys")).shared_since is None


def test_two_stores_exporting_to_one_directory_is_refused(tmp_path: Path) -> None:
    """Each server exports to a directory of its own: a second store's export into the
    first's would remove the days it does not have."""
    out = tmp_path / "shared"
    with Store(tmp_path / "web1.duckdb") as web1, Store(tmp_path / "web2.duckdb") as web2:
        ingest(web1, [REAL])
        ingest(web2, [REAL])
        export(web1, out)
        with pytest.raises(ConfigError, match="holds the export of another store"):
            export(web2, out)
        assert export(web1, out).rows == 0  # its own: fine
    assert json.loads((out / MANIFEST).read_text())["store"]


def test_clickhouse_reads_the_export_as_readme_says(tmp_path: Path) -> None:
    """README's ClickHouse query, through chdb (an in-process ClickHouse; ~500 MB, so not
    a dependency: skipped where it is not installed)."""
    chdb = pytest.importorskip("chdb")
    with Store(tmp_path / "db.duckdb") as store:
        ingest(store, [REAL])
        export(store, tmp_path / "out")
        (overview,) = records(store, "overview")
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    query = readme.split("-- ClickHouse\n", 1)[1].split(";", 1)[0]
    query = query.replace("/mnt/stats/*", str(tmp_path / "out*"))
    counts = str(chdb.query(query, "CSV")).strip()
    assert counts == ",".join(str(overview[0][k]) for k in ("requests", "pageviews", "visitors"))
