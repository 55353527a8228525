r"""Compile a LogFormat into one DuckDB query that parses a whole batch of lines.

Parsing is "dissect" style: each variable runs up to the next literal of the
format (nginx escapes `"` inside values, so quoted fields cannot end early).
Only string functions are used (no regex captures), which keeps DuckDB at
hundreds of thousands of lines per second. The query reads a relation with columns
(ln BIGINT, line VARCHAR) and yields PARSED_COLUMNS. Values keep nginx's `\xNN`
escapes: the import decodes the few distinct values that hold one (`escape.unescape`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..quote import sql_literal
from .spec import LogFormat, Token, Var

#: Columns of the parse query, in order.
PARSED_COLUMNS = (
    "ln",  # line number within the batch's source
    "kind",  # ok | malformed | nonaccess | blank | other
    "line",  # the raw line, only for rows that are not ok
    "svc",  # docker compose container label (nginx-1), or NULL
    "dts",  # docker timestamp (docker logs -t), or NULL
    "ts",  # request time, UTC
    "client",  # $remote_addr as logged ('' when absent)
    "xff",  # X-Forwarded-For / X-Real-IP as logged ('' when absent)
    "host",  # lowercased, without port ('' when absent)
    "method",
    "path",
    "query",  # raw query string (scrubbed before storage), or NULL
    "proto",
    "status",
    "bytes",
    "referrer",  # raw referrer, or NULL
    "ua",  # user agent ('' when absent)
    "optout",  # Do Not Track or Global Privacy Control: $http_dnt / $http_sec_gpc = 1
    "why",  # malformed lines: why they did not parse; else NULL
)

#: Request times outside these bounds are not real (a broken clock, `$msec` junk): such a
#: line is malformed, and no day key or report has to deal with year 1 or 20000.
EARLIEST = "1970-01-01"
LATEST = "2200-01-01"

#: Lines that are not requests but belong in a docker/nginx stream: nginx error-log
#: lines, entrypoint scripts, compose's own status lines.
NONACCESS_RE = (
    r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[[a-z]+\]|/docker-entrypoint|[\w./-]+\.(sh|envsh): "
    r"|Attaching to |[\w.-]+ (exited with code|has been recreated)|Gracefully |nginx: \[)"
)

TIME_LOCAL_FORMAT = "%d/%b/%Y:%H:%M:%S %z"


@dataclass(frozen=True)
class StreamPrefix:
    """What `docker compose logs` / `docker logs -t` put before each line."""

    service: bool = False  # "nginx-1  | " (compose v2) or "nginx_1  | " (v1)
    timestamp: bool = False  # "2024-05-05T00:03:51.123456789Z " (-t)

    @property
    def any(self) -> bool:
        return self.service or self.timestamp


sql_str = sql_literal


def _dash_empty(expr: str) -> str:
    return f"CASE WHEN {expr} = '-' THEN '' ELSE coalesce({expr}, '') END"


class _Query:
    def __init__(self) -> None:
        self.ctes: list[tuple[str, str]] = []

    def add(self, name: str, select: str) -> str:
        self.ctes.append((name, select))
        return name

    def render(self, final: str) -> str:
        """Nest the steps as subqueries: DuckDB binds a chain of CTEs, each `SELECT *` from
        the last, in time that grows much faster than the chain: each batch binds it."""
        done: dict[str, str] = {}

        def nest(sql: str) -> str:
            m = re.search(r"FROM (\w+)\s*$", sql)
            if m and m.group(1) in done:
                return f"{sql[: m.start()]}FROM ({done[m.group(1)]}) AS {m.group(1)}"
            return sql

        for name, sql in self.ctes:
            done[name] = nest(sql)
        return nest(final)


def _prefix_ctes(q: _Query, source: str, prefix: StreamPrefix, keep: Sequence[str]) -> str:
    k = "".join(f"{c}, " for c in keep)  # columns passed through untouched
    # Lines may end with their newline (and a CR); rtrim(line, ...) costs ~1 us a row,
    # this ~0.1.
    q.add(
        "raw",
        f"SELECT ln, {k}CASE WHEN ends_with(line, chr(13) || chr(10)) THEN left(line, -2) "
        "WHEN ends_with(line, chr(10)) OR ends_with(line, chr(13)) THEN left(line, -1) "
        f"ELSE line END AS line FROM {source}",
    )
    if not prefix.any:
        return q.add(
            "pre",
            f"SELECT ln, {k}line, NULL::VARCHAR AS svc, NULL::TIMESTAMP AS dts, line AS body "
            "FROM raw",
        )
    if prefix.service:
        q.add("pre0", f"SELECT ln, {k}line, instr(line, ' |') AS bar FROM raw")
        q.add(
            "pre1",
            f"SELECT ln, {k}line, CASE WHEN bar BETWEEN 2 AND 128 "
            "AND NOT contains(rtrim(substr(line, 1, bar - 1)), ' ') "
            "THEN rtrim(substr(line, 1, bar - 1)) END AS svc FROM pre0",
        )
        q.add(
            "pre2",
            f"SELECT ln, {k}line, svc, CASE WHEN svc IS NULL THEN line "
            "ELSE ltrim(substr(line, instr(line, ' |') + 2), ' ') END AS rest FROM pre1",
        )
    else:
        q.add("pre2", f"SELECT ln, {k}line, NULL::VARCHAR AS svc, line AS rest FROM raw")
    if prefix.timestamp:
        q.add(
            "pre3",
            "SELECT *, CASE WHEN substr(rest, 5, 1) = '-' AND substr(rest, 11, 1) = 'T' "
            "THEN try_cast(split_part(rest, ' ', 1) AS TIMESTAMPTZ)::TIMESTAMP END AS dts "
            "FROM pre2",
        )
        return q.add(
            "pre",
            f"SELECT ln, {k}line, svc, dts, CASE WHEN dts IS NULL THEN rest "
            "ELSE substr(rest, instr(rest, ' ') + 1) END AS body FROM pre3",
        )
    return q.add("pre", f"SELECT ln, {k}line, svc, NULL::TIMESTAMP AS dts, rest AS body FROM pre2")


_NUMERIC_VARS = ("status", "body_bytes_sent", "bytes_sent", "msec")


def _dissect_text(
    q: _Query, tokens: Sequence[Token], text: str, tag: str, src: str
) -> tuple[str, dict[str, str], list[str]]:
    """Locate the literals of `tokens` in the string column `text`, left to right.

    Each variable runs up to the first occurrence of the literal after it; the last one
    runs to the end of `text` (an unquoted number only to its first space, so trailing
    extra fields do not break it). Returns (cte, {var: expr}, conditions for a match).
    """
    toks = list(tokens)
    values: dict[str, str] = {}
    found: list[str] = []
    cur = "1"
    if toks and isinstance(toks[0], str):
        lead = toks.pop(0)
        assert isinstance(lead, str)
        src = q.add(
            f"{tag}0",
            f"SELECT *, CASE WHEN starts_with({text}, {sql_str(lead)}) THEN {len(lead) + 1} END "
            f"AS {tag}0 FROM {src}",
        )
        cur = f"{tag}0"
        found.append(f"{tag}0 IS NOT NULL")
    k = 0
    for i in range(0, len(toks), 2):
        var = toks[i]
        assert isinstance(var, Var)
        lit = toks[i + 1] if i + 1 < len(toks) else None
        k += 1
        if lit is None:
            expr = f"substr({text}, {cur})" if cur != "1" else text
            if var.name in _NUMERIC_VARS:
                expr = f"split_part({expr}, ' ', 1)"
            values.setdefault(var.name, expr)
            continue
        assert isinstance(lit, str)
        e = f"{tag}{k}"
        rest = f"substr({text}, {cur})" if cur != "1" else text
        src = q.add(
            f"{tag}{k}",
            f"SELECT *, {cur} + nullif(instr({rest}, {sql_str(lit)}), 0) - 1 AS {e} FROM {src}",
        )
        values.setdefault(var.name, f"substr({text}, {cur}, {e} - {cur})")
        cur = f"({e} + {len(lit)})"
        found.append(f"{e} IS NOT NULL")
    return src, values, found


def _segments(tokens: Sequence[Token]) -> list[list[Token]]:
    """Split a token list at every `"` of its literals."""
    segs: list[list[Token]] = [[]]
    for tok in tokens:
        if isinstance(tok, Var):
            segs[-1].append(tok)
            continue
        for j, part in enumerate(tok.split('"')):
            if j:
                segs.append([])
            if part:
                segs[-1].append(part)
    return segs


def _dissect(q: _Query, fmt: LogFormat, src: str) -> tuple[str, dict[str, str], str]:
    """Add CTEs that cut each line into the format's variables.

    The line is first split at `"` (nginx escapes quotes inside values as \\x22, so a
    quote always delimits): a quoted variable is then just a list element, and only the
    short unquoted stretches between quotes need literal-by-literal dissection. That
    keeps the per-line cost near half a microsecond.
    """
    segs = _segments(fmt.tokens)
    if len(segs) == 1:
        src, whole, conditions = _dissect_text(q, fmt.tokens, "body", "w", src)
        return src, whole, " AND ".join(conditions) or "TRUE"
    m = len(segs)
    # Apache (and some proxies) write `\"` and `\\` inside quoted fields where nginx writes
    # `\x22` and `\x5C`: spelt nginx's way, they no longer end a field, and the import
    # decodes them like any other escape. Backslashes first, so `\\"` stays a closing quote.
    apache = (
        "CASE WHEN contains(body, '\\') "
        "THEN replace(replace(body, '\\\\', '\\x5C'), '\\\"', '\\x22') ELSE body END"
    )
    src = q.add("dq", f"SELECT *, string_split({apache}, '\"') AS q FROM {src}")
    count_ok = f"len(q) >= {m}"
    if not segs[-1]:
        # A line cut just before its closing quote still holds every field.
        count_ok = f"(len(q) >= {m} OR (len(q) = {m - 1} AND q[{m - 1}] <> ''))"
    found = [count_ok]
    values: dict[str, str] = {}
    cols = [
        f"q[{i + 1}] AS s{i + 1}"
        for i, seg in enumerate(segs)
        if len(seg) > 1 or (seg and isinstance(seg[0], str))
    ]
    if cols:
        src = q.add("ds", f"SELECT *, {', '.join(cols)} FROM {src}")
    for i, seg in enumerate(segs):
        if not seg:
            continue
        if len(seg) == 1 and isinstance(seg[0], Var):
            values.setdefault(seg[0].name, f"q[{i + 1}]")
            continue
        src, vals, fnd = _dissect_text(q, seg, f"s{i + 1}", f"g{i + 1}_", src)
        for name, expr in vals.items():
            values.setdefault(name, expr)
        found += fnd
    return src, values, " AND ".join(found)


def _json_values(q: _Query, fmt: LogFormat, src: str) -> tuple[str, dict[str, str], str]:
    assert fmt.json_keys is not None
    paths: list[str] = []
    values: dict[str, str] = {}
    for var, keys in fmt.json_keys:
        idx = []
        for key in keys:
            paths.append("$." + '"' + key.replace('"', '\\"') + '"')
            idx.append(len(paths))
        values[var] = "coalesce(" + ", ".join(f"nullif(j[{n}], '')" for n in idx) + ")"
    plist = "[" + ", ".join(sql_str(p) for p in paths) + "]"
    src = q.add(
        "dj",
        f"SELECT *, CASE WHEN starts_with(body, '{{') AND json_valid(body) "
        f"THEN json_extract_string(body, {plist}) END AS j FROM {src}",
    )
    return src, values, "j IS NOT NULL"


def _time_expr(fmt: LogFormat, v: dict[str, str]) -> str:
    if "time_local" in v and not fmt.is_json:
        return f"try_strptime({v['time_local']}, '{TIME_LOCAL_FORMAT}')::TIMESTAMP"
    if "time_iso8601" in v:
        t = v["time_iso8601"]
        if fmt.is_json:  # the json preset accepts either spelling under its time keys
            return (
                f"coalesce(try_cast({t} AS TIMESTAMPTZ), "
                f"try_strptime({t}, '{TIME_LOCAL_FORMAT}'))::TIMESTAMP"
            )
        return f"try_cast({t} AS TIMESTAMPTZ)::TIMESTAMP"
    if "time_local" in v:
        return f"try_strptime({v['time_local']}, '{TIME_LOCAL_FORMAT}')::TIMESTAMP"
    if "msec" in v:
        # TRY: `1e300`, `nan` or `inf` overflow the cast and must not fail the batch.
        return f"TRY(make_timestamp(CAST(try_cast({v['msec']} AS DOUBLE) * 1000000 AS BIGINT)))"
    return "NULL::TIMESTAMP"


def _first(v: dict[str, str], *names: str) -> str | None:
    for n in names:
        if n in v:
            return v[n]
    return None


def parse_query(
    fmt: LogFormat,
    source: str,
    *,
    prefix: StreamPrefix | None = None,
    service: str | None = None,
    fingerprint: bool = False,
    keep: Sequence[str] = (),
) -> str:
    """Return one SELECT that parses relation `source` (ln, line) into PARSED_COLUMNS.

    `service` keeps one docker compose service; lines of other services get kind 'other'.
    `keep` names extra columns of `source` to pass through unchanged.
    `fingerprint` adds a column `fp` that recognises a request a stream printed before:
    a hash of its parsed fields *without* the client address, so that storing it
    keeps no trace of who made the request.

    Example:
        >>> from .spec import compile_format
        >>> sql = parse_query(compile_format("combined"), "batch")
        >>> "FROM batch" in sql
        True
    """
    q = _Query()
    src = _prefix_ctes(q, source, prefix or StreamPrefix(), keep)
    if fmt.is_json:
        src, exprs, found = _json_values(q, fmt, src)
    else:
        src, exprs, found = _dissect(q, fmt, src)
    # Name every value once: expressions below refer to columns, which keeps the
    # query small to bind (each batch re-binds it).
    src = q.add(
        "vals",
        "SELECT *, "
        + ", ".join(f"{e} AS v_{n}" for n, e in exprs.items())
        + f", {found} AS t_found FROM {src}",
    )
    v = {n: f"v_{n}" for n in exprs}

    status = f"try_cast({v['status']} AS INTEGER)" if "status" in v else "NULL::INTEGER"
    nbytes = _first(v, "body_bytes_sent", "bytes_sent")
    bytes_expr = (
        f"CASE WHEN {nbytes} = '-' THEN 0 ELSE try_cast({nbytes} AS BIGINT) END"
        if nbytes
        else "NULL::BIGINT"
    )
    client = _first(v, "remote_addr")
    xff = _first(v, "http_x_forwarded_for", "http_x_real_ip")
    host = _first(v, "host", "http_host", "server_name")
    ref = _first(v, "http_referer")
    ua = _first(v, "http_user_agent")
    optouts = [f"coalesce({v[n]} = '1', FALSE)" for n in ("http_dnt", "http_sec_gpc") if n in v]
    ref_expr = f"CASE WHEN {ref} IN ('', '-') THEN NULL ELSE {ref} END" if ref else "NULL::VARCHAR"
    parts = [
        f"{_time_expr(fmt, v)} AS t_ts",
        f"{status} AS t_status",
        f"{bytes_expr} AS t_bytes",
        (_dash_empty(client) if client else "''") + " AS c_client",
        (_dash_empty(xff) if xff else "''") + " AS c_xff",
        (_dash_empty(f"lower({host})") if host else "''") + " AS c_host",
        f"{ref_expr} AS c_ref",
        (_dash_empty(ua) if ua else "''") + " AS c_ua",
        f"{' OR '.join(optouts) or 'FALSE'} AS c_optout",
    ]
    common = ", ".join(parts)

    # Request line -> method, target, protocol. A request with spaces inside the target
    # takes the slow path; junk (TLS bytes, "-") leaves all three NULL.
    if "request" in v:
        q.add("r0", f"SELECT *, {common}, string_split({v['request']}, ' ') AS rq FROM {src}")
        q.add(
            "r1",
            "SELECT *, rq[1] AS m, CASE WHEN len(rq) <= 3 THEN rq[2] "
            "ELSE array_to_string(rq[2:-2], ' ') END AS tgt, "
            "CASE WHEN len(rq) <= 3 THEN coalesce(rq[3], '') ELSE rq[-1] END AS pr FROM r0",
        )
        # Common methods skip the regex; any other all-caps token is a method too.
        req_ok = (
            "((m IN ('GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH') "
            "OR regexp_full_match(m, '[A-Z][A-Z0-9_-]{0,31}')) AND coalesce(tgt, '') <> '' "
            "AND (pr = '' OR starts_with(pr, 'HTTP/')))"
        )
        src = "r1"
    else:
        method = _first(v, "request_method") or "'GET'"
        target = _first(v, "request_uri", "uri", "document_uri") or "''"
        args = _first(v, "args", "query_string")
        if args and "request_uri" not in v:
            target = (
                f"{target} || CASE WHEN coalesce({args}, '-') IN ('', '-') THEN '' "
                f"ELSE '?' || {args} END"
            )
        proto = _first(v, "server_protocol") or "''"
        src = q.add(
            "r1",
            f"SELECT *, {common}, {method} AS m, {target} AS tgt, coalesce({proto}, '') AS pr "
            f"FROM {src}",
        )
        req_ok = "(coalesce(m, '') <> '' AND coalesce(tgt, '') NOT IN ('', '-'))"
    in_range = f"t_ts >= TIMESTAMP '{EARLIEST}' AND t_ts < TIMESTAMP '{LATEST}'"
    ok = f"t_found AND {in_range} AND t_status BETWEEN 100 AND 999"
    if nbytes:
        ok += " AND t_bytes IS NOT NULL"
    why = (
        "CASE WHEN NOT coalesce(t_found, FALSE) THEN 'does not match the format' "
        "WHEN t_ts IS NULL THEN 'no readable time' "
        f"WHEN NOT ({in_range}) THEN 'time before {EARLIEST[:4]} or after {int(LATEST[:4]) - 1}' "
        "WHEN NOT coalesce(t_status BETWEEN 100 AND 999, FALSE) THEN 'no HTTP status' "
        "ELSE 'no byte count' END"
    )
    other = "FALSE"
    if service is not None:
        other = (
            f"(svc IS NOT NULL AND regexp_replace(svc, '[-_][0-9]+$', '') <> {sql_str(service)} "
            f"AND svc <> {sql_str(service)})"
        )
    src = q.add(
        "k",
        f"SELECT *, CASE WHEN {other} THEN 'other' WHEN coalesce({ok}, FALSE) THEN 'ok' "
        "WHEN NOT regexp_matches(body, '\\S') THEN 'blank' "
        f"WHEN regexp_matches(body, {sql_str(NONACCESS_RE)}) THEN 'nonaccess' "
        f"ELSE 'malformed' END AS kind, {req_ok} AS req_ok FROM {src}",
    )
    cols = [
        "ln",
        *keep,
        "kind",
        "CASE WHEN kind = 'ok' THEN NULL ELSE line END AS line",
        "svc",
        "dts",
        "t_ts AS ts",
        "c_client AS client",
        "c_xff AS xff",
        "CASE WHEN contains(c_host, ':') THEN regexp_replace(c_host, ':[0-9]*$', '') "
        "ELSE c_host END AS host",
        "CASE WHEN req_ok THEN m END AS method",
        "CASE WHEN req_ok THEN split_part(tgt, '?', 1) END AS path",
        "CASE WHEN req_ok AND contains(tgt, '?') THEN substr(tgt, instr(tgt, '?') + 1) END "
        "AS query",
        "CASE WHEN req_ok AND pr <> '' THEN pr END AS proto",
        "t_status AS status",
        "t_bytes AS bytes",
        "c_ref AS referrer",
        "c_ua AS ua",
        "c_optout AS optout",
        f"CASE WHEN kind = 'malformed' THEN {why} END AS why",
    ]
    select = q.render("SELECT " + ",\n  ".join(cols) + f"\nFROM {src}")
    if not fingerprint:
        return select
    fields = "ts, method, path, query, status, bytes, referrer, ua, host"
    return f"SELECT *, left(md5(concat_ws(chr(31), {fields})), 16) AS fp FROM ({select})"
