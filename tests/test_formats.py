"""The log_format compiler, the parse query, and detection: real files and generated ones."""

from __future__ import annotations

import string
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logalyse.errors import FormatError
from logalyse.formats import StreamPrefix, compile_format, parse_query
from logalyse.formats.detect import detect_format, detect_prefix
from logalyse.formats.spec import Var, unwrap_nginx_conf
from logalyse.ingest import line_ends, load_lines

from .conftest import FIXTURES, LOGS


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(config={"temp_directory": ""})
    c.execute("SET TimeZone = 'UTC'")
    return c


def parse(
    con: duckdb.DuckDBPyConnection, fmt: str, text: str | bytes, **kw: object
) -> list[dict[str, object]]:
    data = text.encode() if isinstance(text, str) else text
    if not data.endswith(b"\n"):
        data += b"\n"
    con.execute("DROP TABLE IF EXISTS batch")
    load_lines(con, "batch", data)
    sql = parse_query(compile_format(fmt), "batch", **kw)  # type: ignore[arg-type]
    cur = con.execute(f"SELECT * FROM ({sql}) ORDER BY ln")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


# -- compiling formats ---------------------------------------------------------------


COMBINED_VARIABLES = (
    "remote_addr",
    "remote_user",
    "time_local",
    "request",
    "status",
    "body_bytes_sent",
    "http_referer",
    "http_user_agent",
)


@pytest.mark.parametrize(
    ("preset", "name", "variables"),
    [
        ("combined", "combined", COMBINED_VARIABLES),
        ("common", "common", COMBINED_VARIABLES[:6]),
        ("clf", "common", COMBINED_VARIABLES[:6]),
        ("vhost_combined", "vhost_combined", ("host", *COMBINED_VARIABLES)),
        ("main", "main", (*COMBINED_VARIABLES, "http_x_forwarded_for")),
        ("combined_xff", "main", (*COMBINED_VARIABLES, "http_x_forwarded_for")),
        (
            "json",
            "json",
            (
                "remote_addr",
                "http_x_forwarded_for",
                "time_iso8601",
                "msec",
                "request",
                "request_method",
                "request_uri",
                "server_protocol",
                "status",
                "body_bytes_sent",
                "http_referer",
                "http_user_agent",
                "host",
                "http_dnt",
                "http_sec_gpc",
            ),
        ),
    ],
)
def test_presets_compile(preset: str, name: str, variables: tuple[str, ...]) -> None:
    fmt = compile_format(preset)
    assert (fmt.name, fmt.variables) == (name, variables)


def test_format_pasted_from_nginx_conf() -> None:
    conf = """log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';"""
    assert compile_format(conf).tokens == compile_format("main").tokens


def test_unwrap_keeps_bare_format_starting_with_a_quote() -> None:
    text = '"$http_x_forwarded_for" $remote_addr [$time_local] "$request" $status'
    assert unwrap_nginx_conf(text) == (text, False)


