"""`logalyse geoip update`: DB-IP's monthly database, downloaded from a loopback HTTP
server here (the URL template is a setting), checked, installed atomically, then used
by imports that are given no --geoip."""

from __future__ import annotations

import gzip
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from logalyse.cli import cli
from logalyse.errors import ExitCode
from logalyse.geodb import DownloadError, update

from .conftest import clean_env

TEMPLATE = "/dbip-{edition}-lite-{yyyy}-{mm}.mmdb.gz"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"


def dbip_like(path: Path) -> Path:
    """A small database shaped like DB-IP's Country Lite: GB for MaxMind's example
    address (as every real database says), FR for the documentation network the logs
    below come from."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(6, "DBIP-Country-Lite", ipv4_compatible=True)
    writer.insert_network(IPSet(["81.2.69.0/24"]), {"country": {"iso_code": "GB"}})
    writer.insert_network(IPSet(["198.51.100.0/24"]), {"country": {"iso_code": "FR"}})
    writer.to_db_file(str(path))
    return path


class Served:
    """Files served over HTTP on 127.0.0.1, by path; anything else is a 404."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        files, requests = self.files, self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                body = files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}" + TEMPLATE
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def put(self, month: str, body: bytes, edition: str = "country") -> None:
        self.files[f"/dbip-{edition}-lite-{month}.mmdb.gz"] = body


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    s = Served()
    yield s
    s.server.shutdown()
    s.server.server_close()


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return gzip.compress(dbip_like(tmp_path_factory.mktemp("db") / "dbip.mmdb").read_bytes())


def test_this_months_database_is_installed(served: Served, database: bytes, tmp_path: Path) -> None:
    served.put("2026-11", database)
    got = update("country", tmp_path, url=served.url, today=date(2026, 11, 30))
    assert (got.month, got.kind) == ("2026-11", "DBIP-Country-Lite")
    assert got.path == tmp_path / "dbip-country-lite.mmdb"
    assert got.path.read_bytes() == gzip.decompress(database)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dbip-country-lite.mmdb"]


def test_early_in_a_month_the_previous_one_is_taken(
    served: Served, database: bytes, tmp_path: Path
) -> None:
    served.put("2026-11", database)  # December's is not out yet: a 404
    got = update("country", tmp_path, url=served.url, today=date(2026, 12, 1))
    assert got.month == "2026-11"
    assert [p.rsplit("-lite-", 1)[1] for p in served.requests] == [
        "2026-12.mmdb.gz",
        "2026-11.mmdb.gz",
    ]
    # January looks back to December of the year before.
    served.put("2025-12", database)
    assert update("country", tmp_path, url=served.url, today=date(2026, 1, 2)).month == "2025-12"


@pytest.mark.parametrize(
    "body, why",
    [
        (b"<html>maintenance</html>", "not a usable GeoIP database"),
        (gzip.compress(b"\x00" * 5000), "not a usable GeoIP database"),
        (b"\x1f\x8b\x08\x00garbage", "not a valid gzip file|ended early"),
    ],
)
def test_a_bad_download_keeps_the_installed_database(
    served: Served, database: bytes, tmp_path: Path, body: bytes, why: str
) -> None:
    served.put("2026-10", database)
    before = update("country", tmp_path, url=served.url, today=date(2026, 10, 15)).path
    served.put("2026-11", body)
    with pytest.raises(DownloadError, match=why):
        update("country", tmp_path, url=served.url, today=date(2026, 11, 15))
    assert before.read_bytes() == gzip.decompress(database)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dbip-country-lite.mmdb"]


