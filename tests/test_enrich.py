"""Enrichment: browsers, devices, bots, countries, referrer sources and pageviews.

User agents are real strings from the real logs in tests/data/logs, with the expected
classification checked by hand; countries come from MaxMind's test databases (their
documented test addresses) or from a database built here with mmdb-writer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from logalyse.cli import cli
from logalyse.enrich import (
    Agent,
    GeoIP,
    classify_agent,
    classify_host,
    classify_with_hints,
    hints_sql,
    normalise_host,
)
from logalyse.errors import GeoError
from logalyse.ingest import ImportOptions, ingest
from logalyse.refresh import refresh
from logalyse.store import Store

from .conftest import DATA, LOGS

MAXMIND = DATA / "maxmind"
CITY_DB = MAXMIND / "GeoIP2-City-Test.mmdb"
T0 = datetime(2026, 11, 1, 10, 0, 0)

CHROME_WIN = (
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/32.0.1700.107 Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:27.0) Gecko/20100101 Firefox/27.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 7_0_4 like Mac OS X) AppleWebKit/537.51.1 "
    "(KHTML, like Gecko) Version/7.0 Mobile/11B554a Safari/9537.53"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

# (user agent, browser, major, os, device, bot name), checked by hand. The user agents are
# from tests/data/logs, except the recent bots (curl on, GPTBot, UptimeRobot...), as their
# makers document them.
AGENTS = [
    (CHROME_WIN, "Chrome", "32", "Windows", "desktop", None),
    (
        "Mozilla/5.0 (Windows NT 6.1) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/39.0.2171.95 Safari/537.36 OPR/26.0.1656.60",
        "Opera",
        "26",
        "Windows",
        "desktop",
        None,
    ),
    (
        "Mozilla/5.0 (Windows NT 5.1; rv:35.0) Gecko/20100101 Firefox/35.0",
        "Firefox",
        "35",
        "Windows",
        "desktop",
        None,
    ),
    (
        "Mozilla/5.0 (Windows NT 6.3; WOW64; Trident/7.0; rv:11.0) like Gecko",
        "IE",
        "11",
        "Windows",
        "desktop",
        None,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.73.11 "
        "(KHTML, like Gecko) Version/7.0.1 Safari/537.73.11",
        "Safari",
        "7",
        "Mac OS X",
        "desktop",
        None,
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Ubuntu Chromium/32.0.1700.102 Chrome/32.0.1700.102 Safari/537.36",
        "Chromium",
        "32",
        "Ubuntu",
        "desktop",
        None,
    ),
    (IPHONE, "Mobile Safari", "7", "iOS", "mobile", None),
    (
        "Mozilla/5.0 (iPad; CPU OS 7_0_4 like Mac OS X) AppleWebKit/537.51.1 (KHTML, like Gecko) "
        "Version/7.0 Mobile/11B554a Safari/9537.53",
        "Mobile Safari",
        "7",
        "iOS",
        "tablet",
        None,
    ),
    (
        "Mozilla/5.0 (Linux; Android 4.4.2; Nexus 5 Build/KOT49H) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/32.0.1700.99 Mobile Safari/537.36",
        "Chrome Mobile",
        "32",
        "Android",
        "mobile",
        None,
    ),
    (
        "Mozilla/5.0 (Android; Tablet; rv:27.0) Gecko/27.0 Firefox/27.0",
        "Firefox Mobile",
        "27",
        "Android",
        "tablet",
        None,
    ),
    (
        "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0; SLCC2; "
        ".NET CLR 2.0.50727; .NET CLR 3.5.30729; .NET CLR 3.0.30729; Media Center PC 6.0; "
        "Tablet PC 2.0)",
        "IE",
        "8",
        "Windows",
        "desktop",  # "Tablet PC" is a Windows 7 component, not a tablet
        None,
    ),
    (GOOGLEBOT, "Googlebot", "2", None, "bot", "Googlebot"),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 6_0 like Mac OS X) AppleWebKit/536.26 (KHTML, like "
        "Gecko) Version/6.0 Mobile/10A5376e Safari/8536.25 (compatible; Googlebot/2.1; "
        "+http://www.google.com/bot.html)",
        "Googlebot",
        "2",
        "iOS",
        "bot",
        "Googlebot",
    ),
    ("-", None, None, None, "bot", "(no user agent)"),
    ("", None, None, None, "bot", "(no user agent)"),
    ("Tiny Tiny RSS/1.11 (http://tt-rss.org/)", None, None, None, "bot", "Tiny Tiny RSS"),
    ("UniversalFeedParser/4.2-pre-314-svn +http://feedparser.org/", None, None, None, "bot", None),
    ("Mozilla/5.0 (compatible; Ezooms/1.0; help@moz.com)", None, None, None, "bot", "Ezooms"),
    ("FeedBurner/1.0 (http://www.FeedBurner.com)", None, None, None, "bot", "FeedBurner"),
    (
        "Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)",
        None,
        None,
        None,
        "bot",
        "Yahoo! Slurp",
    ),
    ("msnbot/2.0b (+http://search.msn.com/msnbot.htm)", None, None, None, "bot", "msnbot"),
    (
        "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
        None,
        None,
        None,
        "bot",
        "Baiduspider",
    ),
    ("curl/8.5.0", None, None, None, "bot", None),
    ("python-requests/2.31.0", None, None, None, "bot", None),
    (
        "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
        *[None] * 3,
        "bot",
        None,
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
        "+https://openai.com/gptbot)",
        *[None] * 3,
        "bot",
        "GPTBot",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/120.0.0.0 Safari/537.36",
        *[None] * 3,
        "bot",
        None,
    ),
    ("kube-probe/1.29", *[None] * 3, "bot", None),
]


@pytest.mark.parametrize(("ua", "browser", "major", "os", "device", "bot_name"), AGENTS)
def test_user_agents_from_real_logs(
    ua: str,
    browser: str | None,
    major: str | None,
    os: str | None,
    device: str,
    bot_name: str | None,
) -> None:
    agent = classify_agent(ua)
    assert agent.device == device
    assert agent.is_bot == (device == "bot")
    if device != "bot":
        assert (agent.browser, agent.browser_major, agent.os) == (browser, major, os)
        assert agent.bot_name is None
    else:
        assert agent.bot_name  # a bot always has a name to report it by
        if bot_name:
            assert agent.bot_name == bot_name
        if browser:
            assert agent.browser == browser


def test_every_user_agent_in_the_real_logs_gets_a_device() -> None:
    """Over the real logs' ~660 distinct agents: mostly desktop humans, each bot named,
    and the hand-checked big ones above in place (their share of requests is stable)."""
    from collections import Counter

    devices: Counter[str] = Counter()
    for log in ("cymnasium-access.log-20240506", "elastic-apache_logs.log", "hackers-access.log"):
        for line in (LOGS / log).read_text(errors="replace").splitlines():
            parts = line.split('"')
            if len(parts) >= 6:
                agent = classify_agent(parts[5])
                devices[agent.device] += 1
                assert agent.device != "bot" or agent.bot_name
    assert set(devices) == {"desktop", "mobile", "tablet", "bot", "other"}
    total = sum(devices.values())
    assert devices["desktop"] / total > 0.7
    assert 0.15 < devices["bot"] / total < 0.25


def _real_user_agents() -> list[str]:
    uas = set()
    for log in sorted(LOGS.glob("*")) + sorted(DATA.glob("fixtures/*/*")):
        for line in log.read_text(errors="replace").splitlines():
            parts = line.split('"')
            if len(parts) >= 6:
                uas.add(parts[5])
    return sorted(uas)


def _with_hints(uas: list[str]) -> list[Agent]:
    """What the import does: the pattern matching in DuckDB, the rest in Python."""
    rows = (
        duckdb.connect()
        .execute(
            f"SELECT u, {hints_sql('u')} FROM (SELECT unnest($1::VARCHAR[]) AS u, "
            "generate_subscripts($1::VARCHAR[], 1) AS i) ORDER BY i",
            [uas],
        )
        .fetchall()
    )
    return [classify_with_hints(*row) for row in rows]


def test_the_import_classifies_as_classify_agent_does() -> None:
    """The import matches patterns in DuckDB (RE2, in parallel); enrich and the tests use
    Python's re: both give the same answer for every real user agent."""
    uas = _real_user_agents()
    assert len(uas) > 600
    assert _with_hints(uas) == [classify_agent(u) for u in uas]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=80),
            st.sampled_from(_real_user_agents()[::7]).map(lambda u: u.upper()),
            st.builds(
                lambda a, b: a + b,
                st.sampled_from(["Mozilla/5.0 (", "curl/", "www.", "Feed"]),
                st.text(max_size=30),
            ),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_hints_agree_with_python_on_any_text(uas: list[str]) -> None:
    uas = [u.replace("\x00", "") for u in uas]
    assert _with_hints(uas) == [classify_agent(u) for u in uas]


