"""Parsed batches waiting for a commit: tables s<N> on the store's in-memory instance, and
where each of their lines ends in the input, so that a commit of whole row groups has an
exact byte offset to checkpoint."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

import duckdb


@dataclass
class Waiting:
    bid: int  # its table: memory.main.s<bid>
    requests: int  # requests in it not committed yet
    last_line: int  # the input's line number of its last line
    base_offset: int  # content bytes and lines of the input before it
    base_lines: int
    ends: array[int]  # where each of its lines ends, from base_offset


@dataclass
class Staging:
    """The batches waiting for a commit, in input order."""

    con: duckdb.DuckDBPyConnection
    batches: list[Waiting] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(w.requests for w in self.batches)

    def add(self, waiting: Waiting) -> None:
        self.batches.append(waiting)

    def cut(self, limit: int, committed_lines: int) -> tuple[int, int]:
        """(line number, byte offset) just after the `limit`-th waiting request: the end of
        a commit of that many requests."""
        seen, target = 0, self.batches[-1]
        for w in self.batches:
            if seen + w.requests >= limit:
                target = w
                break
            seen += w.requests
        (last_line,) = self.con.execute(
            f"SELECT line_no FROM memory.main.s{target.bid} WHERE line_no > {committed_lines} "
            f"ORDER BY line_no LIMIT 1 OFFSET {limit - seen - 1}"
        ).fetchall()[0]
        return last_line, target.base_offset + target.ends[last_line - target.base_lines - 1]

    def committed(self, last_line: int) -> None:
        """Forget what a commit up to `last_line` stored: batches wholly committed go; the
        next one may keep requests for the next commit."""
        done = 0
        for w in self.batches:
            if w.last_line > last_line:
                (w.requests,) = self.con.execute(
                    f"SELECT count(*) FROM memory.main.s{w.bid} WHERE line_no > {last_line}"
                ).fetchall()[0]
                break
            done += 1
        self.drop(done)

    def drop(self, count: int | None = None) -> None:
        """Drop the first `count` batches (all of them by default)."""
        count = len(self.batches) if count is None else count
        for w in self.batches[:count]:
            self.con.execute(f"DROP TABLE IF EXISTS memory.main.s{w.bid}")
        del self.batches[:count]
