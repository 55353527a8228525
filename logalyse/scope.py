"""Which stored requests and sessions a report looks at: `Scope`, built from the user's
words by `period`, and the SQL it selects with (conditions on `requests`, and the sessions
of its period). Values travel as named parameters: `scope.params`.

How sessions are made lives in `store.sessions`; nothing here renders or reads a log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone

from .enrich import (
    DEFAULT_ASSET_EXTENSIONS,
    DEFAULT_NON_PAGES,
    is_asset_sql,
    page_request_sql,
    strip_www,
    strip_www_sql,
)
from .errors import ConfigError
from .privacy import check_time_zone
from .quote import sql_literal
from .store import DAY_KEY_SPAN, SESSION_GAP_SECONDS, sessionise_sql

DEFAULT_GAP = timedelta(seconds=SESSION_GAP_SECONDS)  # the stored sessions' gap
SHORTEST_GAP = timedelta(minutes=1)
MAX_LIMIT = 1_000_000
#: `--limit 0`: every row (a LIMIT no table reaches).
ALL_ROWS = 2**31 - 1


@dataclass(frozen=True, kw_only=True)
class Scope:
    """A report's filters, checked when made. `since`/`until` are UTC instants (until
    exclusive); `sessions_stale` says whether the stored sessions may lag (an import is
    running, or one was killed): whoever makes a Scope asks the store (`report` does).

    Example:
        >>> Scope(host="www.Example.com", sessions_stale=False).params
        {'host': 'example.com'}
        >>> Scope(limit=0, sessions_stale=False).limit == ALL_ROWS  # 0: every row
        True
        >>> Scope(limit=-1, sessions_stale=False)
        Traceback (most recent call last):
        ...
        logalyse.errors.ConfigError: limit -1 is out of range: 0 (all rows), or 1 to 1,000,000
    """

    since: datetime | None = None
    until: datetime | None = None
    host: str | None = None
    #: the host is the site's own (as imports learnt it): requests logged without a host
    #: (a format without $host) are its too
    host_is_site: bool = False
    path: str | None = None  # a glob: /blog/*
    include_bots: bool = False
    tz: str = "UTC"
    limit: int = 20
    gap: timedelta = DEFAULT_GAP
    label: str = "all time"  # the period, as said to the user
    sessions_stale: bool
    #: What is not a page, for bots' pageviews with --include-bots (humans' are stored).
    asset_extensions: tuple[str, ...] = DEFAULT_ASSET_EXTENSIONS
    non_pages: tuple[str, ...] = DEFAULT_NON_PAGES

    def __post_init__(self) -> None:
        check_time_zone(self.tz)
        if self.gap < SHORTEST_GAP:
            raise ConfigError(f"a session gap of {self.gap} is too short: 1 minute at least")
        if isinstance(self.limit, bool) or not 0 <= self.limit <= MAX_LIMIT:
            if self.limit != ALL_ROWS:
                raise ConfigError(
                    f"limit {self.limit!r} is out of range: 0 (all rows), or 1 to {MAX_LIMIT:,}"
                )
        if self.limit == 0:
            object.__setattr__(self, "limit", ALL_ROWS)
        # An empty period (since == until) is allowed: the one before a period yet to begin.
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ConfigError(
                f"until ({self.until:%Y-%m-%d %H:%M}) is before since "
                f"({self.since:%Y-%m-%d %H:%M}): the period would be empty"
            )

    @property
    def params(self) -> dict[str, object]:
        """The named parameters of the SQL that `where` and `sessions_from` write: one per
        filter set ($since, $until, $host, $path), since every condition names them all."""
        values = {
            "since": self.since,
            "until": self.until,
            "host": strip_www(self.host.lower()) if self.host else None,
            "path": self.path or None,
        }
        return {k: v for k, v in values.items() if v is not None}

    def params_for(self, sql: str) -> dict[str, object]:
        """`params` less those `sql` does not name (DuckDB refuses a parameter a query does
        not use): a query over a table made for the scope names none."""
        return {k: v for k, v in self.params.items() if f"${k}" in sql}

    def where(
        self,
        alias: str = "r",
        *,
        pages: bool = False,
        bots: bool | None = None,
        margin: timedelta | None = None,
    ) -> str:
        """SQL condition on the requests `alias` in scope (parameters: `params`).

        `pages`: pageviews only (with --include-bots, bots' page requests count too);
        `bots`: None follows --include-bots, True/False forces it; `margin`: widen the
        period by this much on either side.
        """
        a = f"{alias}."
        pad = f" INTERVAL {int(margin.total_seconds())} SECOND" if margin else ""
        out: list[str] = []
        if self.since is not None:
            out.append(f"{a}ts >= $since" + (f" -{pad}" if pad else ""))
        if self.until is not None:
            out.append(f"{a}ts < $until" + (f" +{pad}" if pad else ""))
        if self.host:
            out.append(self.host_sql(f"{a}host"))
        if self.path:
            out.append(f"{a}path GLOB $path")
        include = self.include_bots if bots is None else bots
        if pages and include:
            is_asset = is_asset_sql(a + "path", self.asset_extensions, self.non_pages)
            page = page_request_sql(a + "method", a + "status", is_asset)
            out.append(f"({a}is_pageview OR ({a}is_bot AND {page}))")
        elif pages:
            out.append(f"{a}is_pageview")
        elif not include:
            out.append(f"NOT coalesce({a}is_bot, FALSE)")
        return " AND ".join(out) or "TRUE"

    def host_sql(self, column: str) -> str:
        """SQL condition: `column` is the scope's --host (`www.` and case aside; parameter
        `$host`), or NULL when that host is the site's own (a log without $host)."""
        own = f" OR {column} IS NULL" if self.host_is_site else ""
        return f"({strip_www_sql(f'lower({column})')} = $host{own})"

    def local(self, column: str = "ts") -> str:
        """SQL: a UTC timestamp column as local time in the scope's time zone."""
        if self.tz == "UTC":
            return column
        return f"timezone({sql_literal(self.tz)}, {column}::TIMESTAMPTZ)"

    def previous(self) -> Scope | None:
        """The period of the same length just before this one (None for all time; empty for
        a period yet to begin); every other setting, staleness included, carries over."""
        if self.since is None:
            return None
        end = self.until or datetime.now(timezone.utc).replace(tzinfo=None)
        length = max(end - self.since, timedelta(0))
        start = self.since - length
        return replace(self, since=start, until=self.since, label=self.days(start, self.since))

    def days(self, start: datetime, end: datetime) -> str:
        """The local days from `start` to `end` (UTC instants, `end` excluded), as a label.

        Example:
            >>> scope = Scope(tz="UTC", sessions_stale=False)
            >>> scope.days(datetime(2026, 11, 1), datetime(2026, 11, 3))
            '2026-11-01 to 2026-11-02'
        """
        zone = check_time_zone(self.tz)
        first = start.replace(tzinfo=timezone.utc).astimezone(zone).date()
        last = (end.replace(tzinfo=timezone.utc) - timedelta(microseconds=1)).astimezone(zone)
        return str(first) if first == last.date() else f"{first} to {last.date()}"