@pytest.mark.parametrize(
    ("host", "kind", "name"),
    [
        ("google.com", "search", "Google"),
        ("google.co.uk", "search", "Google"),
        ("bing.com", "search", "Bing"),
        ("duckduckgo.com", "search", "DuckDuckGo"),
        ("m.facebook.com", "social", "Facebook"),
        ("t.co", "social", "Twitter"),
        ("news.ycombinator.com", "social", "Hacker News"),
        ("chatgpt.com", "ai", "ChatGPT"),
        ("perplexity.ai", "ai", "Perplexity"),
        ("semalt.com", "spam", "semalt.com"),
        ("sub.semalt.com", "spam", "sub.semalt.com"),
        ("blog.example.org", "website", "blog.example.org"),
    ],
)
def test_referrer_hosts(host: str, kind: str, name: str) -> None:
    assert classify_host(host) == (kind, name)


def test_normalise_host() -> None:
    assert normalise_host("https://WWW.Example.com:8443/path") == "example.com"
    assert normalise_host("example.com") == "example.com"


# --- GeoIP -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "country", "city"),
    [
        ("81.2.69.142", "GB", "London"),
        ("89.160.20.128", "SE", "Linköping"),
        ("175.16.199.1", "CN", "Changchun"),
        ("216.160.83.56", "US", "Milton"),
        ("2001:218::1", "JP", None),
        ("10.0.0.1", None, None),
        ("not-an-address", None, None),
    ],
)
def test_maxmind_test_database(address: str, country: str | None, city: str | None) -> None:
    assert GeoIP(CITY_DB, city=True).lookup(address) == (country, city)
    assert GeoIP(CITY_DB).lookup(address) == (country, None)