def test_unknown_variables_are_skipped_fields() -> None:
    fmt = compile_format(
        '$remote_addr [$time_local] "$request" $status $request_time $upstream_addr'
    )
    assert Var("request_time") in fmt.tokens and "upstream_addr" in fmt.variables


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuchpreset", "unknown format 'nosuchpreset'"),
        ("$remote_addr$remote_user [$time_local] $request $status", "nothing between them"),
        ("$remote_addr [$time_local] $status", "lacks the request"),
        ('$remote_addr "$request" $status', "lacks a time"),
        ('{"ip": "$remote_addr"}', "lacks a time"),
    ],
)
def test_bad_formats_are_clear_errors(spec: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        compile_format(spec)


# -- parsing real logs and fixtures --------------------------------------------------

# Exact kinds for every real log and fixture, checked by reading the files: a request is
# "ok" when it has a time and a status; TLS junk in the request line is still a request.
EXPECTED = {
    "logs/cymnasium-access.log-20240506": ("main", {"ok": 477}),
    "logs/elastic-apache_logs.log": ("combined", {"ok": 10000}),
    "logs/hackers-access.log": ("combined", {"ok": 3456}),
    "fixtures/crowdsec-hub/caddy-logs--caddy-logs.log": ("combined", {"malformed": 11, "blank": 1}),
    "fixtures/crowdsec-hub/ipv6-postoverflow--ipv6-postoverflow.log": ("combined", {"ok": 2}),
    "fixtures/crowdsec-hub/nginx-bad-user-agent--nginx-bad-user-agent.log": ("combined", {"ok": 3}),
    "fixtures/crowdsec-hub/nginx-http-malformed--nginx_http-logs.log": ("combined", {"ok": 12}),
    "fixtures/crowdsec-hub/nginx-http-path-traversal--nginx-http-path-traversal.log": (
        "combined",
        {"ok": 9},
    ),
    "fixtures/crowdsec-hub/nginx-http-sqli-probing--nginx-http-sqli-probing.log": (
        "combined",
        {"ok": 16},
    ),
    "fixtures/crowdsec-hub/nginx-http-xss-probing--nginx-http-xss-probing.log": (
        "combined",
        {"ok": 26},
    ),
    "fixtures/crowdsec-hub/nginx-proxy-manager-logs--nginx-proxy-manager-logs.log": (
        "combined",
        {"ok": 1, "malformed": 11, "nonaccess": 2},
    ),
    "fixtures/crowdsec-hub/nginx_http-logs--nginx_http-logs.log": (
        "combined",
        {"ok": 7, "malformed": 1, "nonaccess": 1},
    ),
    "fixtures/crowdsec-hub/traefik_json--traefik_json.log": ("combined", {"malformed": 7}),
    "fixtures/elastic-beats-apache/test.log": ("common", {"ok": 7}),
    "fixtures/elastic-beats-nginx/test-with-host.log": (
        "vhost_combined",
        {"ok": 9, "malformed": 1},
    ),
    "fixtures/elastic-beats-nginx/test.log": ("combined", {"ok": 6, "malformed": 1}),
    "fixtures/mtail/apache-combined.log": ("combined", {"ok": 5}),
    "fixtures/mtail/apache-common.log": ("combined", {"ok": 3}),
    "fixtures/mtail/lighttpd_access.log": ("combined", {"malformed": 19}),
    "fixtures/lnav/logfile_access_log.0": ("combined", {"ok": 3}),
    "fixtures/lnav/logfile_access_log.1": ("combined", {"ok": 1}),
    "fixtures/lnav/logfile_bad_access_log.0": ("combined", {"ok": 2, "malformed": 1}),
    "fixtures/lnav/logfile_regexp_access_log.0": ("combined", {"malformed": 2}),
    "fixtures/lnav/logfile_syslog_with_access_log.0": ("combined", {"malformed": 5}),
}


def test_every_real_file_is_listed() -> None:
    on_disk = {
        str(p.relative_to(LOGS.parent))
        for p in [*LOGS.iterdir(), *FIXTURES.rglob("*")]
        if p.is_file() and "LICENSE" not in p.name and not p.name.endswith(".md")
    }
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_files_detect_and_parse_exactly(con: duckdb.DuckDBPyConnection, name: str) -> None:
    fmt, kinds = EXPECTED[name]
    data = (LOGS.parent / name).read_bytes()
    lines = data.decode("utf-8", "backslashreplace").splitlines()
    det = detect_format(con, lines)
    assert det.format.name == fmt
    got = Counter(r["kind"] for r in parse(con, fmt, data))
    assert dict(got) == kinds


def test_combined_fields(con: duckdb.DuckDBPyConnection) -> None:
    line = (
        '203.0.113.9 - bob [17/May/2015:10:05:03 +0200] "GET /a/b?x=1&y=2 HTTP/1.1" 200 4321 '
        '"https://www.google.com/search?q=x" "Mozilla/5.0 (X11) \\x22quoted\\x22"'
    )
    (r,) = parse(con, "combined", line)
    assert r["kind"] == "ok"
    assert r["ts"] == datetime(2015, 5, 17, 8, 5, 3)  # stored in UTC
    assert (r["client"], r["method"], r["path"], r["query"], r["proto"]) == (
        "203.0.113.9",
        "GET",
        "/a/b",
        "x=1&y=2",
        "HTTP/1.1",
    )
    assert (r["status"], r["bytes"]) == (200, 4321)
    assert r["referrer"] == "https://www.google.com/search?q=x"
    assert r["ua"] == "Mozilla/5.0 (X11) \\x22quoted\\x22"  # decoded later, per distinct value


def test_dashes_and_empty_request(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = parse(con, "combined", '::1 - - [26/Dec/2016:16:16:48 +0200] "-" 408 - "-" "-"')
    assert r["kind"] == "ok"
    assert (r["method"], r["path"], r["bytes"], r["referrer"], r["ua"]) == (None, None, 0, None, "")


def test_line_cut_before_closing_quote_still_parses(con: duckdb.DuckDBPyConnection) -> None:
    line = '1.2.3.4 - - [20/May/2015:12:05:17 +0000] "GET / HTTP/1.1" 200 235 "-" "Googlebot/2.1'
    (r,) = parse(con, "combined", line)
    assert (r["kind"], r["ua"]) == ("ok", "Googlebot/2.1")


def test_crlf_and_blank_lines(con: duckdb.DuckDBPyConnection) -> None:
    text = '1.2.3.4 - - [20/May/2015:12:05:17 +0000] "GET / HTTP/1.1" 200 1 "-" "x"\r\n\r\n   \n'
    assert [r["kind"] for r in parse(con, "combined", text)] == ["ok", "blank", "blank"]
    assert parse(con, "combined", text)[0]["ua"] == "x"


def test_invalid_utf8_is_kept_escaped(con: duckdb.DuckDBPyConnection) -> None:
    data = b'1.2.3.4 - - [20/May/2015:12:05:17 +0000] "GET /caf\xe9 HTTP/1.1" 200 1 "-" "x"\n'
    (r,) = parse(con, "combined", data)
    assert r["path"] == "/caf\\xe9"


def test_vhost_port_is_dropped(con: duckdb.DuckDBPyConnection) -> None:
    line = 'Example.COM:443 1.2.3.4 - - [20/May/2015:12:05:17 +0000] "GET / HTTP/1.1" 200 1 "-" "x"'
    assert parse(con, "vhost_combined", line)[0]["host"] == "example.com"


def test_custom_format_with_split_request_and_iso_time(con: duckdb.DuckDBPyConnection) -> None:
    fmt = "$remote_addr|$time_iso8601|$request_method|$uri|$args|$status|$body_bytes_sent|$request_time"
    (r,) = parse(con, fmt, "10.0.0.1|2024-05-05T10:00:00+02:00|POST|/api/x|a=1|201|12|0.003")
    assert (r["kind"], r["ts"], r["method"], r["path"], r["query"], r["status"]) == (
        "ok",
        datetime(2024, 5, 5, 8, 0, 0),
        "POST",
        "/api/x",
        "a=1",
        201,
    )


def test_json_format_from_nginx_conf(con: duckdb.DuckDBPyConnection) -> None:
    conf = (
        'log_format jsonlog escape=json \'{"t":"$time_iso8601","ip":"$remote_addr",'
        '"req":"$request","st":$status,"ua":"$http_user_agent"}\';'
    )
    line = '{"t":"2024-05-05T10:00:00+00:00","ip":"2001:db8::1","req":"GET /x?y=1 HTTP/2.0","st":404,"ua":"a \\"b\\""}'
    (r,) = parse(con, conf, line)
    assert (r["kind"], r["client"], r["path"], r["status"], r["ua"]) == (
        "ok",
        "2001:db8::1",
        "/x",
        404,
        'a "b"',
    )


def test_json_preset_knows_common_key_names(con: duckdb.DuckDBPyConnection) -> None:
    lines = (
        '{"time":"05/May/2024:10:00:00 +0000","remote_addr":"1.2.3.4","request":"GET / HTTP/1.1",'
        '"status":"200","body_bytes_sent":"5","http_referer":"","http_user_agent":"curl/8"}\n'
        "not json at all\n"
    )
    assert [r["kind"] for r in parse(con, "json", lines)] == ["ok", "malformed"]


def test_error_and_startup_lines_are_not_malformed(con: duckdb.DuckDBPyConnection) -> None:
    text = "\n".join(
        [
            '2024/05/05 10:00:00 [error] 29#29: *1 open() "/x" failed, client: 1.2.3.4, server: _',
            "/docker-entrypoint.sh: Configuration complete; ready for start up",
            "10-listen-on-ipv6-by-default.sh: info: Enabled listen on IPv6",
            "Attaching to nginx-1",
            "random garbage",
        ]
    )
    assert [r["kind"] for r in parse(con, "combined", text)] == ["nonaccess"] * 4 + ["malformed"]


# -- docker compose prefixes ----------------------------------------------------------

ACCESS = '1.2.3.4 - - [05/May/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8"'


@pytest.mark.parametrize(
    ("line", "prefix"),
    [
        (f"nginx-1  | {ACCESS}", StreamPrefix(service=True)),
        (f"nginx_1  | {ACCESS}", StreamPrefix(service=True)),
        (f"web-nginx-1  | 2024-05-05T10:00:00.123456789Z {ACCESS}", StreamPrefix(True, True)),
        (f"2024-05-05T10:00:00.123456789Z {ACCESS}", StreamPrefix(timestamp=True)),
        (ACCESS, StreamPrefix()),
    ],
)
def test_docker_prefixes(con: duckdb.DuckDBPyConnection, line: str, prefix: StreamPrefix) -> None:
    assert detect_prefix([line]) == prefix
    (r,) = parse(con, "combined", line, prefix=prefix)
    assert (r["kind"], r["client"], r["path"]) == ("ok", "1.2.3.4", "/")
    if prefix.service:
        assert r["svc"] in ("nginx-1", "nginx_1", "web-nginx-1")
    if prefix.timestamp:
        assert r["dts"] == datetime(2024, 5, 5, 10, 0, 0, 123456)


def test_service_filter(con: duckdb.DuckDBPyConnection) -> None:
    text = f"nginx-1  | {ACCESS}\napp-1    | {ACCESS}\nnginx-2  | {ACCESS}\n"
    kinds = [
        r["kind"]
        for r in parse(con, "combined", text, prefix=StreamPrefix(service=True), service="nginx")
    ]
    assert kinds == ["ok", "other", "ok"]


# -- property: whatever nginx writes in a format, the parser reads back ---------------

_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters='"\\\n\r'),
    max_size=40,
)
_token = st.text(
    alphabet=string.ascii_letters + string.digits + "/._-~%=&", min_size=1, max_size=30
)