#: What `sessions_from` yields: the `sessions` table's columns, and these two.
DERIVED = "date_diff('second', start, finish) AS seconds, pageviews = 1 AS bounce"


def stored(scope: Scope) -> bool:
    """Whether the stored `sessions` table answers for this scope (else: computed).

    It holds sessions of human pageviews over all paths with the default gap; a --path,
    --include-bots or another --gap needs sessions made from the requests, and so does a
    store whose import has not finished (its new sessions are made at the end).
    """
    return (
        not scope.path
        and not scope.include_bots
        and scope.gap == DEFAULT_GAP
        and not scope.sessions_stale
    )


def sessions_from(scope: Scope) -> str:
    """SQL (a parenthesised query; parameters: `scope.params`) with one row per session
    that starts in the scope's period.

    Columns: visitor_id, host, start, finish, pageviews, entry, exit, source_kind,
    source_name, referrer_host, utm_source, utm_medium, utm_campaign, country, device,
    seconds, bounce. A session belongs to the period it starts in.

    Example:
        >>> sessions_from(Scope(sessions_stale=False)).startswith("(SELECT")
        True
    """
    out = []
    if scope.since is not None:
        out.append("start >= $since")
    if scope.until is not None:
        out.append("start < $until")
    if stored(scope):
        if scope.host:
            out.append(scope.host_sql("host"))
        return f"(SELECT *, {DERIVED} FROM sessions WHERE {' AND '.join(out) or 'TRUE'})"
    # From the requests: those of the period and a day either side (a session that
    # starts in the period may end after it), then keep the sessions starting in it.
    requests = scope.where("r", pages=True, margin=DAY_KEY_SPAN)
    sql = sessionise_sql(requests, int(scope.gap.total_seconds()))
    return f"(SELECT *, {DERIVED} FROM ({sql}) WHERE {' AND '.join(out) or 'TRUE'})"


