"""Plain data shared by every layer: what an import did, and what a report returns."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SourceStats:
    """What one import run did with one input (a file or a stream)."""

    name: str
    format: str = ""
    lines_read: int = 0  # lines read from the input by this run
    imported: int = 0  # rows added to the store
    already: int = 0  # lines skipped because an earlier run imported them
    malformed: int = 0  # lines that did not match the format
    nonaccess: int = 0  # nginx error / start-up lines, blank lines, other services
    late: int = 0  # rows for a day whose key was already destroyed
    #: The first few malformed lines, with addresses masked: (line number, text).
    samples: list[tuple[int, str]] = field(default_factory=list)
    note: str = ""  # e.g. "unchanged since last import", "rotated from access.log"

    @property
    def parse_failures_dominate(self) -> bool:
        """Most lines failed to parse: almost surely the wrong format."""
        candidates = self.imported + self.malformed
        return candidates >= 5 and self.malformed * 2 > candidates


@dataclass
class IngestStats:
    """Totals of one import run over all its inputs."""

    sources: list[SourceStats] = field(default_factory=list)
    days_closed: list[str] = field(default_factory=list)
    seconds: float = 0.0

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
    def mostly_malformed(self) -> list[SourceStats]:
        return [s for s in self.sources if s.parse_failures_dominate]
