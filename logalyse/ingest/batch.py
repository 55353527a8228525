"""One batch: a block of log lines parsed, cleaned, given visitor ids, countries and
referrer classes, and staged as the requests it will store (table s<N>), all in DuckDB on
the calling thread's own connection. Python sees only distinct values.

The steps are functions of a connection and a batch; `BatchParser` runs them in order on
the parsing threads. What those threads share (the address cache, the day keys) is
behind a lock.
"""

from __future__ import annotations

import re
import threading
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb

from ..enrich import GeoIP, classify_host, hints_sql, is_asset_sql, referrer_host_steps
from ..errors import StoreError
from ..formats import unescape
from ..keys import DayKeys
from ..privacy import (
    client_address,
    hmac_pads,
    mask_ips,
    scrub_query_sql,
    strip_referrer_sql,
    visitor_id_sql,
)
from ..quote import sql_literal
from ..store import Store, columns_sql
from ._memory import purge_duckdb_memory
from .checkpoints import LineRanges, mark_replayed
from .options import ImportOptions

_NEWLINE = re.compile(b"\n")
#: Stands for a batch's table of lines in a source's parse query.
LINES = "__lines__"
#: Text that may hold an address (a dotted quad, or two colons with hex digits between),
#: for `privacy.mask_ips` to look at; RE2, in SQL.
_MAY_HOLD_ADDRESS = r"[0-9]\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]|:[0-9A-Fa-f.]*:"
_UTM = ("utm_source", "utm_medium", "utm_campaign")
#: Cap on remembered client addresses (each maps to its normalised form).
_ADDRESS_CACHE_MAX = 500_000


def line_ends(data: bytes | memoryview, consumed: int | None = None) -> array[int]:
    r"""The byte offset just after each newline-terminated line of a block, the last one
    capped at `consumed` (for a last line whose newline was added).

    Example:
        >>> list(line_ends(b"a\nbc\n"))
        [2, 5]
        >>> list(line_ends(b"a\nbc\n", consumed=4))
        [2, 4]
        >>> list(line_ends(b"a\nbc\n", consumed=9))
        [2, 9]
    """
    ends = array("q", (m.end() for m in _NEWLINE.finditer(data)))
    if consumed is not None and ends:
        # The last line may have had its newline added (an unterminated line taken at
        # the end), or been cut short (an overlong line): it ends where its bytes do.
        ends[-1] = consumed
    return ends


def load_lines(con: duckdb.DuckDBPyConnection, table: str, data: bytes | memoryview) -> None:
    r"""Create `table` (ln, line) from a block of newline-terminated lines.

    The block goes to DuckDB as one string that DuckDB splits: no Arrow (pyarrow alone is
    ~50 MiB resident), and a block's parse query runs at least as fast on a DuckDB table
    as on an Arrow one. Invalid UTF-8 is kept the way nginx writes it: `\xNN`.

    Example:
        >>> con = duckdb.connect()
        >>> load_lines(con, "t", b"a\n\xffb\n")
        >>> con.execute("SELECT * FROM t").fetchall()
        [(1, 'a'), (2, '\\xffb')]
        >>> load_lines(con, "blank", b"\n")
        >>> con.execute("SELECT * FROM blank").fetchall()
        [(1, '')]
    """
    if not len(data):
        con.execute(f"CREATE TABLE {table} (ln BIGINT, line VARCHAR)")
        return
    body = memoryview(data)
    if body[-1] == 0x0A:  # a newline
        body = body[:-1]  # a view: the block is not copied for the sake of one byte
    con.execute(
        f"CREATE TABLE {table} AS SELECT unnest(range(1, len(l) + 1)) AS ln, unnest(l) AS line "
        "FROM (SELECT string_split($1, chr(10)) AS l)",
        [str(body, "utf-8", "backslashreplace")],
    )


def _param_sql(query: str, *names: str) -> str:
    """SQL: the first of these query parameters present, URL-decoded (NULL when none).

    A value that does not decode to UTF-8 (`%FF`, Latin-1's `%E9`) is kept as logged:
    `url_decode` would fail the whole batch over it.
    """
    found = [f"nullif(regexp_extract({query}, '(?:^|&){n}=([^&]*)', 1), '')" for n in names]
    value = found[0] if len(found) == 1 else f"coalesce({', '.join(found)})"
    return (
        f"CASE WHEN {query} IS NULL THEN NULL ELSE coalesce(TRY(url_decode({value})), {value}) END"
    )


