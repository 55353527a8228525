"""The dashboard and `--format html`: pages that run nothing, load nothing, and show log
text (written by strangers) as the text it is; read by an HTML parser, and by a real
browser when one is installed."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import html5lib
import pytest
from click.testing import CliRunner

from logalyse.cli import REPORT_HELP, cli
from logalyse.ingest import ingest
from logalyse.store import Store

from .conftest import clean_env, wait_for

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
#: Every section of the dashboard, by its id.
SECTIONS = [
    "over-time", "sources", "campaigns", "search", "pages", "entry", "exit", "countries",
    "devices", "browsers", "os", "heatmap", "durations", "not-found", "bots",
]  # fmt: skip
#: The sample logs' days (the golden files' scope): nothing depends on today.
SCOPE = ["--since", "2026-11-01", "--until", "2026-11-04"]
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")
#: Attributes that may hold a reference to something outside the page.
REFERENCING = {"href", "src", "srcset", "action", "formaction", "data", "poster", "xlink:href"}


def parse(html: str) -> Any:
    return html5lib.parse(html, treebuilder="etree", namespaceHTMLElements=False)


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def text_of(el: Any) -> str:
    return "".join(el.itertext())


def check_inert(html: str) -> Any:
    """What every page must be: no script, no event handler, no reference to anything
    outside it (the only one allowed is in-page data), the CSP in place, no raw control
    character. Returns the parsed page."""
    assert not RAW_CONTROL.search(html), RAW_CONTROL.findall(html)[:5]
    root = parse(html)
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue  # a comment
        tag = local(el.tag)
        assert tag not in ("script", "iframe", "object", "embed", "link", "base", "img", "form")
        assert tag not in ("foreignObject", "use", "image", "a", "animate", "set")
        for name, value in el.attrib.items():
            name = local(name).lower()
            assert not name.startswith("on"), (tag, name, value)
            assert name not in REFERENCING, (tag, name, value)
            assert "javascript:" not in value.lower() or name == "title", (tag, name)
            assert "url(" not in value.lower(), (tag, name, value)
        if tag == "style":
            css = text_of(el)
            assert "url(" not in css and "@import" not in css
    metas = [
        el.get("content")
        for el in root.iter("meta")
        if (el.get("http-equiv") or "").lower() == "content-security-policy"
    ]
    assert metas == [CSP]
    return root


def run(*args: str, db: Path) -> Any:
    result = CliRunner(env=clean_env()).invoke(cli, ["--db", str(db), *args])
    assert result.exit_code == 0, result.output
    return result


# -- the page ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_page(demo_db: Path) -> str:
    return str(run("report", "dashboard", *SCOPE, db=demo_db).stdout)


def test_the_dashboard_runs_and_loads_nothing_and_has_every_section(demo_page: str) -> None:
    root = check_inert(demo_page)
    ids = [s.get("id") for s in root.iter("section")]
    assert ids == SECTIONS
    tiles = [text_of(t) for t in root.iter("div") if t.get("class") == "tile"]
    labels = [text_of(t) for t in root.iter("div") if t.get("class") == "label"]
    assert labels == [
        "Visitors", "Pageviews", "Sessions", "Bounce rate", "Average session", "Bot requests",
    ]  # fmt: skip
    # The demo's numbers (the overview golden file's), and the period they cover.
    overview = json.loads((Path(__file__).parent / "golden" / "overview.json").read_text())
    assert f"{overview['visitors']:,}" in tiles[0]
    assert f"{overview['pageviews']:,}" in tiles[1]
    assert "2026-11-01 to 2026-11-04" in demo_page
    assert "daily ids" in demo_page  # what a visitor means is said
    assert len(demo_page.encode()) <= 150_000


def test_charts_are_inline_svg_with_their_numbers_as_text(demo_page: str) -> None:
    root = parse(demo_page)
    svgs = [el for el in root.iter() if local(str(el.tag)) == "svg"]
    assert len(svgs) == 2  # visitors and pageviews over time; weekday x hour
    tooltips = [text_of(t) for s in svgs for t in s.iter() if local(str(t.tag)) == "title"]
    assert any(t.startswith("2026-11-01") and "visitors" in t for t in tooltips), tooltips[:5]
    # Four days: one row per day in the table under the chart, with the same numbers.
    over_time = next(s for s in root.iter("section") if s.get("id") == "over-time")
    days = [text_of(tr.find("td")) for tr in over_time.iter("tr") if tr.find("td") is not None]
    assert days == ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]


def test_a_short_period_is_drawn_per_hour_and_compared_with_the_one_before(
    demo_db: Path,
) -> None:
    page = run(
        "report", "dashboard", "--since", "2026-11-03", "--until", "2026-11-03", db=demo_db
    ).stdout
    root = check_inert(page)
    over_time = next(s for s in root.iter("section") if s.get("id") == "over-time")
    assert "per hour" in text_of(over_time)
    changes = [text_of(d) for d in root.iter("div") if (d.get("class") or "").startswith("change")]
    assert len(changes) == 6 and all(" vs " in c for c in changes), changes


def test_an_empty_section_says_why(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(
        '203.0.113.9 - - [02/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" '
        '"Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"\n'
    )
    db = tmp_path / "s.duckdb"
    with Store(db) as store:
        ingest(store, [log])  # no GeoIP database: no country
    root = check_inert(run("report", "dashboard", db=db).stdout)
    why = {s.get("id"): text_of(s) for s in root.iter("section")}
    assert "--geoip" in why["countries"]  # how to have countries
    assert "No campaign in this period" in why["campaigns"]
    assert "No bot in this period" in why["bots"]
    assert "/" in why["pages"]


def test_an_empty_period_has_a_page_that_says_so(demo_db: Path) -> None:
    page = run("report", "dashboard", "--since", "2025-01-01", "--until", "2025-01-31", db=demo_db)
    root = check_inert(page.stdout)
    why = {s.get("id"): text_of(s) for s in root.iter("section")}
    assert list(why) == SECTIONS
    assert "No pageviews in this period" in why["over-time"]
    assert all("No request in this period" in why[k] for k in ("pages", "countries", "bots"))


# -- --format html ------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(REPORT_HELP))
def test_every_report_as_html_is_an_inert_page_with_the_json_values(
    demo_db: Path, name: str
) -> None:
    page = run("report", name, *SCOPE, "--format", "html", db=demo_db).stdout
    root = check_inert(page)
    assert not [el for el in root.iter() if local(str(el.tag)) == "svg"]  # mail: no SVG
    assert all(el.get("class") is None for el in root.iter("td"))  # styles inline
    data = json.loads(run("report", name, *SCOPE, "--json", db=demo_db).stdout)
    if isinstance(data, list):
        sections = [data]
    elif all(isinstance(v, list) for v in data.values()):
        sections = list(data.values())  # a report of several tables
    else:
        sections = []  # one record: label and value rows
    first_cells = [text_of(tr.find("td")) for tr in root.iter("tr") if tr.find("td") is not None]
    for rows in sections:
        if isinstance(rows, list) and rows and isinstance(rows[0], dict):
            key = next(iter(rows[0]))
            values = [str(r[key]) for r in rows if isinstance(r[key], str)]
            assert set(values) <= set(first_cells), (key, values[:3], first_cells[:3])


# -- log text written by strangers -------------------------------------------------------

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"
XSS = [
    "<script>alert(1)</script>",
    '"><img/src=x/onerror=alert(1)>',
    "</style><script>alert(2)</script>",
    "<svg/onload=alert(3)>",
    "'-alert(4)-'",
    "]]></title><script>alert(5)</script>",
    "{{7*7}}{%print(1)%}",
]
#: A C1 control (CSI, OSC) as nginx writes it: escaped, \xC2\x9B.
C1 = "\\xC2\\x9B2J\\xC2\\x9D0;t"


def logged(x: str) -> str:
    """`x` as nginx writes it inside a quoted field."""
    return x.replace("\\", "\\x5C").replace('"', "\\x22")


@pytest.fixture(scope="module")
def xss_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lines = []
    for i, x in enumerate(map(logged, XSS)):
        ts = f"[02/Nov/2026:10:{i:02}:00 +0000]"
        # In a path, a referrer, a campaign, a user agent (a bot's, so that it is shown).
        lines += [
            f'198.51.100.{i} - - {ts} "GET /{x} HTTP/1.1" 404 5 "https://evil.example/{x}" '
            f'"{FIREFOX}"',
            f'198.51.100.{i} - - {ts} "GET /p?utm_source={x}&utm_campaign=c{i} HTTP/1.1" 200 5 '
            f'"javascript:alert({i})" "{FIREFOX}"',
            f'198.51.100.{i} - - {ts} "GET /b HTTP/1.1" 200 5 "-" "{x} crawler/1.0"',
        ]
    lines.append(
        f'198.51.100.99 - - [02/Nov/2026:11:00:00 +0000] "GET /c1{C1} HTTP/1.1" 200 5 "-" "{FIREFOX}"'
    )
    tmp = tmp_path_factory.mktemp("xss")
    log = tmp / "access.log"
    log.write_text("\n".join(lines) + "\n")
    db = tmp / "x.duckdb"
    with Store(db) as store:
        stats = ingest(store, [log])
    assert stats.malformed == 0, stats
    return db


def test_hostile_text_is_shown_as_the_text_it_is(xss_db: Path) -> None:
    page = run("report", "dashboard", "--include-bots", "--limit", "50", db=xss_db).stdout
    root = check_inert(page)
    shown = text_of(root.find("body"))
    for x in XSS:
        assert "/" + x in shown, x  # the path, in pages and not found
        assert x in shown  # and the campaign
    # The same values as the JSON reports hold, character for character.
    for name, key in (("pages", "path"), ("campaigns", "utm_source"), ("bots", "bot")):
        data = json.loads(run("report", name, "--include-bots", "--json", db=xss_db).stdout)
        for row in data:
            assert row[key] in shown, (name, row[key])
    assert "\\x9B" in shown  # nginx's escape of a C1 control stays visible text


@pytest.mark.parametrize("name", ["pages", "campaigns", "referrers", "bots", "not-found"])
def test_hostile_text_in_a_mail_report(xss_db: Path, name: str) -> None:
    page = run("report", name, "--include-bots", "--format", "html", db=xss_db).stdout
    root = check_inert(page)
    shown = text_of(root.find("body"))
    data = json.loads(run("report", name, "--include-bots", "--json", db=xss_db).stdout)
    sections = data.values() if isinstance(data, dict) else [data]
    values = [v for rows in sections for row in rows for v in row.values() if isinstance(v, str)]
    assert values
    for value in values:
        if not TIMESTAMP.fullmatch(value):  # shown to the minute
            assert value in shown, (name, value)


# -- writing the file ----------------------------------------------------------------------


def test_the_page_is_replaced_atomically(demo_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "www" / "index.html"
    out.parent.mkdir()
    out.write_text("old page")
    before = out.stat().st_ino
    result = run("report", "dashboard", *SCOPE, "-o", str(out), db=demo_db)
    assert result.stdout == ""
    assert re.fullmatch(r"wrote .*index\.html \(\d+ KiB\)\n", result.stderr)
    assert out.stat().st_ino != before  # a new file renamed over the old one
    assert out.stat().st_mode & 0o044  # a web server may read it
    assert [p.name for p in out.parent.iterdir()] == ["index.html"]  # no temporary left
    check_inert(out.read_text())
    quiet = run("report", "dashboard", *SCOPE, "-q", "-o", str(out), db=demo_db)
    assert quiet.stderr == ""


def test_an_unwritable_output_is_one_line_and_keeps_the_old_page(
    demo_db: Path, tmp_path: Path
) -> None:
    result = CliRunner(env=clean_env()).invoke(
        cli, ["--db", str(demo_db), "report", "dashboard", "-o", str(tmp_path / "no" / "x.html")]
    )
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "No such file or directory" in result.stderr


def test_make_demo_writes_the_dashboard() -> None:
    makefile = (Path(__file__).parent.parent / "Makefile").read_text()
    demo = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "report dashboard" in demo and ".demo/dashboard.html" in demo


# -- tail keeps it fresh ------------------------------------------------------------------


def access_line(i: int, path: str = "/") -> str:
    return (
        f"203.0.113.{i % 250} - - [02/Nov/2026:10:{i // 60 % 60:02}:{i % 60:02} +0000] "
        f'"GET {path} HTTP/1.1" 200 5 "-" "{FIREFOX}"\n'
    )


def test_tail_rewrites_the_dashboard_as_lines_come(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("".join(access_line(i, "/first") for i in range(3)))
    page = tmp_path / "index.html"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGALYSE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "logalyse", "--db", str(tmp_path / "s.duckdb"), "tail", str(log),
         "--every", "1s", "--dashboard", str(page), "--dashboard-every", "1s",
         "--dashboard-since", "2026-11-01"],
        stderr=subprocess.PIPE,
        env=env,
    )  # fmt: skip
    try:
        wait_for(lambda: page.exists() and "/first" in page.read_text(), what="the first page")
        check_inert(page.read_text())
        with open(log, "a") as f:
            f.write("".join(access_line(i, "/second") for i in range(3, 6)))
        wait_for(lambda: "/second" in page.read_text(), what="the page with the new lines")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".index")] == []


def test_tail_refuses_a_bad_dashboard_period(tmp_path: Path) -> None:
    result = CliRunner(env=clean_env()).invoke(
        cli,
        ["--db", str(tmp_path / "s.duckdb"), "tail", str(tmp_path / "a.log"),
         "--dashboard", str(tmp_path / "i.html"), "--dashboard-since", "someday"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "someday" in result.stderr


# -- a real browser -----------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    profile = tmp_path / "profile"
    return subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-quic", "--hide-scrollbars", f"--user-data-dir={profile}", *args],
        capture_output=True,
        timeout=120,
        check=True,
    )  # fmt: skip


def png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the decompressed scanlines of a PNG (enough to tell a blank one)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def normalised_text(html: str) -> str:
    body = parse(html).find("body")
    return " ".join(text_of(body).split())


@needs_chromium
def test_a_browser_runs_nothing_and_draws_the_page(demo_page: str, tmp_path: Path) -> None:
    page = tmp_path / "index.html"
    page.write_text(demo_page)
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout.decode()
    assert normalised_text(dom) == normalised_text(demo_page)  # nothing ran, nothing changed
    for width, height in ((1280, 2400), (375, 4000)):
        shot = tmp_path / f"dashboard-{width}.png"
        chromium(tmp_path, f"--window-size={width},{height}", f"--screenshot={shot}", page.as_uri())
        w, h, pixels = png_pixels(shot)
        assert (w, h) == (width, height)
        # Not blank: a drawn page has text, bars and charts in many shades.
        assert len(set(pixels)) > 100, f"{shot} looks blank"
        assert pixels.count(pixels[1]) < 0.97 * len(pixels), f"{shot} is one colour"