def _nginx_escape(value: str) -> str:
    """What nginx writes for a value: `"`, `\\`, controls and non-ASCII bytes as \\xNN."""
    out = []
    for b in value.encode():
        out.append(chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\x{b:02X}")
    return "".join(out)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ip=st.ip_addresses().map(str),
    when=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2035, 1, 1)),
    offset=st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda m: m - m % 15),
    method=st.sampled_from(["GET", "POST", "HEAD", "PROPFIND"]),
    path=_token.map(lambda p: "/" + p.replace("?", "")),
    query=st.one_of(st.none(), _token),
    status=st.integers(min_value=100, max_value=599),
    nbytes=st.integers(min_value=0, max_value=10**12),
    referrer=_text,
    ua=_text,
    preset=st.sampled_from(["combined", "main"]),
)
def test_roundtrip_presets(
    con: duckdb.DuckDBPyConnection,
    ip: str,
    when: datetime,
    offset: int,
    method: str,
    path: str,
    query: str | None,
    status: int,
    nbytes: int,
    referrer: str,
    ua: str,
    preset: str,
) -> None:
    tz = timezone(timedelta(minutes=offset))
    local = when.replace(microsecond=0, tzinfo=tz)
    target = path + (f"?{query}" if query else "")
    line = (
        f'{ip} - - [{local.strftime("%d/%b/%Y:%H:%M:%S %z")}] "{method} {target} HTTP/1.1" '
        f'{status} {nbytes} "{_nginx_escape(referrer) or "-"}" "{_nginx_escape(ua) or "-"}"'
    )
    if preset == "main":
        line += ' "-"'
    (r,) = parse(con, preset, line)
    assert r["kind"] == "ok", line
    assert r["ts"] == local.astimezone(timezone.utc).replace(tzinfo=None)
    assert (r["client"], r["method"], r["path"], r["query"]) == (ip, method, path, query or None)
    assert (r["status"], r["bytes"]) == (status, nbytes)
    # nginx writes "-" for an empty field: a value that is "-" itself reads as empty.
    ref = _nginx_escape(referrer)
    assert r["referrer"] == (None if ref in ("", "-") else ref)
    assert r["ua"] == ("" if _nginx_escape(ua) == "-" else _nginx_escape(ua))


