"""People, not machines, and where they came from: extensionless assets, nginx behind a
proxy, junk referrers, the site's own host learnt from small logs (issue 18)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from logalyse.cli import cli
from logalyse.store import Store

from .conftest import clean_env

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"


def entry(ip: str, second: int, path: str, ref: str = "-", day: int = 2) -> str:
    return (
        f"{ip} - - [{day:02}/Nov/2026:10:{second // 60:02}:{second % 60:02} +0000] "
        f'"GET {path} HTTP/1.1" 200 512 "{ref}" "{FIREFOX}"\n'
    )


def invoke(*args: str) -> Any:
    result = CliRunner(env=clean_env()).invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def report(db: Path, name: str) -> Any:
    return json.loads(invoke("--db", str(db), "report", name, "--json").stdout)


def test_extensionless_images_are_not_pages_with_a_glob(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(
        entry("198.51.100.1", 0, "/gallery")
        + "".join(entry("198.51.100.1", i, f"/image/{i}", "https://example.org/gallery") for i in range(1, 6))
        + entry("198.51.100.1", 9, "/images")  # a page whose name starts alike
    )  # fmt: skip
    plain, globbed = tmp_path / "plain.duckdb", tmp_path / "globbed.duckdb"
    invoke("--db", str(plain), "import", "-q", str(log))
    invoke("--db", str(globbed), "import", "-q", "--non-page", "/image/*", str(log))
    assert len(report(plain, "pages")) == 7
    assert sorted(p["path"] for p in report(globbed, "pages")) == ["/gallery", "/images"]
    # The same as an --asset-ext that is a path glob, and from the config file.
    config = tmp_path / "config.toml"
    config.write_text('asset_extensions = ["/image/*"]\n')
    other = tmp_path / "other.duckdb"
    invoke("--config", str(config), "--db", str(other), "import", "-q", str(log))
    assert sorted(p["path"] for p in report(other, "pages")) == ["/gallery", "/images"]


def test_one_private_address_for_everyone_is_warned_about_once(tmp_path: Path) -> None:
    behind = tmp_path / "behind.log"
    behind.write_text("".join(entry("172.18.0.1", i, f"/p{i % 7}") for i in range(200)))
    db = tmp_path / "s.duckdb"
    r = invoke("--db", str(db), "import", str(behind))
    assert r.stderr.count("one private address") == 1
    assert "set_real_ip_from" in r.stderr
    assert "172.18.0.1" not in r.stderr  # no address in a message
    # Real clients, even with a proxy's health checks among them: nothing said.
    fine = tmp_path / "fine.log"
    fine.write_text(
        "".join(entry(f"198.51.100.{i % 90}", i, "/") for i in range(150))
        + "".join(entry("10.0.0.2", i, "/health") for i in range(150, 200))
    )
    r = invoke("--db", str(tmp_path / "t.duckdb"), "import", str(fine))
    assert "private address" not in r.stderr


def test_junk_and_addresses_are_never_referrer_hosts(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    refs = [
        "http://203.0.113.9/admin",
        "http://[2001:db8::1]:8080/",
        "t('${${env:NaN:-j}ndi${env:NaN:-:}",
        "-f",
        "http://localhost:3000/",
        "https://news.ycombinator.com/item?id=1",
    ]
    log.write_text("".join(entry(f"198.51.100.{i}", i, "/", ref) for i, ref in enumerate(refs)))
    db = tmp_path / "s.duckdb"
    invoke("--db", str(db), "import", "-q", str(log))
    hosts = [r["referrer_host"] for r in report(db, "referrers")["referrers"]]
    assert hosts == ["news.ycombinator.com"]


def test_small_logs_add_up_to_the_sites_own_host(tmp_path: Path) -> None:
    """Eight asset requests per day name the site: no day alone is enough (20), three are."""
    db = tmp_path / "s.duckdb"
    for day in (1, 2, 3):
        log = tmp_path / f"access-{day}.log"
        log.write_text(
            entry("198.51.100.7", 0, "/", day=day)
            + "".join(
                entry("198.51.100.7", i, f"/static/{i}.css", "https://www.example.org/", day=day)
                for i in range(1, 9)
            )
        )
        invoke("--db", str(db), "import", "-q", str(log))
        with Store(db, read_only=True) as store:
            sites = store.meta("site_hosts")
        assert sites == ("example.org" if day == 3 else None), (day, sites)
    # From then on, a click from one of the site's pages is internal, not a referring site.
    log = tmp_path / "access-4.log"
    log.write_text(entry("198.51.100.8", 0, "/about", "https://example.org/", day=4))
    invoke("--db", str(db), "import", "-q", str(log))
    sources = {s["source"]: s["sessions"] for s in report(db, "referrers")["sources"]}
    assert sources.get("internal") == 1 and "website" not in sources


DNT_FORMAT = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" "$http_dnt" "$http_sec_gpc"'
)


def test_do_not_track_and_gpc_are_counted_but_never_followed(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    lines = []
    for i, (dnt, gpc) in enumerate([("-", "-"), ("1", "-"), ("-", "1"), ("0", "0"), ("1", "1")]):
        for k in range(3):
            lines.append(
                f"198.51.100.{i + 1} - - [02/Nov/2026:10:{i:02}:{k * 10:02} +0000] "
                f'"GET /p{k} HTTP/1.1" 200 5 "-" "{FIREFOX}" "{dnt}" "{gpc}"\n'
            )
    log.write_text("".join(lines))
    db = tmp_path / "s.duckdb"
    invoke("--db", str(db), "import", "-q", "--log-format", DNT_FORMAT, str(log))
    overview = report(db, "overview")
    assert (overview["requests"], overview["pageviews"]) == (15, 15)  # all counted
    assert (overview["visitors"], overview["sessions"]) == (2, 2)  # only "-" and "0" followed
    with Store(db, read_only=True) as store:
        assert store.query("SELECT count(*) FROM requests WHERE visitor_id IS NULL")[0][0] == 9
    # Without the fields in the format, nothing changes.
    plain = tmp_path / "plain.log"
    plain.write_text("".join(line.rsplit(' "', 2)[0] + "\n" for line in lines))
    db2 = tmp_path / "t.duckdb"
    invoke("--db", str(db2), "import", "-q", str(plain))
    assert report(db2, "overview")["visitors"] == 5
