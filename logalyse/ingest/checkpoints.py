"""Which input is which, and how far each was read: a file is known by its first bytes
(whatever it is called now), a stream by its name; a stream's replayed lines are matched
to the rows it stored before. The checkpoint itself is written by `commit`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb

from ..formats import LogFormat, StreamPrefix
from ..formats.detect import SAMPLE_LINES, detect_prefix
from ..model import SourceStats
from ..privacy import strip_referrer_sql
from ..sources import FileInfo, content_hash
from ..store import columns_sql
from .options import ImportOptions


class LineRanges:
    """A set of line numbers kept as sorted, disjoint ranges: a replay matches stored lines
    mostly in order, so a whole history's worth stays a handful of ranges.

    Example:
        >>> r = LineRanges(); r.add([3, 4, 5, 9]); r.add([6, 10]); r.ranges
        [(3, 6), (9, 10)]
    """

    def __init__(self) -> None:
        self.ranges: list[tuple[int, int]] = []

    def add(self, numbers: Sequence[int]) -> None:
        runs: list[tuple[int, int]] = []
        for n in sorted(numbers):
            if runs and n <= runs[-1][1] + 1:
                runs[-1] = (runs[-1][0], max(runs[-1][1], n))
            else:
                runs.append((n, n))
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(self.ranges + runs):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        self.ranges = merged


#: What identifies a request, as the store keeps it: a replayed line is matched to a stored
#: row by these fields (neither the client address nor the visitor id: a closed day's key
#: is gone, so the same line would get another id).
_BATCH_KEY = (
    "hash(date_trunc('second', ts)::TIMESTAMP, nullif(host, ''), method, path, query, proto, "
    f"status::INTEGER, bytes, {strip_referrer_sql('referrer')}, ua)"
)
_STORED_KEY = (
    "hash(r.ts::TIMESTAMP, r.host, r.method, r.path, r.query, r.protocol, r.status::INTEGER, "
    "r.bytes, r.referrer, u.ua)"
)


def mark_replayed(
    con: duckdb.DuckDBPyConnection, stage: str, source_id: int, prior_lines: int,
    matched: LineRanges,
) -> int:  # fmt: skip
    """Streams: mark as seen (`old`) the requests of batch table `stage` that an earlier run
    of the same stream stored: a replay, as `docker compose logs` prints its whole history
    again. Needs the database attached (as `db`); returns how many were marked.

    A replayed line is recognised by what it is, not by where its time falls (nginx logs
    in completion order, so times go back and forth by seconds): per second, the batch's
    requests and the stream's stored rows are matched as multisets of their stored fields,
    N identical lines against M stored ones leaving N - M new. Only rows of earlier runs
    (line numbers up to `prior_lines`) can be matched, each once per run (`matched`
    remembers them): this run's own lines are new, identical or not. Lines that are not
    requests (errors, start-up lines) before the batch's last replayed line were seen with it.
    """
    lo, hi = con.execute(
        f"SELECT min(date_trunc('second', ts)), max(date_trunc('second', ts)) FROM {stage} "
        "WHERE kind = 'ok'"
    ).fetchall()[0]
    if lo is None:
        return 0
    used, used_params = columns_sql(
        "used",
        lo=("BIGINT", [a for a, _ in matched.ranges]),
        hi=("BIGINT", [b for _, b in matched.ranges]),
    )
    pairs = con.execute(
        f"""
        WITH b AS (
            SELECT ln, {_BATCH_KEY} AS k FROM {stage} WHERE kind = 'ok'
        ), c AS (
            SELECT r.line_no, {_STORED_KEY} AS k
            FROM db.requests r LEFT JOIN db.user_agents u ON r.ua_id = u.id
            WHERE r.source_id = $sid AND r.line_no <= $prior AND r.ts >= $lo AND r.ts <= $hi
              AND NOT EXISTS (SELECT 1 FROM {used} WHERE r.line_no BETWEEN used.lo AND used.hi)
        )
        SELECT b.ln, c.line_no
        FROM (SELECT *, row_number() OVER (PARTITION BY k ORDER BY ln) AS occ FROM b) b
        JOIN (SELECT *, row_number() OVER (PARTITION BY k ORDER BY line_no) AS occ FROM c) c
          ON b.k = c.k AND b.occ = c.occ
        """,
        {"sid": source_id, "prior": prior_lines, "lo": lo, "hi": hi, **used_params},
    ).fetchall()
    if not pairs:
        return 0
    matched.add([n for _, n in pairs])
    con.execute(
        f"UPDATE {stage} SET old = TRUE WHERE ln IN (SELECT unnest($1::BIGINT[]))",
        [[ln for ln, _ in pairs]],
    )
    con.execute(
        f"UPDATE {stage} SET old = TRUE WHERE kind <> 'ok' AND ln <= $1", [max(p[0] for p in pairs)]
    )
    return len(pairs)


@dataclass
class Source:
    """An input being imported: its checkpoint row and parsing state."""

    stats: SourceStats
    kind: str  # file | stream
    id: int
    exists: bool  # its row is in the store (or a commit that creates it is queued)
    offset: int = 0  # content bytes committed (or queued for commit)
    lines: int = 0  # lines committed (files) / highest line_no committed (streams)
    parsed_offset: int = 0  # content bytes parsed (>= offset)
    parsed_lines: int = 0
    queued_offset: int = 0  # content bytes handed to the parsing threads (>= parsed)
    queued_lines: int = 0
    info: FileInfo | None = None
    fmt: LogFormat | None = None
    prefix: StreamPrefix = field(default_factory=StreamPrefix)
    sql: str = ""
    #: streams: the highest line number earlier runs stored (a replay is matched to those)
    prior_lines: int = 0
    #: streams: stored lines (earlier runs') that this run's replayed lines were matched to
    matched: LineRanges = field(default_factory=lambda: LineRanges())
    #: whether a first batch was looked at for one private address sending everything
    clients_checked: bool = False

    def __post_init__(self) -> None:
        # Parsing starts where the last commit ended.
        self.parsed_offset = self.queued_offset = self.offset
        self.parsed_lines = self.queued_lines = self.lines
        self.known = self.exists  # stored from before this run


def file_source(
    db: duckdb.DuckDBPyConnection, info: FileInfo, first: bytes, stats: SourceStats, new_id: int
) -> Source:
    """The source a log file is (found by the first bytes of its content), or a new one
    with id `new_id`; `stats.note` says when it was read before under another name."""
    rows = db.execute(
        "SELECT id, fingerprint, fp_len, byte_offset, lines, inode, complete, size, name "
        "FROM db.sources WHERE kind = 'file' AND fp_len <= ?",
        [len(first)],
    ).fetchall()
    matches = [r for r in rows if r[1] == content_hash(first[: r[2]])]
    if not matches:
        return Source(stats=stats, kind="file", id=new_id, exists=False, info=info)
    # The most specific fingerprint wins; then the same inode.
    matches.sort(key=lambda r: (r[2], r[5] == info.inode), reverse=True)
    sid, _, _, offset, lines, _, complete, size, name = matches[0]
    if name != str(info.path):
        stats.note = f"imported before as {name}"
    if info.compressed and complete and size == info.size:
        stats.note = "complete"
    return Source(
        stats=stats, kind="file", id=sid, exists=True, offset=offset, lines=lines, info=info
    )


def stream_name(sample: Sequence[str], prefix: StreamPrefix, options: ImportOptions) -> str:
    """A stream's checkpoint name: --source, else `compose:SERVICE` for one docker compose
    service, `compose` for several, `stdin` otherwise."""
    if options.source_name is not None:
        return options.source_name
    if not prefix.service:
        return "stdin"
    if options.service:
        return f"compose:{options.service}"
    services = {
        s.split("|", 1)[0].strip().rstrip("0123456789").rstrip("-_") for s in sample if "|" in s
    }
    return f"compose:{services.pop()}" if len(services) == 1 else "compose"


def stream_source(
    db: duckdb.DuckDBPyConnection,
    data: bytes | memoryview,
    stats: SourceStats,
    options: ImportOptions,
    new_id: int,
) -> Source:
    """The source a stream is, by the name its first block gives it (`stream_name`)."""
    sample = bytes(data[: 1 << 16]).decode("utf-8", "replace").splitlines()[:SAMPLE_LINES]
    prefix = detect_prefix(sample)
    stats.name = name = stream_name(sample, prefix, options)
    rows = db.execute(
        "SELECT id, byte_offset, lines FROM db.sources WHERE kind = 'stream' AND name = ?", [name]
    ).fetchall()
    if not rows:
        return Source(stats=stats, kind="stream", id=new_id, exists=False, prefix=prefix)
    sid, offset, lines = rows[0]
    # A stream's byte_offset only counts what was read under this name, over all runs.
    return Source(
        stats=stats,
        kind="stream",
        id=sid,
        exists=True,
        offset=offset,
        lines=lines,
        prefix=prefix,
        prior_lines=lines,
    )