def test_a_database_built_with_mmdb_writer(tmp_path: Path) -> None:
    path = build_country_db(tmp_path / "c.mmdb", {"198.51.100.0/24": "FR", "2001:db8::/32": "DE"})
    geo = GeoIP(path)
    assert geo.lookup("198.51.100.7") == ("FR", None)
    assert geo.lookup("2001:db8::5") == ("DE", None)
    assert geo.lookup("203.0.113.1") == (None, None)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.mmdb", "no GeoIP database at"),
        ("GeoLite2-ASN-Test.mmdb", "is a GeoLite2-ASN database"),
        ("GeoIP2-City-Test-Broken-Double-Format.mmdb", "not a valid MaxMind-format database"),
        ("MaxMind-DB-test-broken-pointers-24.mmdb", "City or Country"),
    ],
)
def test_unusable_geoip_databases_are_clear_errors(name: str, message: str) -> None:
    with pytest.raises(GeoError, match=message):
        GeoIP(MAXMIND / name)


def test_a_non_database_file_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(GeoError, match="not a valid MaxMind-format database"):
        GeoIP(junk)


def build_country_db(path: Path, networks: dict[str, str]) -> Path:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(6, "GeoLite2-Country", ipv4_compatible=True)
    for network, code in networks.items():
        writer.insert_network(IPSet([network]), {"country": {"iso_code": code}})
    writer.to_db_file(str(path))
    return path


# --- the import stores what reports need -------------------------------------------------


def line(
    ip: str = "203.0.113.9",
    ts: datetime = T0,
    path: str = "/",
    status: int = 200,
    ua: str = FIREFOX_LINUX,
    ref: str = "-",
    method: str = "GET",
) -> str:
    stamp = ts.strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'{ip} - - [{stamp}] "{method} {path} HTTP/1.1" {status} 512 "{ref}" "{ua}"'


def import_lines(db: Path, lines: list[str], **options: object) -> None:
    log = db.parent / f"access-{len(list(db.parent.glob('access-*')))}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(x + "\n" for x in lines))
    with Store(db) as store:
        ingest(store, [log], ImportOptions(**options))  # type: ignore[arg-type]