class Addresses:
    """Client addresses, normalised (X-Forwarded-For, IPv6, IPv4-mapped) and located
    (GeoIP, in memory, before anything is hashed), once per distinct (client, forwarded)
    pair. Shared by the parsing threads: the cache is behind a lock."""

    def __init__(self, geo: GeoIP | None) -> None:
        self.geo = geo
        self._cache: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def resolve(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str | None, str | None]]:
        """(address, country, city) for each (client, forwarded) pair."""
        out = []
        with self._lock:
            if len(self._cache) > _ADDRESS_CACHE_MAX:
                self._cache.clear()
            for client, xff in pairs:
                addr = self._cache.get((client, xff))
                if addr is None:
                    addr = client_address(client, xff)
                    if xff or addr != client:  # a plain address is its own answer: not kept
                        self._cache[(client, xff)] = addr
                country, city = self.geo.lookup(addr) if self.geo else (None, None)
                out.append((addr, country, city))
        return out

    def forget(self) -> None:
        """Let go of what is cached (a long tail does, now and then)."""
        with self._lock:
            self._cache.clear()
            if self.geo is not None:
                self.geo.forget()


@dataclass
class Parsed:
    """What a parsing thread hands back about its batch."""

    counts: Counter[tuple[str, bool]] = field(default_factory=Counter)  # (kind, old) -> lines
    days: Counter[date] = field(default_factory=Counter)  # day -> new requests
    #: distinct user agents of new requests that uamap lacks, with their hints
    uas: list[tuple[str, str | None, bool, bool]] = field(default_factory=list)
    malformed: list[tuple[int, str, str]] = field(default_factory=list)  # (number, why, line)
    #: hosts named as referrer by the batch's asset requests, with how many (a vote for the
    #: site's own host, counted over batches and imports: see `Pipeline`)
    asset_hosts: Counter[str] = field(default_factory=Counter)
    #: the share of the batch's requests from its most frequent client, when that is a
    #: private, loopback or link-local address (a proxy, the Docker bridge)
    one_private: float = 0.0


@dataclass
class Replay:
    """A stream's earlier runs: its stored rows that replayed lines are matched to."""

    source_id: int
    prior_lines: int
    matched: LineRanges
    attached: Callable[[], AbstractContextManager[Any]]  # the database, attached meanwhile


@dataclass
class Batch:
    """A block to parse: batch number `bid`, its lines after `first_line` of the input."""

    bid: int
    box: list[bytes | memoryview]  # the block, let go of as soon as DuckDB holds it
    first_line: int
    sql: str  # the input's parse query (formats.parse_query over LINES)
    replay: Replay | None = None  # a stream that was imported before
    guess_host: bool = False  # find the site's own host from its assets' referrers
    check_clients: bool = False  # whether one private address sends most requests


