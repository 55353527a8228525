"""Guess the stream prefix and the log format from the first lines of an input.

Detection runs each preset's real parse query over a sample, so what it picks is
exactly what the import will then parse; it never guesses from a regex of its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from .spec import LogFormat, compile_format
from .sql import StreamPrefix, parse_query

SAMPLE_LINES = 200

_COMPOSE_RE = re.compile(r"^[A-Za-z0-9][\w.-]*\s+\|( |$)")
_DOCKER_TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d) ")
#: The client field looks like an address (or a list of them), not a host name.
_IP_LIKE = r"^[0-9A-Fa-f:.\[\], ]+$"

#: Presets in order of preference when they parse a sample equally well.
_ORDER = ("main", "vhost_combined", "combined", "common", "json")


@dataclass(frozen=True)
class Detection:
    """What detection found: a format, a stream prefix, and how well the sample parsed."""

    format: LogFormat
    prefix: StreamPrefix
    parsed: int
    sample: int


def detect_prefix(lines: Sequence[str]) -> StreamPrefix:
    """Recognise `docker compose logs` service prefixes and `-t` timestamps.

    Example:
        >>> detect_prefix(["nginx-1  | 1.2.3.4 - - [...]"])
        StreamPrefix(service=True, timestamp=False)
    """
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        return StreamPrefix()
    service = sum(1 for ln in lines if _COMPOSE_RE.match(ln)) * 2 > len(lines)
    bodies = [_COMPOSE_RE.sub("", ln, count=1) if service else ln for ln in lines]
    timestamp = sum(1 for b in bodies if _DOCKER_TS_RE.match(b)) * 2 > len(bodies)
    return StreamPrefix(service=service, timestamp=timestamp)


def _score(
    con: duckdb.DuckDBPyConnection, fmt: LogFormat, lines: Sequence[str], prefix: StreamPrefix
) -> tuple[int, int]:
    sql = parse_query(fmt, "sample", prefix=prefix)
    row: tuple[int, int] = con.execute(
        f"WITH sample AS (SELECT unnest(range(1, len($1) + 1)) AS ln, unnest($1) AS line) "
        f"SELECT count(*) FILTER (kind = 'ok' AND regexp_matches(client, '{_IP_LIKE}')), "
        f"count(*) FILTER (kind = 'ok') FROM ({sql})",
        [list(lines)],
    ).fetchall()[0]
    return int(row[0]), int(row[1])


def detect_format(
    con: duckdb.DuckDBPyConnection,
    lines: Sequence[str],
    *,
    candidates: Sequence[LogFormat] | None = None,
    prefix: StreamPrefix | None = None,
) -> Detection:
    """Pick the format that parses the most of the sample, real client addresses first.

    `candidates` defaults to every preset. Falls back to `combined` when nothing
    parses; the import then reports the lines as malformed and suggests --format.
    """
    sample = list(lines[:SAMPLE_LINES])
    prefix = prefix if prefix is not None else detect_prefix(sample)
    formats = list(candidates) if candidates else [compile_format(name) for name in _ORDER]
    best: tuple[tuple[int, int, int], LogFormat] | None = None
    for i, fmt in enumerate(formats):
        with_ip, ok = _score(con, fmt, sample, prefix)
        key = (with_ip, ok, -i)
        if best is None or key > best[0]:
            best = (key, fmt)
    assert best is not None
    (_, ok, _), fmt = best
    if ok == 0 and not candidates:
        fmt = compile_format("combined")
    return Detection(format=fmt, prefix=prefix, parsed=ok, sample=len(sample))