def column(db: Path, sql: str) -> list[tuple[object, ...]]:
    with Store(db, read_only=True) as store:
        return store.query(sql)


def test_countries_are_stored_and_cities_only_when_asked(tmp_path: Path) -> None:
    lines = [
        line("81.2.69.142", path="/a"),
        line("175.16.199.1", path="/b"),
        line("::ffff:81.2.69.142", path="/c"),  # IPv4-mapped: folds to IPv4
        line("192.0.2.1", path="/d"),  # documentation range: no country
    ]
    import_lines(tmp_path / "a.duckdb", lines, geoip=CITY_DB)
    import_lines(tmp_path / "b.duckdb", lines, geoip=CITY_DB, geoip_city=True)
    import_lines(tmp_path / "c.duckdb", lines)
    sql = "SELECT path, country, city FROM requests ORDER BY path"
    assert column(tmp_path / "a.duckdb", sql) == [
        ("/a", "GB", None),
        ("/b", "CN", None),
        ("/c", "GB", None),
        ("/d", None, None),
    ]
    assert column(tmp_path / "b.duckdb", sql) == [
        ("/a", "GB", "London"),
        ("/b", "CN", "Changchun"),
        ("/c", "GB", "London"),
        ("/d", None, None),
    ]
    assert {r[1] for r in column(tmp_path / "c.duckdb", sql)} == {None}


def test_country_of_the_forwarded_client_behind_a_proxy(tmp_path: Path) -> None:
    stamp = T0.strftime("%d/%b/%Y:%H:%M:%S +0000")
    text = f'10.0.0.2 - - [{stamp}] "GET / HTTP/1.1" 200 5 "-" "{FIREFOX_LINUX}" "89.160.20.128"\n'
    log = tmp_path / "access.log"
    log.write_text(text)
    with Store(tmp_path / "db.duckdb") as store:
        ingest(store, [log], ImportOptions(format="main", geoip=CITY_DB))
    assert column(tmp_path / "db.duckdb", "SELECT country FROM requests") == [("SE",)]