# -- periods -------------------------------------------------------------------------------

_LAST = re.compile(r"^(\d+)d$")


def _day(text: str, today: date) -> date:
    word = text.strip().lower()
    if word == "today":
        return today
    if word == "yesterday":
        return today - timedelta(days=1)
    m = _LAST.match(word)
    if m:
        days = int(m.group(1))
        return today - timedelta(days=days - 1) if days <= 100_000 else date.min
    if word == "month":
        return today.replace(day=1)
    if word == "year":
        return today.replace(month=1, day=1)
    try:
        return date.fromisoformat(word)
    except ValueError as e:
        raise ConfigError(
            f"{text!r} is not a date: use YYYY-MM-DD, today, yesterday, 7d, 30d or month"
        ) from e


def period(
    since: str | None, until: str | None, tz: str = "UTC", now: datetime | None = None
) -> tuple[datetime | None, datetime | None, str]:
    """(since, until) as UTC instants, and a label, from the user's words, in their time zone.

    `until` is inclusive (the whole day); `7d` is today and the six days before.

    Example:
        >>> now = datetime(2026, 11, 28, 12, 0)
        >>> period("7d", None, now=now)
        (datetime.datetime(2026, 11, 22, 0, 0), None, '2026-11-22 to now')
        >>> period("yesterday", "yesterday", now=now)[:2]
        (datetime.datetime(2026, 11, 27, 0, 0), datetime.datetime(2026, 11, 28, 0, 0))
    """
    zone = check_time_zone(tz)
    local_now = (now or datetime.now(timezone.utc).replace(tzinfo=None)).replace(
        tzinfo=timezone.utc
    )
    today = local_now.astimezone(zone).date()

    def utc(d: date) -> datetime:
        return datetime.combine(d, time(), zone).astimezone(timezone.utc).replace(tzinfo=None)

    start = _day(since, today) if since else None
    end = _day(until, today) if until else None
    for d, word in ((start, since), (end, until)):
        if d is not None and not date(1970, 1, 1) <= d <= date(2199, 12, 31):
            raise ConfigError(f"{word!r} is out of range: logalyse keeps days from 1970 to 2199")
    if since and since.strip().lower() in ("today", "yesterday") and not until:
        end = start
    if start and end and start > end:
        raise ConfigError(f"{since!r} is after {until!r}: the period would be empty")
    label = f"{start or 'the beginning'} to {end or 'now'}" if (start or end) else "all time"
    if start and end and start == end:
        label = str(start)
    return (
        utc(start) if start else None,
        utc(end + timedelta(days=1)) if end else None,
        label,
    )
