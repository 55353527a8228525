"""No value in one line can fail a batch: any byte, percent-escape or number in any field of
any format is stored, kept as text, or counted malformed, and every other line is stored."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logalyse.ingest import ImportOptions, ingest
from logalyse.store import Store

from .conftest import fuzz_examples

#: Values that broke (or could break) one SQL function or another.
NASTY = [
    b"%FF",
    b"%E9t%E9",
    b"%9B",
    b"%C2%9B2J",
    b"%",
    b"%%zz",
    b"1e300",
    b"nan",
    b"inf",
    b"-inf",
    b"99999999999999",
    b"-1",
    b"0",
    b"",
    b"-",
    b'"',
    b'\\"',
    b"\\",
    b"\\x",
    b"\\xZZ",
    b"\\xC3",
    b"\\x00",
    b"\x00",
    b"\x1b[2J",
    b"\xc2\x9b",
    b"\x7f",
    b"\xff\xfe",
    b"\r",
    b"{",
    b"}",
    b"[",
    b"]",
    b"'",
    b"''",
    b"infinity",
    b"01/Jan/0001:00:00:00 +0000",
    b"31/Dec/9999:23:59:59 -2359",
    b"20000-01-01T00:00:00Z",
    b"1969-12-31T23:59:59Z",
    b"http://[::1",
    b"//",
    b"?utm_source=%FF&ref=%E9",
    b"<script>alert(1)</script>",
    b"\xe2\x80\xae",
    b"a" * 5000,
]

values = st.one_of(
    st.sampled_from(NASTY),
    st.binary(max_size=40),
    st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.lists(st.sampled_from(NASTY), min_size=1, max_size=4).map(b"".join),
).map(lambda b: b.replace(b"\n", b""))  # a newline makes two lines: not one bad field

#: A request target that puts values where the import decodes them: utm_* and ref.
targets = st.tuples(values, values, values).map(
    lambda v: b"/p" + v[0] + b"?utm_source=" + v[1] + b"&utm_medium=x&ref=" + v[2]
)
numbers = st.one_of(
    st.sampled_from([b"1e300", b"nan", b"inf", b"-inf", b"99999999999999", b"-1", b"1e-300"]),
    st.floats().map(lambda f: repr(f).encode()),
    st.integers().map(lambda i: str(i).encode()),
    values,
)
STRATEGY = {"target": st.one_of(targets, values), "status": numbers, "bytes": numbers}

FIELDS = (
    "addr",
    "time",
    "method",
    "target",
    "proto",
    "status",
    "bytes",
    "ref",
    "ua",
    "host",
    "xff",
)

GOOD = {
    "addr": b"203.0.113.9",
    "time": b"01/Nov/2026:10:00:00 +0000",
    "iso": b"2026-11-01T10:00:00+00:00",
    "msec": b"1793527200.123",
    "method": b"GET",
    "target": b"/",
    "proto": b"HTTP/1.1",
    "status": b"200",
    "bytes": b"512",
    "ref": b"https://news.example.org/item?id=1",
    "ua": b"Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0",
    "host": b"example.com",
    "xff": b"-",
}


def _text_line(fmt: str, f: dict[str, bytes]) -> bytes:
    request = f["method"] + b" " + f["target"] + b" " + f["proto"]
    combined = (
        f["addr"] + b" - - [" + f["time"] + b'] "' + request + b'" ' + f["status"] + b" "
        + f["bytes"] + b' "' + f["ref"] + b'" "' + f["ua"] + b'"'
    )  # fmt: skip
    if fmt == "combined":
        return combined
    if fmt == "common":
        return (
            f["addr"]
            + b" - - ["
            + f["time"]
            + b'] "'
            + request
            + b'" '
            + f["status"]
            + b" "
            + f["bytes"]
        )
    if fmt == "vhost_combined":
        return f["host"] + b" " + combined
    if fmt == "main":
        return combined + b' "' + f["xff"] + b'"'
    if fmt == MSEC:
        return (
            f["msec"]
            + b" "
            + f["addr"]
            + b' "'
            + request
            + b'" '
            + f["status"]
            + b' "'
            + f["ua"]
            + b'"'
        )
    if fmt == ISO:
        return (
            f["iso"] + b" " + f["addr"] + b" " + f["method"] + b" " + f["target"] + b" "
            + f["status"] + b" " + f["bytes"] + b' "' + f["ref"] + b'"'
        )  # fmt: skip
    raise AssertionError(fmt)


def _json_line(f: dict[str, bytes], raw: bool) -> bytes:
    keys = {
        "remote_addr": "addr",
        "time_iso8601": "iso",
        "request": None,
        "status": "status",
        "body_bytes_sent": "bytes",
        "http_referer": "ref",
        "http_user_agent": "ua",
        "host": "host",
        "http_x_forwarded_for": "xff",
    }
    parts = []
    for key, name in keys.items():
        value = f["method"] + b" " + f["target"] + b" " + f["proto"] if name is None else f[name]
        if raw:  # as a careless template writes it: bytes between quotes, unescaped
            parts.append(b'"' + key.encode() + b'":"' + value + b'"')
        else:  # nginx's escape=json
            text = json.dumps(value.decode("utf-8", "backslashreplace"))
            parts.append(b'"' + key.encode() + b'":' + text.encode())
    return b"{" + b",".join(parts) + b"}"


MSEC = '$msec $remote_addr "$request" $status "$http_user_agent"'
ISO = '$time_iso8601 $remote_addr $request_method $request_uri $status $body_bytes_sent "$http_referer"'
FORMATS = ["combined", "common", "vhost_combined", "main", "json", MSEC, ISO]


def build(fmt: str, fields: dict[str, bytes], raw_json: bool = False) -> bytes:
    if fmt == "json":
        return _json_line(fields, raw_json)
    return _text_line(fmt, fields)


def good_line(fmt: str, n: int) -> bytes:
    return build(fmt, {**GOOD, "target": f"/good-{n}".encode()})


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with Store(tmp_path_factory.mktemp("values") / "db.duckdb") as store:
        yield store


_serial = itertools.count()


@pytest.mark.parametrize(
    "fmt", FORMATS, ids=["combined", "common", "vhost", "main", "json", "msec", "iso"]
)
@settings(
    max_examples=fuzz_examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    names=st.sets(st.sampled_from(FIELDS), min_size=1, max_size=4),
    raw_json=st.booleans(),
    data=st.data(),
)
def test_one_bad_value_never_fails_its_batch(
    shared_store: Store, tmp_path_factory: pytest.TempPathFactory, fmt: str,
    names: set[str], raw_json: bool, data: st.DataObject,
) -> None:  # fmt: skip
    bad = {name: data.draw(STRATEGY.get(name, values), label=name) for name in sorted(names)}
    if "time" in bad:
        bad["time"] = data.draw(st.one_of(numbers, values, st.just(bad["time"])), label="time")
    fields = dict(GOOD, **bad)
    if "time" in bad:  # the same value in whichever time field the format has
        fields["iso"] = fields["msec"] = bad["time"]
    n = next(_serial)
    lines = [good_line(fmt, 3 * n), build(fmt, fields, raw_json), good_line(fmt, 3 * n + 1)]
    lines += [good_line(fmt, 3 * n + 2)]  # and one after the batch's first good neighbours
    path = tmp_path_factory.mktemp("v") / "access.log"
    path.write_bytes(b"\n".join(lines) + b"\n")
    stats = ingest(shared_store, [path], ImportOptions(format=fmt))
    (s,) = stats.sources
    assert s.lines_read == 4
    assert s.lines_read == s.imported + s.already + s.malformed + s.nonaccess
    stored = shared_store.query(
        "SELECT path FROM requests WHERE path IN (SELECT unnest($1::VARCHAR[]))",
        [[f"/good-{3 * n + i}" for i in range(3)]],
    )
    assert len(stored) == 3, (s, lines)
