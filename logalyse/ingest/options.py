"""How to import: `ImportOptions` (what a user chooses), the inputs, and the sizes that
bound an import's memory (what `make bench` tunes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from ..enrich import DEFAULT_ASSET_EXTENSIONS, DEFAULT_NON_PAGES
from ..enrich.behaviour import Behaviour
from ..errors import ConfigError
from ..formats import compile_format
from ..privacy import DEFAULT_GRACE, DEFAULT_QUERY_ALLOW, check_time_zone

#: Bytes of log per batch. Two batches are parsed at once, and a batch's tables take a few
#: times its size; each batch also costs a fixed time to plan. Bigger is faster and
#: heavier (README, Performance).
DEFAULT_BATCH_BYTES = 3 << 20
#: DuckDB's row group: a commit of whole row groups is written straight to the file,
#: while a partial one goes through the WAL and is written again at checkpoint.
ROW_GROUP_ROWS = 122_880
#: DuckDB's memory for the end-of-run session remake. It reads the dirty window once per
#: bucket of visitors and would keep every block of the file it read, up to the store's
#: limit; under this one it drops them instead (they are re-read from the file: nothing
#: spills). A bucket's sort (SESSION_CHUNK_PAGEVIEWS) needs less than that.
REMAKE_MEMORY_LIMIT = "100MB"
#: A long import detaches the store at least this often, so that reports can get in.
HOLD_SECONDS = 2.0
#: New user agents kept in memory before they are stored ahead of their requests: an
#: attacker who sends a new one with every request must not grow the import's memory.
UA_FLUSH = 5_000

#: (input, bytes read, bytes in all) as an import goes
ProgressFn = Callable[[str, int, int], None]
#: (input, line number, why it did not parse, the line with addresses masked)
RejectFn = Callable[[str, int, str, str], None]


@dataclass(frozen=True)
class ImportOptions:
    """How to import. Every field has the default a nightly cron job wants."""

    format: str | None = None  # preset or nginx log_format; None = detect per input
    service: str | None = None  # keep one docker compose service
    source_name: str | None = None  # checkpoint name of a stream (default: derived)
    tz: str = "UTC"  # time zone whose midnight ends a day (for day keys)
    grace: timedelta = DEFAULT_GRACE
    query_allow: tuple[str, ...] = DEFAULT_QUERY_ALLOW
    batch_bytes: int = DEFAULT_BATCH_BYTES
    samples: int = 5  # malformed lines kept per input to show
    geoip: str | Path | None = None  # a MaxMind-format City or Country .mmdb
    geoip_city: bool = False  # also keep the city's name (never coordinates)
    sites: tuple[str, ...] = ()  # the site's own hosts: referrals from them are internal
    asset_extensions: tuple[str, ...] = DEFAULT_ASSET_EXTENSIONS  # not pageviews
    non_pages: tuple[str, ...] = DEFAULT_NON_PAGES  # paths that are never pageviews
    behaviour: Behaviour = Behaviour()  # when a browser's user agent is a machine's

    def __post_init__(self) -> None:
        check_time_zone(self.tz)
        if self.format is not None:
            compile_format(self.format)  # fail before reading anything
        if self.geoip_city and not self.geoip:
            raise ConfigError("--geoip-city needs a GeoIP database (--geoip)")


@dataclass
class StreamInput:
    """A byte stream to import (stdin, a pipe), with a label for messages."""

    stream: BinaryIO
    label: str = "stdin"


Input = Path | StreamInput
