"""The import: exact counts, exactly once across reruns and rotation, keys, privacy."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import logalyse.ingest as ingest_module
import logalyse.ingest._memory as memory_module
import logalyse.ingest.options as limits
from logalyse.ingest import ImportOptions, StreamInput, ingest
from logalyse.model import IngestStats
from logalyse.privacy import DayKeys, visitor_id
from logalyse.store import Store

from .conftest import (
    DATA,
    FIXTURES,
    LOGS,
    SAMPLE_LOGS,
    addresses_in,
    client_addresses,
    count,
    files_under,
)
from .test_formats import EXPECTED

T0 = datetime(2026, 11, 1, 10, 0, 0)


def line(
    ip: str = "203.0.113.9",
    ts: datetime = T0,
    path: str = "/",
    status: int = 200,
    ua: str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0",
    ref: str = "-",
) -> str:
    stamp = ts.strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'{ip} - - [{stamp}] "GET {path} HTTP/1.1" {status} 512 "{ref}" "{ua}"'


def write(path: Path, lines: list[str], mode: str = "w") -> Path:
    with open(path, mode) as f:
        f.write("".join(x + "\n" for x in lines))
    return path


def run(db: Path, *inputs: Path | StreamInput, **options: object) -> IngestStats:
    with Store(db) as store:
        return ingest(store, list(inputs), ImportOptions(**options))  # type: ignore[arg-type]


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    with Store(db, read_only=True) as store:
        return store.query(sql)


def stream(text: str | bytes, label: str = "stdin") -> StreamInput:
    return StreamInput(io.BytesIO(text.encode() if isinstance(text, str) else text), label=label)


# -- exact counts ----------------------------------------------------------------------


def test_real_logs_exact_counts_and_rerun_adds_nothing(db_path: Path) -> None:
    files = [
        LOGS / "hackers-access.log",
        LOGS / "elastic-apache_logs.log",
        LOGS / "cymnasium-access.log-20240506",
    ]
    first = run(db_path, *files)
    assert {Path(s.name).name: (s.imported, s.malformed, s.format) for s in first.sources} == {
        "hackers-access.log": (3456, 0, "combined"),
        "elastic-apache_logs.log": (10000, 0, "combined"),
        "cymnasium-access.log-20240506": (477, 0, "main"),
    }
    again = run(db_path, *files)
    assert (again.imported, again.already, again.lines_read) == (0, 13933, 13933)
    (n, distinct) = query(
        db_path, "SELECT count(*), count(DISTINCT (source_id, line_no)) FROM requests"
    )[0]
    assert n == distinct == 13933


def test_every_fixture_parses_or_is_counted(db_path: Path, tmp_path: Path) -> None:
    # Copies, idle for a day: some end without a newline, and an archived file is finished.
    shutil.copytree(FIXTURES, tmp_path / "fixtures")
    files = sorted(p for p in (tmp_path / "fixtures").rglob("*") if p.is_file())
    files = [p for p in files if "LICENSE" not in p.name]
    day_ago = time.time() - 86400
    for p in files:
        os.utime(p, (day_ago, day_ago))
    stats = run(db_path, *files)
    by_name = {str(Path(s.name).relative_to(tmp_path)): s for s in stats.sources}
    for name, (_, kinds) in EXPECTED.items():
        if not name.startswith("fixtures/"):
            continue
        s = by_name[name]
        # A mostly malformed input stores nothing (wrong format?): its requests wait.
        stored = 0 if s.parse_failures_dominate else kinds.get("ok", 0)
        assert (s.imported, s.withheld) == (stored, kinds.get("ok", 0) - stored), name
        assert s.malformed == kinds.get("malformed", 0), name
        assert s.nonaccess == kinds.get("nonaccess", 0) + kinds.get("blank", 0), name
        assert s.lines_read == sum(kinds.values()), name
    assert count(Store(db_path)) == sum(s.imported for s in stats.sources) > 0


def test_small_batches_and_row_groups_keep_every_line_once(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "ROW_GROUP_ROWS", 37)
    lines = [
        line(
            ip=f"198.51.100.{i % 200}", ts=T0 + timedelta(seconds=i), ua=f"agent \\x22{i % 7}\\x22"
        )
        for i in range(2000)
    ]
    lines[500] = "garbage in the middle"
    log = write(tmp_path / "access.log", lines)
    stats = run(db_path, log, batch_bytes=4096)
    assert (stats.imported, stats.malformed) == (1999, 1)
    assert query(
        db_path, "SELECT count(DISTINCT ua) FROM requests JOIN user_agents u ON ua_id = u.id"
    ) == [(7,)]
    assert query(db_path, "SELECT min(ua) FROM user_agents") == [('agent "0"',)]
    assert query(
        db_path,
        "SELECT count(*), count(DISTINCT line_no), min(line_no), max(line_no) FROM requests",
    )[0] == (1999, 1999, 1, 2000)
    assert query(db_path, "SELECT byte_offset, lines FROM sources")[0] == (log.stat().st_size, 2000)
    assert run(db_path, log, batch_bytes=4096).imported == 0


# -- exactly once across appends and rotation ------------------------------------------


def test_appended_file_adds_only_new_lines(db_path: Path, tmp_path: Path) -> None:
    log = write(tmp_path / "access.log", [line(ts=T0 + timedelta(minutes=i)) for i in range(3)])
    assert run(db_path, log).imported == 3
    write(log, [line(ts=T0 + timedelta(minutes=10 + i)) for i in range(2)], mode="a")
    s = run(db_path, log)
    assert (s.imported, s.already) == (2, 3)
    assert query(db_path, "SELECT max(line_no) FROM requests")[0][0] == 5


def test_a_half_written_last_line_waits_for_its_end(db_path: Path, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    lines = [line(ts=T0 + timedelta(seconds=i), path=f"/p{i}") for i in range(1100)]
    log.write_bytes(("\n".join(lines[:1000]) + "\n").encode() + lines[1000][:60].encode())
    first = run(db_path, log)
    assert (first.imported, first.lines_read, first.malformed, first.unterminated) == (
        1000,
        1000,
        0,
        1,
    )
    with open(log, "a") as f:  # the rest of line 1,001, and 99 more
        f.write(lines[1000][60:] + "\n" + "\n".join(lines[1001:]) + "\n")
    second = run(db_path, log)
    assert (second.imported, second.already, second.malformed, second.unterminated) == (
        100,
        1000,
        0,
        0,
    )
    assert query(db_path, "SELECT count(*), count(DISTINCT path), max(line_no) FROM requests") == [
        (1100, 1100, 1100)
    ]
    assert query(db_path, "SELECT line_no FROM requests WHERE path = '/p1000'") == [(1001,)]


def test_a_lone_newline_ends_the_waiting_line_without_shifting_numbers(
    db_path: Path, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    log.write_text(line(path="/a") + "\n" + line(path="/b"))
    assert run(db_path, log).imported == 1
    with open(log, "a") as f:
        f.write("\n" + line(path="/c") + "\n")
    assert run(db_path, log).imported == 2
    assert query(db_path, "SELECT path, line_no FROM requests ORDER BY line_no") == [
        ("/a", 1), ("/b", 2), ("/c", 3)
    ]  # fmt: skip


def test_the_unterminated_last_line_of_a_finished_file_is_read(
    db_path: Path, tmp_path: Path
) -> None:
    rotated = tmp_path / "access.log.1"
    rotated.write_text(line(path="/a") + "\n" + line(path="/b"))  # nginx died mid-write
    assert run(db_path, rotated).unterminated == 1
    hour_ago = time.time() - 3600
    os.utime(rotated, (hour_ago, hour_ago))  # rotated away and no longer written to
    again = run(db_path, rotated)
    assert (again.imported, again.unterminated) == (1, 0)
    assert run(db_path, rotated).imported == 0


def test_a_gzip_still_being_written_is_not_complete(db_path: Path, tmp_path: Path) -> None:
    data = "".join(line(path=f"/p{i}", ts=T0 + timedelta(seconds=i)) + "\n" for i in range(300))
    whole = gzip.compress(data.encode())
    gz = tmp_path / "access.log.2.gz"
    gz.write_bytes(whole[: len(whole) // 2])  # logrotate's compression under way
    first = run(db_path, gz)
    assert 0 < first.imported < 300
    assert query(db_path, "SELECT complete FROM sources") == [(False,)]
    gz.write_bytes(whole)
    second = run(db_path, gz)
    assert first.imported + second.imported == 300 and second.already == first.imported
    assert query(db_path, "SELECT complete FROM sources") == [(True,)]
    assert (run(db_path, gz).imported, run(db_path, gz).already) == (0, 300)


def test_carriage_returns_alone_end_lines(db_path: Path, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes("".join(line(path=f"/p{i}") + "\r" for i in range(100)).encode())
    stats = run(db_path, log)
    assert (stats.lines_read, stats.imported, stats.malformed) == (100, 100, 0)
    assert run(db_path, log).imported == 0


def test_logrotate_rename_then_compress(db_path: Path, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    write(log, [line(ts=T0 + timedelta(minutes=i)) for i in range(3)])
    assert run(db_path, log).imported == 3
    # nginx wrote two more lines, then logrotate renamed the file and nginx opened a new one.
    write(log, [line(ts=T0 + timedelta(minutes=5 + i)) for i in range(2)], mode="a")
    log.rename(tmp_path / "access.log.1")
    write(log, [line(ts=T0 + timedelta(minutes=20 + i)) for i in range(4)])
    s = run(db_path, *sorted(tmp_path.glob("access.log*")))
    assert s.imported == 2 + 4
    assert any("imported before as" in x.note for x in s.sources)
    # Next day: .1 is compressed to .2.gz, access.log becomes .1, a new access.log starts.
    (tmp_path / "access.log.2.gz").write_bytes(
        gzip.compress((tmp_path / "access.log.1").read_bytes())
    )
    (tmp_path / "access.log.1").unlink()
    log.rename(tmp_path / "access.log.1")
    write(log, [line(ts=T0 + timedelta(hours=1, minutes=i)) for i in range(2)])
    s = run(db_path, *sorted(tmp_path.glob("access.log*")))
    assert (s.imported, s.already) == (2, 9)
    assert count(Store(db_path)) == 11
    assert run(db_path, *sorted(tmp_path.glob("access.log*"))).imported == 0


def test_lines_written_before_compression_are_picked_from_the_gz(
    db_path: Path, tmp_path: Path
) -> None:
    log = write(tmp_path / "access.log", [line(ts=T0 + timedelta(minutes=i)) for i in range(3)])
    run(db_path, log)
    write(log, [line(ts=T0 + timedelta(minutes=9))], mode="a")  # never seen by an import
    (tmp_path / "access.log.1.gz").write_bytes(gzip.compress(log.read_bytes()))
    log.unlink()
    s = run(db_path, tmp_path / "access.log.1.gz")
    assert (s.imported, s.already) == (1, 3)
    assert (
        run(db_path, tmp_path / "access.log.1.gz").sources[0].note
        == "unchanged since the last import"
    )


def test_copytruncate(db_path: Path, tmp_path: Path) -> None:
    log = write(tmp_path / "access.log", [line(ts=T0 + timedelta(minutes=i)) for i in range(3)])
    run(db_path, log)
    shutil.copy(log, tmp_path / "access.log.1")
    log.write_text("")
    write(log, [line(ip="198.51.100.7", ts=T0 + timedelta(minutes=30))], mode="a")
    s = run(db_path, log, tmp_path / "access.log.1")
    assert (s.imported, s.already) == (1, 3)


# -- streams ----------------------------------------------------------------------------


def test_stream_rerun_adds_only_new_lines(db_path: Path) -> None:
    history = [line(ts=T0 + timedelta(seconds=i // 3), path=f"/p{i % 2}") for i in range(30)]
    text = "".join(x + "\n" for x in history)
    assert run(db_path, stream(text)).imported == 30
    s = run(db_path, stream(text))
    assert (s.imported, s.already) == (0, 30)
    # Same second as the last line, identical to it: still a new request.
    more = text + history[-1] + "\n" + line(ts=T0 + timedelta(seconds=60)) + "\n"
    s = run(db_path, stream(more))
    assert (s.imported, s.already) == (2, 30)
    assert count(Store(db_path)) == 32
    assert run(db_path, stream(more)).imported == 0


def test_stream_new_lines_before_a_replay_in_the_same_batch_are_new(db_path: Path) -> None:
    # A stream that goes back in time (a log fed again after new lines): the new lines
    # are judged by their own time, not dropped with the replay that follows them.
    old = [line(ts=T0 + timedelta(seconds=i), path=f"/o{i}") for i in range(5)]
    new = [line(ts=T0 + timedelta(minutes=1, seconds=i), path=f"/n{i}") for i in range(3)]
    assert run(db_path, stream("".join(x + "\n" for x in old))).imported == 5
    junk = "upstream timed out"  # not a request, inside the replay: seen, like the replay
    s = run(db_path, stream("".join(x + "\n" for x in [*new, old[0], junk, *old[1:]])))
    assert (s.imported, s.already, s.malformed) == (3, 6, 0)
    stored = query(db_path, "SELECT path FROM requests WHERE path LIKE '/n%' ORDER BY path")
    assert [r[0] for r in stored] == ["/n0", "/n1", "/n2"]
    s = run(db_path, stream("".join(x + "\n" for x in [*old, junk, *new])))
    assert (s.imported, s.already, s.malformed) == (0, 9, 0)


def test_stream_names_keep_separate_checkpoints(db_path: Path) -> None:
    text = line() + "\n"
    assert run(db_path, stream(text), source_name="site-a").imported == 1
    assert run(db_path, stream(text), source_name="site-b").imported == 1
    assert run(db_path, stream(text), source_name="site-a").imported == 0


def test_docker_compose_stream(db_path: Path) -> None:
    text = (SAMPLE_LOGS / "docker-compose.log").read_text()
    s = run(db_path, stream(text))
    assert s.sources[0].name == "compose:nginx"
    assert (s.lines_read, s.imported, s.nonaccess, s.malformed) == (1533, 1500, 33, 0)
    assert run(db_path, stream(text)).imported == 0


def test_compose_service_filter_and_timestamps(db_path: Path) -> None:
    text = "".join(
        [
            "Attaching to app-1, nginx-1\n",
            f"nginx-1  | 2026-11-01T10:00:00.000000001Z {line()}\n",
            f"app-1    | 2026-11-01T10:00:00.000000002Z {line(path='/app')}\n",
            f"nginx-1  | 2026-11-01T10:00:00.000000003Z {line(path='/x')}\n",
        ]
    )
    s = run(db_path, stream(text), service="nginx")
    assert (s.sources[0].name, s.imported, s.nonaccess) == ("compose:nginx", 2, 2)
    assert sorted(str(r[0]) for r in query(db_path, "SELECT path FROM requests")) == ["/", "/x"]
    assert run(db_path, stream(text), service="nginx").imported == 0


def test_gzip_on_stdin(db_path: Path) -> None:
    assert run(db_path, stream(gzip.compress((line() + "\n").encode()))).imported == 1


# -- what is stored -----------------------------------------------------------------------


def test_query_scrubbed_referrer_stripped_escapes_decoded(db_path: Path, tmp_path: Path) -> None:
    log = write(
        tmp_path / "a.log",
        [
            line(
                path="/p?utm_source=hn&email=me%40x.org&ref=pr&id=7",
                ref="https://www.google.com/search?q=my+name",
                ua="Mozilla \\x22x\\x22 caf\\xC3\\xA9",
            )
        ],
    )
    run(db_path, log)
    (path, q, ref, ua) = query(
        db_path, "SELECT path, query, referrer, ua FROM requests JOIN user_agents u ON ua_id = u.id"
    )[0]
    assert (path, q, ref, ua) == (
        "/p",
        "utm_source=hn&ref=pr",
        "https://www.google.com/search",
        'Mozilla "x" café',
    )


def test_visitor_id_is_the_keyed_hash_of_address_agent_host(db_path: Path, tmp_path: Path) -> None:
    ua = "curl/8.5.0"
    log = write(
        tmp_path / "a.log",
        [
            line(ip="::ffff:203.0.113.9", ua=ua),
            line(ip="203.0.113.9", ua=ua),
            line(ip="203.0.113.10", ua=ua),
        ],
    )
    run(db_path, log)
    key = DayKeys(Path(str(db_path) + ".keys")).key("2026-11-01")  # the day is still open
    ids = [r[0] for r in query(db_path, "SELECT visitor_id FROM requests ORDER BY line_no")]
    assert ids[0] == ids[1] == visitor_id(key, "203.0.113.9", ua, "")
    assert ids[2] == visitor_id(key, "203.0.113.10", ua, "")


def test_forwarded_for_behind_a_proxy(db_path: Path, tmp_path: Path) -> None:
    log = write(
        tmp_path / "a.log",
        [
            line(ip="172.18.0.1") + ' "198.51.100.20"',
            line(ip="172.18.0.1") + ' "198.51.100.21, 10.0.0.1"',
        ],
    )
    run(db_path, log, format="main")
    assert query(db_path, "SELECT count(DISTINCT visitor_id) FROM requests")[0][0] == 2


# -- day keys -----------------------------------------------------------------------------


def test_keys_are_destroyed_once_the_day_is_closed(db_path: Path, tmp_path: Path) -> None:
    day1 = datetime(2026, 11, 1, 23, 0)
    log = write(tmp_path / "a.log", [line(ts=day1), line(ts=day1 + timedelta(hours=2, minutes=59))])
    assert run(db_path, log).days_closed == []  # 01:59 on day 2 is within the 2 h grace
    keys = DayKeys(Path(str(db_path) + ".keys"))
    assert keys.days() == ["2026-11-01", "2026-11-02"]
    write(log, [line(ts=day1 + timedelta(hours=3, minutes=1))], mode="a")
    assert run(db_path, log).days_closed == ["2026-11-01"]
    assert DayKeys(Path(str(db_path) + ".keys")).days() == ["2026-11-02"]
    assert query(
        db_path, "SELECT day::VARCHAR, closed_at IS NOT NULL FROM day_keys ORDER BY day"
    ) == [
        ("2026-11-01", True),
        ("2026-11-02", False),
    ]


def test_late_line_gets_a_fresh_key_and_is_counted(db_path: Path, tmp_path: Path) -> None:
    a = write(tmp_path / "a.log", [line(ts=T0), line(ts=T0 + timedelta(days=1))])
    run(db_path, a)
    late = write(tmp_path / "late.log", [line(ts=T0 + timedelta(minutes=5))])  # same visitor, day 1
    s = run(db_path, late)
    assert (s.imported, s.late) == (1, 1)
    ids = query(
        db_path, "SELECT visitor_id FROM requests WHERE ts::DATE = '2026-11-01' ORDER BY line_no"
    )
    assert len(ids) == 2 and ids[0] != ids[1]  # not linkable to the earlier visit, by design
    assert query(
        db_path, "SELECT late_lines, closed_at IS NOT NULL FROM day_keys WHERE day = '2026-11-01'"
    ) == [(1, True)]
    assert "2026-11-01" not in DayKeys(Path(str(db_path) + ".keys")).days()


def test_days_follow_the_configured_time_zone(db_path: Path, tmp_path: Path) -> None:
    # 23:30 UTC on 1 November is already 2 November in Paris.
    log = write(tmp_path / "a.log", [line(ts=datetime(2026, 11, 1, 23, 30))])
    run(db_path, log, tz="Europe/Paris")
    assert DayKeys(Path(str(db_path) + ".keys")).days() == ["2026-11-02"]


def test_times_are_stored_to_the_second_truncated(db_path: Path, tmp_path: Path) -> None:
    """$msec has milliseconds; the store keeps whole seconds, cut (not rounded: a request
    at 23:59:59.999 stays on its day, the day its visitor id's key belongs to)."""
    log = tmp_path / "msec.log"
    log.write_text(
        '203.0.113.9 1793577599.999 "GET /a HTTP/1.1" 200\n'
        '203.0.113.9 1793577600.250 "GET /b HTTP/1.1" 200\n'
    )
    with Store(db_path) as store:
        ingest(store, [log], ImportOptions(format='$remote_addr $msec "$request" $status'))
        assert store.query("SELECT path, ts FROM requests ORDER BY line_no") == [
            ("/a", datetime(2026, 11, 1, 23, 59, 59)),
            ("/b", datetime(2026, 11, 2, 0, 0, 0)),
        ]
    assert DayKeys(Path(str(db_path) + ".keys")).days() == ["2026-11-01", "2026-11-02"]


# -- privacy on disk ------------------------------------------------------------------------


def test_no_raw_address_reaches_disk(db_path: Path, tmp_path: Path) -> None:
    inputs = [LOGS / "hackers-access.log", LOGS / "cymnasium-access.log-20240506"]
    compose = (SAMPLE_LOGS / "docker-compose.log").read_bytes()
    addresses = set().union(
        *(client_addresses(p.read_bytes()) for p in inputs), client_addresses(compose)
    )
    assert len(addresses) > 500 and any(b":" in a for a in addresses)  # IPv6 clients too
    assert len(addresses_in(inputs[0], addresses)) > 100  # the scan does find them in the input
    rejected: list[str] = []
    junk = write(tmp_path / "junk.log", ["203.0.113.77 is not a log line", "nor is 2001:db8::77"])
    with Store(db_path) as store:
        ingest(
            store,
            [*inputs, junk, stream(compose)],
            on_reject=lambda s, n, why, text: rejected.append(text),
        )
    assert len(rejected) == 2 and all(
        "203.0.113.77" not in r and "2001:db8::77" not in r for r in rejected
    )
    written = files_under(db_path.parent)
    assert {p.name for p in written} >= {"logalyse.duckdb", "logalyse.duckdb.keys"}
    for path in written:
        found = addresses_in(path, addresses)
        assert not found, f"{path.name} holds {sorted(found)[:3]}"
    # The file may compress strings: check every text column as well.
    with Store(db_path, read_only=True) as store:
        for table, column in store.query(
            "SELECT table_name, column_name FROM duckdb_columns() "
            "WHERE database_name = 'db' AND data_type = 'VARCHAR'"
        ):
            values = {
                str(r[0]) for r in store.query(f"SELECT DISTINCT {column} FROM {table}") if r[0]
            }
            hits = {a.decode() for a in addresses if any(a.decode() in v for v in values)}
            assert not hits, f"{table}.{column} holds {sorted(hits)[:3]}"


def test_a_stream_checkpoint_is_counts_only(db_path: Path) -> None:
    run(db_path, stream(line(ip="203.0.113.99") + "\n"))
    assert query(db_path, "SELECT byte_offset > 0, lines FROM sources") == [(True, 1)]
    columns = query(
        db_path, "SELECT column_name FROM duckdb_columns() WHERE table_name = 'sources'"
    )
    assert ("position",) not in columns  # no trace of any request in a stream's checkpoint


def test_mostly_malformed_input_is_flagged(db_path: Path) -> None:
    s = run(db_path, FIXTURES / "crowdsec-hub" / "traefik_json--traefik_json.log")
    assert s.mostly_malformed and s.sources[0].samples
    assert all("172.17.0.1" not in text for _, _, text in s.sources[0].samples)


def test_kinds_add_up(db_path: Path, tmp_path: Path) -> None:
    log = write(
        tmp_path / "mixed.log",
        [
            line(),
            "",
            "2026/11/01 10:00:00 [error] 7#7: *1 boom, client: 203.0.113.9",
            "junk",
            line(),
        ],
    )
    s = run(db_path, log)
    assert Counter(imported=s.imported, nonaccess=s.nonaccess, malformed=s.malformed) == Counter(
        imported=2, nonaccess=2, malformed=1
    )
    assert s.lines_read == 5


@pytest.mark.parametrize("where", ["file", "memory"])
def test_renewing_the_importer_between_files_keeps_the_store(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Importer.renew (what a long tail does every minute) gives a file-backed store a fresh
    in-memory instance and leaves a store held in memory its own (which holds its data)."""
    monkeypatch.chdir(tmp_path)  # where a store in memory once wrote ./:memory:.keys
    first = write(tmp_path / "a.log", [line(ts=T0 + timedelta(seconds=i)) for i in range(5)])
    second = write(
        tmp_path / "b.log",
        [line(ip="198.51.100.7", ts=T0 + timedelta(minutes=1, seconds=i)) for i in range(3)],
    )
    with Store(tmp_path / "db.duckdb" if where == "file" else ":memory:") as store:
        before = store.con
        imp = ingest_module.Importer(store, ImportOptions())
        try:
            assert imp.import_file(first).imported == 5
            imp.renew()
            assert (store.con is before) == (where == "memory")
            assert imp.import_file(second).imported == 3
            assert imp.import_file(first).imported == 0  # its checkpoint is in the store
            imp.remake_sessions()
        finally:
            imp.close()
        assert count(store) == 8
        assert store.query("SELECT count(DISTINCT visitor_id) FROM requests") == [(2,)]
    # A store in memory keeps its day keys in memory: no file anywhere.
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".keys")] == (
        ["db.duckdb.keys"] if where == "file" else []
    )


def test_purging_reaches_duckdb_s_allocator() -> None:
    """With one thread, DuckDB keeps a dropped table's pages until an idle worker returns
    them, and an import has no idle worker: the importer purges them itself, through
    DuckDB's jemalloc, which must accept the command (how much it hands back is for
    `make bench` to measure)."""
    memory_module.purge_duckdb_memory()
    purge = memory_module._purge_arenas
    if purge is memory_module._noop:
        pytest.skip("this DuckDB build does not export its allocator's mallctl")
    assert purge is not None
    assert purge() == 0  # mallctl's "done"; a wrong name or arena would be an errno


def test_every_line_is_accounted_for_as_wc_counts_them(db_path: Path, tmp_path: Path) -> None:
    """read = imported + already + malformed + non-access (+ not stored), and read is what
    `wc -l` says (a finished file's unterminated last line is one more), first run and
    rerun alike."""
    shutil.copytree(DATA, tmp_path / "data")
    shutil.copytree(SAMPLE_LOGS, tmp_path / "samples")
    files = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    files = [
        p for p in files if p.suffix not in (".md", ".tsv", ".mmdb") and "LICENSE" not in p.name
    ]
    files += sorted((tmp_path / "samples").glob("access.log*"))
    day_ago = time.time() - 86400
    for p in files:
        os.utime(p, (day_ago, day_ago))
    for attempt in range(2):
        with Store(db_path) as store:
            stats = ingest(store, files)
        for s in stats.sources:
            content = Path(s.name).read_bytes()
            if content[:2] == b"\x1f\x8b":
                content = gzip.decompress(content)
            lines = content.count(b"\n") + (0 if content.endswith(b"\n") or not content else 1)
            assert s.lines_read == lines, (attempt, s)
            assert s.lines_read == s.imported + s.already + s.malformed + s.nonaccess + s.withheld
        assert stats.imported == 0 or attempt == 0