def test_user_agents_are_classified_once_and_kept(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    import_lines(db, [line(ua=CHROME_WIN), line(ua=GOOGLEBOT, path="/x"), line(ua=CHROME_WIN)])
    assert column(
        db,
        "SELECT browser, browser_major, os, device, is_bot, bot_name FROM user_agents ORDER BY id",
    ) == [
        ("Chrome", "32", "Windows", "desktop", False, None),
        ("Googlebot", "2", None, "bot", True, "Googlebot"),
    ]
    assert column(db, "SELECT count(*) FILTER (is_bot), count(*) FROM requests") == [(1, 3)]


@pytest.mark.parametrize(
    ("method", "path", "status", "ua", "pageview"),
    [
        ("GET", "/", 200, FIREFOX_LINUX, True),
        ("GET", "/blog/post", 304, FIREFOX_LINUX, True),
        ("GET", "/blog/post?utm_source=x", 200, FIREFOX_LINUX, True),
        ("GET", "/index.html", 200, FIREFOX_LINUX, True),
        ("GET", "/feed.xml", 200, FIREFOX_LINUX, True),
        ("HEAD", "/", 200, FIREFOX_LINUX, False),
        ("POST", "/login", 200, FIREFOX_LINUX, False),
        ("GET", "/missing", 404, FIREFOX_LINUX, False),
        ("GET", "/moved", 301, FIREFOX_LINUX, False),
        ("GET", "/error", 500, FIREFOX_LINUX, False),
        ("GET", "/", 200, GOOGLEBOT, False),
        ("GET", "/style.css", 200, FIREFOX_LINUX, False),
        ("GET", "/app.JS", 200, FIREFOX_LINUX, False),
        ("GET", "/img/logo.png?v=3", 200, FIREFOX_LINUX, False),
        ("GET", "/fonts/a.woff2", 200, FIREFOX_LINUX, False),
        ("GET", "/app.js.map", 200, FIREFOX_LINUX, False),
        ("GET", "/favicon.ico", 200, FIREFOX_LINUX, False),
        ("GET", "/robots.txt", 200, FIREFOX_LINUX, False),
    ],
)
def test_pageviews(
    tmp_path: Path, method: str, path: str, status: int, ua: str, pageview: bool
) -> None:
    db = tmp_path / "db.duckdb"
    import_lines(db, [line(method=method, path=path, status=status, ua=ua)])
    assert column(db, "SELECT is_pageview FROM requests") == [(pageview,)]


def test_asset_rules_are_configurable(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    import_lines(
        db,
        [line(path="/doc.pdf"), line(path="/style.css"), line(path="/health")],
        asset_extensions=("pdf",),
        non_pages=("/health",),
    )
    assert column(db, "SELECT path, is_pageview FROM requests ORDER BY path") == [
        ("/doc.pdf", False),
        ("/health", False),
        ("/style.css", True),
    ]


def test_referrer_sources(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    t = [T0 + timedelta(seconds=i) for i in range(12)]
    import_lines(
        db,
        [
            line(ts=t[0], path="/1"),
            line(ts=t[1], path="/2", ref="https://www.Google.co.uk/search?q=secret"),
            line(ts=t[2], path="/3", ref="https://m.facebook.com/"),
            line(ts=t[3], path="/4", ref="https://chatgpt.com/"),
            line(ts=t[4], path="/5", ref="https://blog.example.org/post#frag"),
            line(
                ts=t[5],
                path="/6?utm_source=newsletter&utm_medium=email&utm_campaign=nov",
                ref="https://www.google.com/",
            ),
            line(ts=t[6], path="/7?ref=producthunt"),
            line(ts=t[7], path="/8", ref="http://semalt.com/crawler?u=1"),
            line(ts=t[8], path="/9", ref="https://www.mysite.example/previous"),
            line(ts=t[9], path="/10", ref="android-app://com.google.android.gm/"),
        ],
        sites=("mysite.example",),
    )
    got = column(
        db,
        "SELECT path, referrer, referrer_host, source_kind, source_name, utm_source, utm_medium, "
        "utm_campaign FROM requests ORDER BY ts",
    )
    assert got == [
        ("/1", None, None, "direct", None, None, None, None),
        (
            "/2",
            "https://www.Google.co.uk/search",
            "google.co.uk",
            "search",
            "Google",
            None,
            None,
            None,
        ),
        ("/3", "https://m.facebook.com/", "m.facebook.com", "social", "Facebook", None, None, None),
        ("/4", "https://chatgpt.com/", "chatgpt.com", "ai", "ChatGPT", None, None, None),
        (
            "/5",
            "https://blog.example.org/post",
            "blog.example.org",
            "website",
            "blog.example.org",
            None,
            None,
            None,
        ),
        (
            "/6",
            "https://www.google.com/",
            "google.com",
            "campaign",
            "newsletter",
            "newsletter",
            "email",
            "nov",
        ),
        ("/7", None, None, "campaign", "producthunt", "producthunt", None, None),
        ("/8", "http://semalt.com/crawler", "semalt.com", "spam", "semalt.com", None, None, None),
        (
            "/9",
            "https://www.mysite.example/previous",
            "mysite.example",
            "internal",
            "mysite.example",
            None,
            None,
            None,
        ),
        (
            "/10",
            "android-app://com.google.android.gm/",
            "com.google.android.gm",
            "website",
            "com.google.android.gm",
            None,
            None,
            None,
        ),
    ]


def test_self_referrals_by_the_logged_host_are_internal(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    stamp = T0.strftime("%d/%b/%Y:%H:%M:%S +0000")
    log = tmp_path / "access.log"
    log.write_text(
        f'www.shop.example 203.0.113.9 - - [{stamp}] "GET /a HTTP/1.1" 200 5 '
        f'"https://shop.example/" "{FIREFOX_LINUX}"\n'
        f'shop.example:443 203.0.113.9 - - [{stamp}] "GET /b HTTP/1.1" 200 5 '
        f'"https://other.example/" "{FIREFOX_LINUX}"\n'
    )
    with Store(db) as store:
        ingest(store, [log], ImportOptions(format="vhost_combined"))
    assert column(db, "SELECT path, source_kind FROM requests ORDER BY path") == [
        ("/a", "internal"),
        ("/b", "website"),
    ]


def test_own_host_is_inferred_from_the_referrers_of_assets(tmp_path: Path) -> None:
    """A combined log names no host; the page that loads the assets does."""
    db = tmp_path / "db.duckdb"
    lines = [line(path=f"/s{i}.css", ref="https://mysite.example/") for i in range(30)]
    lines.append(line(path="/about", ref="https://mysite.example/"))
    lines.append(line(path="/x", ref="https://elsewhere.example/"))
    import_lines(db, lines)
    assert column(db, "SELECT path, source_kind FROM requests WHERE path IN ('/about', '/x')") == [
        ("/about", "internal"),
        ("/x", "website"),
    ]
    # A later import of another file knows the host already.
    import_lines(db, [line(path="/later", ref="https://www.mysite.example/about")])
    assert column(db, "SELECT source_kind FROM requests WHERE path = '/later'") == [("internal",)]


# --- enrich --refresh --------------------------------------------------------------------


def test_refresh_reclassifies_stored_rows_after_a_new_site(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    import_lines(
        db, [line(path="/a", ref="https://mysite.example/"), line(path="/b")], geoip=CITY_DB
    )
    assert column(db, "SELECT source_kind FROM requests ORDER BY path") == [
        ("website",),
        ("direct",),
    ]
    with Store(db) as store:
        stats = refresh(store, everything=True, sites=["mysite.example"])
    assert stats.requests == 2
    assert stats.without_country == 2  # 203.0.113.9 is in no database: that can't be redone
    assert column(db, "SELECT source_kind FROM requests ORDER BY path") == [
        ("internal",),
        ("direct",),
    ]


def test_refresh_only_classifies_what_was_never_classified(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    import_lines(db, [line(ua=CHROME_WIN), line(ua=GOOGLEBOT, path="/b")])
    with Store(db) as store:
        store.query("UPDATE requests SET is_bot = NULL, is_pageview = NULL WHERE path = '/b'")
        store.query(
            "UPDATE user_agents SET is_bot = NULL, device = NULL WHERE ua LIKE '%Googlebot%'"
        )
        stats = refresh(store)
    assert (stats.user_agents, stats.requests) == (1, 1)
    assert column(db, "SELECT path, is_bot, is_pageview FROM requests ORDER BY path") == [
        ("/", False, True),
        ("/b", True, False),
    ]
    assert column(db, "SELECT device FROM user_agents WHERE is_bot") == [("bot",)]


# --- the command line --------------------------------------------------------------------


def test_cli_import_with_geoip_and_enrich(tmp_path: Path, runner: CliRunner) -> None:
    log = tmp_path / "access.log"
    log.write_text(line("81.2.69.142") + "\n" + line("89.160.20.128", path="/x") + "\n")
    db = str(tmp_path / "db.duckdb")
    result = runner.invoke(cli, ["--db", db, "import", "--geoip", str(CITY_DB), str(log)])
    assert result.exit_code == 0, result.output
    assert column(Path(db), "SELECT country FROM requests ORDER BY path") == [("GB",), ("SE",)]
    result = runner.invoke(cli, ["--db", db, "enrich", "--refresh", "--site", "example.org"])
    assert result.exit_code == 0, result.output
    assert "classified 1 user agent and 2 requests" in result.output


def test_cli_geoip_from_the_environment(tmp_path: Path, runner: CliRunner) -> None:
    log = tmp_path / "access.log"
    log.write_text(line("216.160.83.56") + "\n")
    db = str(tmp_path / "db.duckdb")
    result = runner.invoke(
        cli, ["--db", db, "import", str(log)], env={"LOGALYSE_GEOIP": str(CITY_DB)}
    )
    assert result.exit_code == 0, result.output
    assert column(Path(db), "SELECT country FROM requests") == [("US",)]


@pytest.mark.parametrize(
    "name", ["missing.mmdb", "GeoLite2-ASN-Test.mmdb", "GeoIP2-City-Test-Broken-Double-Format.mmdb"]
)
def test_cli_bad_geoip_is_a_message_not_a_traceback(
    tmp_path: Path, runner: CliRunner, name: str
) -> None:
    log = tmp_path / "access.log"
    log.write_text(line() + "\n")
    db = tmp_path / "db.duckdb"
    result = runner.invoke(
        cli, ["--db", str(db), "import", "--geoip", str(MAXMIND / name), str(log)]
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert str(MAXMIND / name) in result.output
    assert not db.exists() or column(db, "SELECT count(*) FROM requests") == [(0,)]