class BatchParser:
    """Runs a batch's steps on the calling thread's own connection (one per thread)."""

    def __init__(
        self,
        store: Store,
        options: ImportOptions,
        keys: DayKeys,
        addresses: Addresses,
        *,
        all_malformed: bool = False,  # every malformed line, not a few samples (--rejects)
    ) -> None:
        self.store = store
        self.options = options
        self.keys = keys
        self.addresses = addresses
        self.all_malformed = all_malformed
        self._local = threading.local()
        self._connections: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()

    def connection(self) -> duckdb.DuckDBPyConnection:
        con: duckdb.DuckDBPyConnection | None = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self.store.cursor()
            with self._lock:
                self._connections.append(con)
        return con

    def close(self) -> None:
        """Close every thread's connection (between units of work: no batch running)."""
        with self._lock:
            for con in self._connections:
                con.close()
            self._connections.clear()
        self._local = threading.local()

    def day_sql(self) -> str:
        if self.options.tz == "UTC":
            return "ts::DATE"
        return f"timezone({sql_literal(self.options.tz)}, ts::TIMESTAMPTZ)::DATE"

    def parse(self, batch: Batch) -> Parsed:
        """Parse the block in `batch.box` (which it empties) into table s<bid>: the batch's
        requests as they will be stored; return what the importer thread needs."""
        con = self.connection()
        bid, opts = batch.bid, self.options
        stage = f"memory.main.b{bid}"
        lines_tbl = f"memory.main.l{bid}"
        load_lines(con, lines_tbl, batch.box.pop())
        try:
            # Nested steps, so that each value is computed once and used by name after.
            con.execute(
                f"""
                CREATE TABLE {stage} AS
                SELECT *,
                       {_param_sql("query", "utm_source", "ref")} AS utm_source,
                       {_param_sql("query", "utm_medium")} AS utm_medium,
                       {_param_sql("query", "utm_campaign")} AS utm_campaign,
                       {is_asset_sql("path", opts.asset_extensions, opts.non_pages)} AS is_asset,
                       hash(day, client, xff, ua, host) AS ck, hash(ua) AS uh
                FROM (
                    SELECT parsed.* EXCLUDE (query),
                           {scrub_query_sql("parsed.query", opts.query_allow)} AS query,
                           {self.day_sql()} AS day, FALSE AS old,
                           {batch.first_line} + ln AS line_no
                    FROM ({batch.sql.replace(LINES, lines_tbl)}) parsed
                )
                """
            )
        finally:
            con.execute(f"DROP TABLE {lines_tbl}")
        clean(con, stage)
        if batch.replay is not None:
            r = batch.replay
            with r.attached():
                mark_replayed(con, stage, r.source_id, r.prior_lines, r.matched)
        out = Parsed()
        for kind, old, day, n in con.execute(
            f"SELECT kind, old, day, count(*) FROM {stage} GROUP BY ALL"
        ).fetchall():
            out.counts[(kind, old)] += n
            if kind == "ok" and not old:
                out.days[day] += n
        batch_rows = f"(SELECT * FROM {stage} WHERE kind = 'ok' AND NOT old)"
        visitors(con, bid, batch_rows, list(out.days), self.addresses, self.keys)
        referrers(con, bid, batch_rows)
        # User agents not in uamap: new to this run (and, almost surely, to the store),
        # with their pattern matching done here, in parallel (enrich.hints_sql).
        # (A left join, not NOT IN: it builds its hash table on the batch, not on uamap.)
        out.uas = con.execute(
            f"SELECT ua, {hints_sql('ua')} FROM (SELECT DISTINCT b.ua FROM {batch_rows} b "
            "LEFT JOIN memory.main.uamap m ON b.uh = m.uh WHERE m.uh IS NULL)"
        ).fetchall()
        if batch.guess_host:
            out.asset_hosts = asset_referrer_hosts(con, bid, batch_rows)
        if batch.check_clients:
            out.one_private = one_private_share(con, batch_rows)
        if out.counts[("malformed", False)]:
            limit = "" if self.all_malformed else f"LIMIT {self.options.samples}"
            out.malformed = con.execute(
                f"SELECT line_no, why, line FROM {stage} WHERE kind = 'malformed' AND NOT old "
                f"ORDER BY line_no {limit}"
            ).fetchall()
        stage_requests(con, bid, batch_rows, out.counts[("ok", False)])
        purge_duckdb_memory()
        return out


def one_private_share(con: duckdb.DuckDBPyConnection, batch_rows: str) -> float:
    """The share of requests from the batch's most frequent client when it is a private,
    loopback or link-local address: nginx behind a proxy or in docker compose, logging the
    proxy's address for every visitor (`real_ip` not set). 0.0 otherwise."""
    import ipaddress

    rows = con.execute(
        f"SELECT client, xff, count(*), sum(count(*)) OVER () FROM {batch_rows} "
        "GROUP BY ALL ORDER BY 3 DESC LIMIT 1"
    ).fetchall()
    if not rows:
        return 0.0
    client, xff, n, total = rows[0]
    try:
        addr = ipaddress.ip_address(client_address(client, xff))
    except ValueError:
        return 0.0
    local = addr.is_private or addr.is_loopback or addr.is_link_local
    return float(n) / float(total) if local else 0.0


def stage_requests(con: duckdb.DuckDBPyConnection, bid: int, batch_rows: str, ok: int) -> None:
    """Table s<bid>: the batch's requests as they will be stored, waiting for a commit.

    Joined here, on the parsing thread, with their visitor ids, countries and referrers
    (stripped, with their hosts and classes); only the columns the store keeps stay (the
    user agent as its hash), so that the requests waiting for a full row group take
    little memory.
    """
    (staged,) = con.execute(
        f"""
        CREATE TABLE memory.main.s{bid} AS
        SELECT b.ts, CASE WHEN b.optout THEN NULL ELSE v.vid END AS vid,
               nullif(b.host, '') AS host, b.method, b.path, b.query, b.proto,
               b.status, b.bytes, r.referrer, b.uh, b.line_no, v.country, v.city,
               b.is_asset, r.host AS referrer_host, r.kind AS ref_kind, r.name AS ref_name,
               b.utm_source, b.utm_medium, b.utm_campaign
        FROM {batch_rows} AS b JOIN memory.main.v{bid} AS v ON b.ck = v.ck
        LEFT JOIN memory.main.r{bid} AS r ON b.referrer = r.raw
        """
    ).fetchall()[0]
    for table in ("b", "v", "r"):
        con.execute(f"DROP TABLE memory.main.{table}{bid}")
    if staged != ok:
        # A request without its visitor id: never drop it silently.
        raise StoreError(
            f"internal error: {ok:,} requests parsed but {staged:,} staged; nothing was committed"
        )


