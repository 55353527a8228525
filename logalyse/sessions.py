"""Which stored requests a report looks at (`Scope`), and sessions built from them in SQL.

A session is one visitor's run of pageviews with no gap longer than `gap` (30 minutes by
default). Visitor ids change at midnight (each day has its own key), so a visit that
crosses midnight is two sessions: the price of ids that cannot be linked across days.
Nothing here renders or reads a log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .enrich import is_asset_sql
from .errors import ConfigError
from .quote import sql_literal
from .store import DAY_KEY_SPAN, SESSION_GAP_SECONDS, sessionise_sql

DEFAULT_GAP = timedelta(seconds=SESSION_GAP_SECONDS)  # the stored sessions' gap


@dataclass
class Scope:
    """A report's filters. `since`/`until` are UTC instants (until exclusive)."""

    since: datetime | None = None
    until: datetime | None = None
    host: str | None = None
    path: str | None = None  # a glob: /blog/*
    include_bots: bool = False
    tz: str = "UTC"
    limit: int = 20
    gap: timedelta = DEFAULT_GAP
    label: str = "all time"  # the period, as said to the user
    #: An import is running, or one was killed: the stored sessions may lag (see REPORTS).
    sessions_stale: bool = False
    params: list[object] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ConfigError(f"unknown time zone {self.tz!r} (try UTC or Europe/Paris)") from e

    def where(self, alias: str = "r", *, pages: bool = False, bots: bool | None = None) -> str:
        """SQL condition (with ? placeholders appended to `self.params`) for the scope.

        `pages`: pageviews only (with --include-bots, bots' page requests count too);
        `bots`: None follows --include-bots, True/False forces it.
        """
        a = f"{alias}."
        out: list[str] = []
        if self.since is not None:
            out.append(f"{a}ts >= ?")
            self.params.append(self.since)
        if self.until is not None:
            out.append(f"{a}ts < ?")
            self.params.append(self.until)
        if self.host:
            out.append(f"regexp_replace(lower({a}host), '^www\\.', '') = ?")
            self.params.append(self.host.lower().removeprefix("www."))
        if self.path:
            out.append(f"{a}path GLOB ?")
            self.params.append(self.path)
        include = self.include_bots if bots is None else bots
        if pages:
            if include:
                page = (
                    f"({a}is_pageview OR ({a}is_bot AND {a}method = 'GET' AND "
                    f"({a}status BETWEEN 200 AND 299 OR {a}status = 304) AND NOT "
                    f"({is_asset_sql(a + 'path')})))"
                )
                out.append(page)
            else:
                out.append(f"{a}is_pageview")
        elif not include:
            out.append(f"NOT coalesce({a}is_bot, FALSE)")
        return " AND ".join(out) or "TRUE"

    def take(self) -> list[object]:
        """The parameters collected by `where` calls so far (and forget them)."""
        params, self.params = self.params, []
        return params

    def local(self, column: str = "ts") -> str:
        """SQL: a UTC timestamp column as local time in the scope's time zone."""
        if self.tz == "UTC":
            return column
        return f"timezone({sql_literal(self.tz)}, {column}::TIMESTAMPTZ)"

    def previous(self) -> Scope | None:
        """The period of the same length just before this one (None for all time); every
        other setting (filters, and whether stored sessions are stale) carries over."""
        if self.since is None:
            return None
        end = self.until or datetime.now(timezone.utc).replace(tzinfo=None)
        return replace(
            self, since=self.since - (end - self.since), until=self.since, label="previous period"
        )


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
    """SQL (a parenthesised query, parameters taken by `scope`) with one row per session
    that starts in the scope's period.

    Columns: visitor_id, host, start, finish, pageviews, entry, exit, source_kind,
    source_name, referrer_host, utm_source, utm_medium, utm_campaign, country, device,
    seconds, bounce. A session belongs to the period it starts in.

    Example:
        >>> sessions_from(Scope()).startswith("(SELECT")
        True
    """
    out = []
    if scope.since is not None:
        out.append("start >= ?")
    if scope.until is not None:
        out.append("start < ?")
    period = " AND ".join(out) or "TRUE"
    if stored(scope):
        params: list[object] = [p for p in (scope.since, scope.until) if p is not None]
        where = period
        if scope.host:
            where += " AND regexp_replace(lower(host), '^www\\.', '') = ?"
            params.append(scope.host.lower().removeprefix("www."))
        scope.params.extend(params)
        return f"(SELECT *, {DERIVED} FROM sessions WHERE {where})"
    # From the requests: those of the period and a day either side (a session that
    # starts in the period may end after it), then keep the sessions starting in it.
    wide = replace(
        scope,
        since=scope.since - DAY_KEY_SPAN if scope.since else None,
        until=scope.until + DAY_KEY_SPAN if scope.until else None,
    )
    sql = sessionise_sql(wide.where("r", pages=True), int(scope.gap.total_seconds()))
    scope.params.extend(wide.take())
    scope.params.extend(p for p in (scope.since, scope.until) if p is not None)
    return f"(SELECT *, {DERIVED} FROM ({sql}) WHERE {period})"


# -- periods -------------------------------------------------------------------------------

_LAST = re.compile(r"^(\d+)d$")


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ConfigError(f"unknown time zone {tz!r}: use a name like Europe/Paris or UTC") from e


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
    zone = _zone(tz)
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
    label = f"{start or 'the beginning'} to {end or 'now'}" if (start or end) else "all time"
    if start and end and start == end:
        label = str(start)
    return (
        utc(start) if start else None,
        utc(end + timedelta(days=1)) if end else None,
        label,
    )
