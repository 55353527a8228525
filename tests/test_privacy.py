"""Day keys, visitor ids, address normalisation, scrubbing and masking."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta

import duckdb
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from logalyse.formats import printable, unescape
from logalyse.privacy import (
    client_address,
    closable_days,
    day_end,
    hmac_pads,
    mask_ips,
    scrub_query,
    scrub_query_sql,
    strip_referrer,
    strip_referrer_sql,
    visitor_id,
    visitor_id_sql,
)
from logalyse.store import columns_sql


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


# -- days ------------------------------------------------------------------------


def test_days_close_after_the_grace_period() -> None:
    days = ["2026-11-01", "2026-11-02"]
    assert closable_days(days, datetime(2026, 11, 2, 1, 59)) == []
    assert closable_days(days, datetime(2026, 11, 2, 2, 1)) == ["2026-11-01"]
    assert closable_days(days, datetime(2026, 11, 3, 2, 1), grace=timedelta(0)) == days
    # In Paris, 1 November ends at 23:00 UTC (winter time).
    assert day_end("2026-11-01", "Europe/Paris") == datetime(2026, 11, 1, 23, 0)


# -- visitor ids ---------------------------------------------------------------------


@settings(max_examples=60)
@given(
    key=st.binary(min_size=32, max_size=32),
    address=st.one_of(st.ip_addresses().map(str), st.text(max_size=20)),
    ua=st.text(max_size=80),
    host=st.text(max_size=20),
)
def test_sql_visitor_id_equals_python(key: bytes, address: str, ua: str, host: str) -> None:
    con = duckdb.connect()
    if "\0" in address + ua + host:
        return  # never in a parsed field
    ipad, opad = hmac_pads(key)
    t, params = columns_sql(
        "t",
        ipad=("BLOB", [ipad]),
        opad=("BLOB", [opad]),
        a=("VARCHAR", [address]),
        u=("VARCHAR", [ua]),
        h=("VARCHAR", [host]),
    )
    (got,) = con.execute(
        f"SELECT {visitor_id_sql('ipad', 'opad', 'a', 'u', 'h')} FROM {t}", params
    ).fetchall()[0]
    assert got == visitor_id(key, address, ua, host)


def test_visitor_id_depends_on_every_part() -> None:
    k = b"k" * 32
    base = visitor_id(k, "203.0.113.9", "curl/8", "example.com")
    assert base != visitor_id(k, "203.0.113.8", "curl/8", "example.com")
    assert base != visitor_id(k, "203.0.113.9", "curl/9", "example.com")
    assert base != visitor_id(k, "203.0.113.9", "curl/8", "example.org")
    assert -(2**63) <= base < 2**63


# -- client addresses ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote", "xff", "expected"),
    [
        ("203.0.113.7", "", "203.0.113.7"),
        ("::ffff:203.0.113.7", "", "203.0.113.7"),
        ("2001:DB8::1", "", "2001:db8::1"),
        ("172.17.0.1", "198.51.100.4, 10.0.0.2", "198.51.100.4"),
        ("172.17.0.1", "-", "172.17.0.1"),
        ("203.0.113.7", "198.51.100.4", "203.0.113.7"),  # a public peer is not a proxy
        ("10.0.0.2, 10.0.0.1, 81.2.69.143", "", "81.2.69.143"),
        ('"10.5.102.222, 175.16.199.1" 10.2.1.185', "", "175.16.199.1"),
        ("unix:", "", "unix:"),
        ("localhost", "", "localhost"),
        ("", "", ""),
    ],
)
def test_client_address(remote: str, xff: str, expected: str) -> None:
    assert client_address(remote, xff if xff != "-" else "") == expected


@given(st.ip_addresses(v=4))
def test_mapped_ipv6_folds_to_ipv4(ip: ipaddress.IPv4Address) -> None:
    assert client_address(f"::ffff:{ip}") == str(ip)


# -- query strings and referrers -----------------------------------------------------


def test_scrub_query() -> None:
    assert scrub_query("id=42&utm_source=hn&email=a%40b.c&ref=x") == "utm_source=hn&ref=x"
    assert scrub_query("token=abc") is None
    assert scrub_query("") is None
    assert scrub_query("UTM_Medium=x&lang=fr", allow=("lang",)) == "UTM_Medium=x&lang=fr"


@settings(max_examples=100)
@given(
    st.one_of(
        st.none(),
        st.lists(
            st.tuples(
                st.sampled_from(["utm_source", "UTM_x", "ref", "id", "email", "q", ""]),
                st.text(alphabet="abc=%20", max_size=5),
            ),
            max_size=5,
        ).map(lambda kv: "&".join(f"{k}={v}" if v else k for k, v in kv)),
    )
)
def test_sql_scrub_equals_python(query: str | None) -> None:
    con = duckdb.connect()
    (got,) = con.execute(f"SELECT {scrub_query_sql('$1::VARCHAR')}", [query]).fetchall()[0]
    assert got == scrub_query(query)


@pytest.mark.parametrize(
    "ref",
    ["https://www.google.com/search?q=me#top", "https://x.org/a#b", "https://x.org/", "", None],
)
def test_strip_referrer_sql_equals_python(con: duckdb.DuckDBPyConnection, ref: str | None) -> None:
    (got,) = con.execute(f"SELECT {strip_referrer_sql('$1::VARCHAR')}", [ref]).fetchall()[0]
    assert got == strip_referrer(ref)
    assert got is None or "?" not in got


# -- masking and display -------------------------------------------------------------


def test_mask_ips_keeps_times() -> None:
    line = '203.0.113.9 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" from 2001:db8::1 and ::1'
    masked = mask_ips(line)
    assert "203.0.113.9" not in masked and "2001:db8::1" not in masked
    assert "10:05:03" in masked and masked.count("x:x:x:x") == 1  # ::1 is nobody


@pytest.mark.parametrize(
    "text, masked",
    [
        ("2001:db8::1:54321", "x:x:x:x:54321"),  # with a port
        ("[2001:db8::1]:443", "[x:x:x:x]:443"),
        ("client_2001:db8::11", "client_x:x:x:x"),  # next to letters
        ("took ::11ms", "took x:x:x:xms"),
        ("2001:db8::203.0.113.15", "x:x:x:x"),  # an IPv4 tail: all of it
        ("::ffff:203.0.113.7", "x:x:x:x"),
        ("1.2.3.4:2001:db8::1", "x.x.x.x:x:x:x:x"),
        ("GET http://203.0.113.9:12542/x", "GET http://x.x.x.x:12542/x"),
        ("CONNECT 203.0.113.5:80", "CONNECT x.x.x.x:80"),
        ("DNSResearchBot/2.1; +http://203.0.113.10)", "DNSResearchBot/2.1; +http://x.x.x.x)"),
        ("fe80::1%eth0", "x:x:x:x%eth0"),
        ("9991.2.3.4", "99x.x.x.x"),  # digits before it: the address is still in there
        # Not addresses: times, versions, MAC addresses, C++.
        ("10:05:03", "10:05:03"),
        ("Chrome/120.0.6099.109", "Chrome/120.0.6099.109"),
        ("00:11:22:33:44:55", "00:11:22:33:44:55"),
        ("std::vector<int>", "std::vector<int>"),
    ],
)
def test_mask_ips_cases(text: str, masked: str) -> None:
    assert mask_ips(text) == masked


def _forms(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[str]:
    """How logs write an address: plain, with a port, bracketed, inside IPv6."""
    if isinstance(ip, ipaddress.IPv4Address):
        return [str(ip), f"{ip}:8080", f"::ffff:{ip}", f"64:ff9b::{ip}", f"http://{ip}/"]
    forms = [str(ip), ip.exploded, f"[{ip}]:443", f"{ip}:54321", f"{ip}%eth0"]
    if ip.ipv4_mapped is not None:
        forms.append(f"::ffff:{ip.ipv4_mapped}")
    return forms


AROUND = st.text(alphabet="abcdefxyz_-:./[]() 0123456789\t\"'", max_size=12)


@settings(max_examples=300)
@given(ip=st.ip_addresses(), data=st.data(), before=AROUND, after=AROUND)
def test_mask_ips_hides_any_address_in_any_text(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, data: st.DataObject, before: str, after: str
) -> None:
    hexdigits = sum(c in "0123456789abcdef" for c in str(ip))
    assume(isinstance(ip, ipaddress.IPv4Address) or hexdigits >= 2)  # ::, ::1: nobody
    form = data.draw(st.sampled_from(_forms(ip)), label="form")
    masked = mask_ips(before + form + after)
    assert str(ip) not in masked and ip.exploded not in masked
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        assert str(ip.ipv4_mapped) not in masked
    assert mask_ips(masked) == masked  # masking is done once and for all


def test_unescape_decodes_utf8_and_keeps_controls_visible() -> None:
    assert unescape(r"Mozilla \x22quoted\x22 caf\xC3\xA9") == 'Mozilla "quoted" café'
    assert unescape(r"\x1B[31mred") == r"\x1B[31mred"
    assert unescape(r"\x5Cx41") == r"\x41"  # an escaped backslash is not an escape
    assert unescape(r"bad \xFF\xFE") == r"bad \xFF\xFE"


@given(st.text())
def test_printable_never_lets_controls_through(text: str) -> None:
    out = printable(text)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in out)


@given(st.binary(max_size=50))
def test_unescape_output_is_safe(raw: bytes) -> None:
    escaped = "".join(f"\\x{b:02X}" for b in raw)
    out = unescape(escaped)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in out)