def clean(con: duckdb.DuckDBPyConnection, stage: str) -> None:
    """Decode nginx's \\xNN escapes, and mask addresses (`privacy.mask_ips`), in the text
    the store keeps: once per distinct value that may need it. A path, query, referrer,
    host or user agent may hold a client's address (a proxy probe of
    `http://ADDR:port/`, a bot's `+http://ADDR`): none is stored."""

    def may(c: str) -> str:  # LIKE first: it is four times cheaper than the regex
        return (
            f"(contains({c}, '\\x') OR (({c} LIKE '%.%.%.%' OR {c} LIKE '%:%:%') "
            f"AND regexp_matches({c}, '{_MAY_HOLD_ADDRESS}')))"
        )

    # Paths and queries are checked per request; user agents and referrers repeat, so
    # per distinct value. Campaigns are decoded from the query (`%2E`, too): checked.
    found = con.execute(
        f"""
        SELECT v FROM (
            SELECT DISTINCT unnest([path, query, host, {", ".join(_UTM)}]) AS v
            FROM {stage} WHERE kind = 'ok'
            AND ({" OR ".join(may(c) for c in ("path", "query", "host", *_UTM))})
            UNION SELECT any_value(ua) FROM {stage} WHERE kind = 'ok' GROUP BY uh
            UNION SELECT DISTINCT referrer FROM {stage} WHERE kind = 'ok'
        ) WHERE {may("v")}
        """
    ).fetchall()
    changed = [(v, mask_ips(unescape(v))) for (v,) in found]
    changed = [(raw, clean) for raw, clean in changed if raw != clean]
    if not changed:
        return
    esc, params = columns_sql(
        "esc",
        raw=("VARCHAR", [r for r, _ in changed]),
        clean=("VARCHAR", [c for _, c in changed]),
    )
    for c in ("ua", "path", "query", "referrer", "host", *_UTM):
        also = ", uh = hash(esc.clean)" if c == "ua" else ""  # the user agent's join key
        con.execute(
            f"UPDATE {stage} SET {c} = esc.clean{also} FROM {esc} WHERE {stage}.{c} = esc.raw",
            params,
        )


def visitors(
    con: duckdb.DuckDBPyConnection,
    bid: int,
    batch_rows: str,
    days: Sequence[date],
    addresses: Addresses,
    keys: DayKeys,
) -> None:
    """Create table v<bid>: a visitor id (and country) per distinct (day, address, UA, host).

    Python normalises the client fields that need it (X-Forwarded-For, IPv6,
    IPv4-mapped IPv6) and looks countries up, in memory, once per distinct address;
    it hands DuckDB the day keys, and DuckDB computes the HMACs over the distinct
    combinations of the batch, never over every row.
    """
    # Without GeoIP, only the addresses that need normalising come to Python.
    where = (
        ""
        if addresses.geo
        else "WHERE xff <> '' OR NOT regexp_full_match(client, '[0-9]{1,3}(\\.[0-9]{1,3}){3}')"
    )
    pairs = con.execute(f"SELECT DISTINCT client, xff FROM {batch_rows} {where}").fetchall()
    clients, fwds, addrs, countries, cities = [], [], [], [], []
    for (client, xff), (addr, country, city) in zip(pairs, addresses.resolve(pairs), strict=True):
        if addr != client or country is not None:
            clients.append(client)
            fwds.append(xff)
            addrs.append(addr)
            countries.append(country)
            cities.append(city)
    # Creates, and saves, missing keys before any row uses them.
    pads = [hmac_pads(keys.key(d.isoformat())) for d in days]
    ipmap, ip_params = columns_sql(
        "m",
        client=("VARCHAR", clients),
        xff=("VARCHAR", fwds),
        addr=("VARCHAR", addrs),
        country=("VARCHAR", countries),
        city=("VARCHAR", cities),
    )
    daykeys, key_params = columns_sql(
        "k",
        day=("DATE", days),
        ipad=("BLOB", [i for i, _ in pads]),
        opad=("BLOB", [o for _, o in pads]),
    )
    vid = visitor_id_sql("k.ipad", "k.opad", "c.addr", "c.ua", "c.host")
    con.execute(
        f"""
        CREATE TABLE memory.main.v{bid} AS
        SELECT c.ck, {vid} AS vid, c.country, c.city FROM (
            SELECT s.ck, any_value(s.day) AS day,
                   any_value(coalesce(m.addr, s.client)) AS addr,
                   any_value(s.ua) AS ua, any_value(s.host) AS host,
                   any_value(m.country) AS country, any_value(m.city) AS city
            FROM {batch_rows} s LEFT JOIN {ipmap} ON s.client = m.client AND s.xff = m.xff
            GROUP BY s.ck
        ) c JOIN {daykeys} ON c.day = k.day
        """,
        {**ip_params, **key_params},
    )