_literal = st.text(alphabet=" -|[]:;,@#", min_size=1, max_size=3)


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seps=st.lists(_literal, min_size=4, max_size=4),
    quote=st.booleans(),
    values=st.fixed_dictionaries(
        {
            "remote_addr": st.ip_addresses(v=4).map(str),
            "upstream": st.text(
                alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=8
            ),
            "status": st.integers(min_value=100, max_value=599).map(str),
            "uri": _token.map(lambda p: "/" + p.replace("?", "")),
        }
    ),
)
def test_roundtrip_custom_formats(
    con: duckdb.DuckDBPyConnection, seps: list[str], quote: bool, values: dict[str, str]
) -> None:
    """Any format whose separators cannot occur in the values parses back exactly."""
    q = '"' if quote else ""
    template = (
        f"$remote_addr{seps[0]}[$time_local]{seps[1]}{q}$request_uri{q}{seps[2]}$status"
        f"{seps[3]}$upstream_addr"
    )
    if any(s in v for s in seps for v in values.values()):
        return  # the format itself would be ambiguous
    line = (
        f"{values['remote_addr']}{seps[0]}[05/May/2024:10:00:00 +0000]{seps[1]}{q}{values['uri']}{q}"
        f"{seps[2]}{values['status']}{seps[3]}{values['upstream']}"
    )
    (r,) = parse(con, template, line)
    assert r["kind"] == "ok", (template, line)
    assert (r["client"], r["path"], r["status"]) == (
        values["remote_addr"],
        values["uri"],
        int(values["status"]),
    )


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_are_counted(con: duckdb.DuckDBPyConnection, junk: bytes) -> None:
    data = junk.replace(b"\n", b" ") + b"\n" + ACCESS.encode() + b"\n"
    got = parse(con, "combined", data)
    assert len(got) == 2 and got[1]["kind"] == "ok"
    assert got[0]["kind"] in ("ok", "malformed", "blank", "nonaccess")


def test_example_file_is_not_touched(tmp_path: Path) -> None:
    # loading a block never mutates the caller's buffer
    buf = bytearray(b"a\nb\n")
    load_lines(duckdb.connect(), "t", memoryview(buf))
    assert list(line_ends(memoryview(buf))) == [2, 4]
    assert bytes(buf) == b"a\nb\n"


@pytest.mark.parametrize(
    ("block", "lines"),
    [
        (b"a\nb\n", ["a", "b"]),
        (b"a\nb", ["a", "b"]),  # a last line without its newline
        (b"\n", [""]),  # one blank line
        (b"a\n\n", ["a", ""]),  # a blank last line
        (b"a\r\n", ["a\r"]),  # the CR goes in the parse query, not here
        (b"", []),
    ],
)
def test_load_lines_makes_one_row_per_line(block: bytes, lines: list[str]) -> None:
    con = duckdb.connect()
    load_lines(con, "t", memoryview(block))
    assert con.execute("SELECT line FROM t ORDER BY ln").fetchall() == [(x,) for x in lines]