def test_a_cut_download_is_refused(served: Served, database: bytes, tmp_path: Path) -> None:
    served.put("2026-11", database[: len(database) // 2])
    with pytest.raises(DownloadError, match="ended early"):
        update("country", tmp_path, url=served.url, today=date(2026, 11, 15))
    assert list(tmp_path.iterdir()) == []


def test_a_database_that_knows_no_country_is_refused(served: Served, tmp_path: Path) -> None:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(6, "DBIP-Country-Lite", ipv4_compatible=True)
    writer.insert_network(IPSet(["10.0.0.0/8"]), {"country": {"iso_code": "ZZ"}})
    writer.to_db_file(str(tmp_path / "odd.mmdb"))
    served.put("2026-11", (tmp_path / "odd.mmdb").read_bytes())  # not gzipped: fine too
    with pytest.raises(DownloadError, match="knows none of"):
        update("country", tmp_path / "install", url=served.url, today=date(2026, 11, 15))


# -- the command -------------------------------------------------------------------------


def line(i: int) -> str:
    return (
        f'198.51.100.{i} - - [02/Nov/2026:10:00:{i:02} +0000] "GET /p{i} HTTP/1.1" 200 5 "-" '
        f'"{FIREFOX}"\n'
    )


def test_update_then_imports_have_countries_and_credit_db_ip(
    served: Served, database: bytes, tmp_path: Path
) -> None:
    served.put(f"{date.today():%Y-%m}", database)
    runner = CliRunner(env=clean_env(XDG_DATA_HOME=str(tmp_path / "data")))
    db = tmp_path / "s.duckdb"
    log = tmp_path / "access.log"
    log.write_text("".join(line(i) for i in range(1, 4)))

    # Before: stored without countries, and told how to get them (once).
    first = runner.invoke(cli, ["--db", str(db), "import", str(log)])
    assert first.exit_code == 0, first.output
    assert first.stderr.count("geoip update") == 1

    r = runner.invoke(cli, ["geoip", "update", "--url", served.url])
    assert r.exit_code == 0, r.output
    assert "installed DBIP-Country-Lite" in r.stderr
    assert (tmp_path / "data" / "logalyse" / "dbip-country-lite.mmdb").exists()

    log.write_text(log.read_text() + "".join(line(i) for i in range(4, 6)))
    second = runner.invoke(cli, ["--db", str(db), "import", str(log)])
    assert second.exit_code == 0, second.output
    assert "geoip update" not in second.stderr  # it had a database this time
    countries = json.loads(
        runner.invoke(cli, ["--db", str(db), "report", "countries", "--json"]).stdout
    )
    assert {c["country"]: c["visitors"] for c in countries} == {"FR": 2, "(unknown)": 3}
    table = runner.invoke(cli, ["--db", str(db), "report", "countries"]).stdout
    assert "IP geolocation by DB-IP (db-ip.com), CC BY 4.0" in table
    page = runner.invoke(cli, ["--db", str(db), "report", "dashboard"]).stdout
    assert "IP geolocation by DB-IP" in page


def test_the_url_is_a_setting(served: Served, database: bytes, tmp_path: Path) -> None:
    served.put(f"{date.today():%Y-%m}", database)
    config = tmp_path / "config.toml"
    config.write_text(f'geoip_url = "{served.url}"\n')
    runner = CliRunner(env=clean_env())
    r = runner.invoke(
        cli, ["--config", str(config), "geoip", "update", "-q", "--dir", str(tmp_path / "d")]
    )
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
    assert served.requests  # the file's URL was used
    r = runner.invoke(
        cli,
        ["geoip", "update", "--dir", str(tmp_path / "d")],
        env=clean_env(LOGALYSE_GEOIP_URL=served.url.replace("dbip-", "nothing-")),
    )
    assert r.exit_code == ExitCode.DOWNLOAD
    assert "HTTP 404" in r.stderr


def test_no_network_is_one_line_and_exit_5(tmp_path: Path) -> None:
    r = CliRunner(env=clean_env()).invoke(
        cli,
        ["geoip", "update", "--dir", str(tmp_path), "--url", "http://127.0.0.1:9/{edition}-{yyyy}-{mm}"],
    )  # fmt: skip
    assert r.exit_code == ExitCode.DOWNLOAD and int(ExitCode.DOWNLOAD) == 5
    assert r.stderr.count("\n") == 1 and "no network?" in r.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "url, why",
    [("ftp://example.org/{edition}", "http or https"), ("http://x/{year}", "placeholders")],
)
def test_a_bad_url_is_a_usage_error(tmp_path: Path, url: str, why: str) -> None:
    r = CliRunner(env=clean_env()).invoke(
        cli, ["geoip", "update", "--dir", str(tmp_path), "--url", url]
    )
    assert r.exit_code == ExitCode.USAGE
    assert why in r.stderr


def test_a_full_disk_is_one_line_and_keeps_nothing_half_written(
    served: Served, tmp_path: Path
) -> None:
    import os

    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs (CI runs as root)")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True
    )
    if r.returncode:
        pytest.skip(f"mount not allowed here: {r.stderr.decode().strip()}")
    try:
        served.put(f"{date.today():%Y-%m}", gzip.compress(os.urandom(200_000)))
        r2 = CliRunner(env=clean_env()).invoke(
            cli, ["geoip", "update", "--dir", str(mnt), "--url", served.url]
        )
        assert r2.exit_code == 1, r2.output
        assert r2.stderr.count("\n") == 1 and "No space left on device" in r2.stderr
        assert list(mnt.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