def referrers(con: duckdb.DuckDBPyConnection, bid: int, batch_rows: str) -> None:
    """Create table r<bid>: per distinct referrer as logged (raw), the referrer as stored
    (without query or fragment), its host and its class (search/social/AI/spam/website).

    Once per distinct referrer, not per request: most requests of a site repeat a
    few referrers (its own pages), and splitting them was a fifth of a batch's parse.
    """
    (rh0, rh0_sql), (rh1, rh1_sql), (_, host_sql) = referrer_host_steps("raw")
    hosts_tbl = f"memory.main.rh{bid}"
    con.execute(
        f"""
        CREATE TABLE {hosts_tbl} AS
        SELECT raw, referrer, {host_sql} AS host FROM (
            SELECT *, {rh1_sql} AS {rh1} FROM (
                SELECT raw, {strip_referrer_sql("raw")} AS referrer, {rh0_sql} AS {rh0}
                FROM (SELECT DISTINCT referrer AS raw FROM {batch_rows}
                      WHERE referrer IS NOT NULL)
            )
        )
        """
    )
    hosts = [
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT host FROM {hosts_tbl} WHERE host IS NOT NULL"
        ).fetchall()
    ]
    kinds = [classify_host(h) for h in hosts]
    refmap, params = columns_sql(
        "refmap",
        host=("VARCHAR", hosts),
        kind=("VARCHAR", [k for k, _ in kinds]),
        name=("VARCHAR", [n for _, n in kinds]),
    )
    con.execute(
        f"CREATE TABLE memory.main.r{bid} AS SELECT h.raw, h.referrer, h.host, "
        f"refmap.kind, refmap.name FROM {hosts_tbl} AS h LEFT JOIN {refmap} "
        "ON h.host = refmap.host",
        params,
    )
    con.execute(f"DROP TABLE {hosts_tbl}")


def asset_referrer_hosts(
    con: duckdb.DuckDBPyConnection, bid: int, batch_rows: str, top: int = 5
) -> Counter[str]:
    """Where the batch's assets were loaded from: browsers send the page as referrer of
    its stylesheets and images, so the host most asset requests name is, with a clear
    majority over batches (`own_host`), the site itself. The `top` hosts, and the rest
    counted under ""."""
    rows = con.execute(
        f"SELECT r.host, count(*) AS n FROM {batch_rows} AS b "
        f"JOIN memory.main.r{bid} AS r ON b.referrer = r.raw "
        f"WHERE b.is_asset AND r.host IS NOT NULL GROUP BY r.host ORDER BY n DESC, r.host"
    ).fetchall()
    out: Counter[str] = Counter({str(h): int(n) for h, n in rows[:top]})
    if rows[top:]:
        out[""] = sum(int(n) for _, n in rows[top:])
    return out


def own_host(votes: Counter[str], at_least: int = 20) -> str | None:
    """The site's host once `at_least` asset requests name it and more than half do.

    Example:
        >>> own_host(Counter({"example.org": 19, "cdn.example": 2})) is None
        True
        >>> own_host(Counter({"example.org": 21, "cdn.example": 2}))
        'example.org'
    """
    if not votes:
        return None
    host, n = max(((h, n) for h, n in votes.items() if h), key=lambda x: x[1], default=("", 0))
    return host if host and n >= at_least and n * 2 > sum(votes.values()) else None
