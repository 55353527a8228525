"""Plain data shared by every layer: what an import did, and what a report returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class SourceStats:
    """What one import run did with one input (a file or a stream)."""

    name: str
    format: str = ""
    kind: str = "file"  # file | stream
    #: lines of the input, up to where this run stopped: a file's `wc -l` (its unterminated
    #: last line aside); = imported + already + malformed + nonaccess + withheld
    lines_read: int = 0
    imported: int = 0  # rows added to the store
    already: int = 0  # lines an earlier run imported (before a file's checkpoint, a replay)
    malformed: int = 0  # lines that did not match the format
    nonaccess: int = 0  # nginx error / start-up lines, blank lines, other services
    late: int = 0  # rows for a day whose key was already destroyed
    #: requests parsed but not stored: most lines of the input did not parse (wrong format?)
    withheld: int = 0
    #: an unterminated last line not read (a file: left for the next run; a stream: dropped)
    unterminated: int = 0
    #: The first few malformed lines, with addresses masked: (line number, why, text).
    samples: list[tuple[int, str, str]] = field(default_factory=list)
    note: str = ""  # e.g. "unchanged since last import", "rotated from access.log"
    #: share of its first batch's requests from one private address (a proxy, the Docker
    #: bridge): every visitor looks like one
    one_private: float = 0.0

    @property
    def parse_failures_dominate(self) -> bool:
        """Most lines failed to parse: almost surely the wrong format."""
        candidates = self.imported + self.withheld + self.malformed
        return candidates >= 5 and self.malformed * 2 > candidates


@dataclass
class IngestStats:
    """Totals of one import run over all its inputs."""

    sources: list[SourceStats] = field(default_factory=list)
    days_closed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False  # stopped early (SIGTERM, Ctrl-C): what was read is stored
    #: requests of machines with a browser's user agent marked bots, by reason (rate...)
    machines: dict[str, int] = field(default_factory=dict)

    def total(self, attr: str) -> int:
        return sum(int(getattr(s, attr)) for s in self.sources)

    @property
    def lines_read(self) -> int:
        return self.total("lines_read")

    @property
    def imported(self) -> int:
        return self.total("imported")

    @property
    def already(self) -> int:
        return self.total("already")

    @property
    def malformed(self) -> int:
        return self.total("malformed")

    @property
    def nonaccess(self) -> int:
        return self.total("nonaccess")

    @property
    def late(self) -> int:
        return self.total("late")

    @property
    def withheld(self) -> int:
        return self.total("withheld")

    @property
    def unterminated(self) -> int:
        return self.total("unterminated")

    @property
    def mostly_malformed(self) -> list[SourceStats]:
        return [s for s in self.sources if s.parse_failures_dominate]


@dataclass(frozen=True)
class Column:
    """One column of a report.

    `kind` tells renderers how to show a value: text, int, float, pct (a fraction
    0-1, shown as a percentage), seconds (shown as 1m 05s), date, or bar (a picture of
    the column named by `of`, drawn in tables only and left out of json/csv/tsv).
    """

    key: str  # snake_case: the JSON key and the CSV header
    label: str  # the table header
    kind: str = "text"
    of: str | None = None  # for bars: the column they draw


@dataclass
class Report:
    """What a report returns: named columns and rows of plain values, and notes.

    A command may return several sections (e.g. sessions per day, then their
    durations); `single` marks a report that is one record (overview).
    """

    name: str
    title: str
    columns: list[Column]
    rows: list[tuple[object, ...]]
    notes: list[str] = field(default_factory=list)
    single: bool = False
    empty: str = "nothing to show"  # said instead of an empty table
    #: For a "mixed" column: the kind of each row's value (overview: int, pct, seconds).
    row_kinds: list[str] = field(default_factory=list)
    #: For a single report: the one record that json/csv/tsv print.
    record: dict[str, object] = field(default_factory=dict)

    @classmethod
    def of_record(
        cls, name: str, title: str, items: Sequence[tuple[str, str, str, object]]
    ) -> Report:
        """A one-record report, shown as a two-column table: (key, label, kind, value) for
        each line; json/csv/tsv print the record by key.

        Example:
            >>> Report.of_record("now", "Now", [("requests", "Requests", "int", 3)]).record
            {'requests': 3}
        """
        return cls(
            name,
            title,
            [Column("metric", "", "text"), Column("value", "", "mixed")],
            [(label, value) for _, label, _, value in items],
            single=True,
            row_kinds=[kind for _, _, kind, _ in items],
            record={key: value for key, _, _, value in items},
        )

    def records(self) -> list[dict[str, object]]:
        """Rows as dicts keyed by column key, without the bars (what json/csv get)."""
        if self.single:
            return [self.record]
        keep = [(i, c.key) for i, c in enumerate(self.columns) if c.kind != "bar"]
        return [{key: row[i] for i, key in keep} for row in self.rows]


@dataclass
class Tile:
    """A headline number of the dashboard, beside the previous period's."""

    label: str
    kind: str  # int, pct, seconds (as Column.kind)
    value: object
    previous: object = None  # None: no such period, or nothing to compare in it
    up_is_good: bool = True  # a falling bounce rate is good news
    compared: bool = False  # whether there was a period before to compare with


@dataclass
class Series:
    """Values over time: per day, or per hour for a short period."""

    unit: str  # "day" or "hour"
    labels: list[str] = field(default_factory=list)
    visitors: list[float] = field(default_factory=list)
    pageviews: list[float] = field(default_factory=list)


@dataclass
class Section:
    """A part of the dashboard: reports shown as tables (and bars); `why_empty` says why
    there is nothing to show when there is nothing."""

    key: str
    title: str
    reports: list[Report]
    why_empty: str = ""
    wide: bool = False


@dataclass
class Dashboard:
    """What the dashboard page shows, computed by `reports.dashboard`, drawn by `render`."""

    title: str
    period: str
    tz: str
    generated: str  # when the page was made (UTC)
    newest: str | None  # the newest stored request (UTC): how fresh the data is
    tiles: list[Tile]
    series: Series
    heatmap: list[list[float]]  # sessions by weekday (Monday first) and hour
    sections: list[Section]
    notes: list[str] = field(default_factory=list)
    credits: list[str] = field(default_factory=list)  # data sources whose licence asks so
