"""Which stored requests a report looks at (`Scope`), and sessions built from them in SQL.

A session is one visitor's run of pageviews with no gap longer than `gap` (30 minutes by
default). Visitor ids change at midnight (each day has its own key), so a visit that
crosses midnight is two sessions: the price of ids that cannot be linked across days.
Nothing here renders or reads a log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .enrich import is_asset_sql
from .errors import ConfigError

DEFAULT_GAP = timedelta(minutes=30)
#: The order of requests within a visitor: time, then where the line was (ties in ts).
ORDER = "ts, source_id, line_no"


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
    params: list[object] = field(default_factory=list, init=False, repr=False)

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
        return f"timezone('{self.tz}', {column}::TIMESTAMPTZ)"

    def previous(self) -> Scope | None:
        """The period of the same length just before this one (None for all time)."""
        if self.since is None:
            return None
        end = self.until or datetime.now(timezone.utc).replace(tzinfo=None)
        prev = Scope(
            since=self.since - (end - self.since),
            until=self.since,
            host=self.host,
            path=self.path,
            include_bots=self.include_bots,
            tz=self.tz,
            limit=self.limit,
            gap=self.gap,
            label="previous period",
        )
        return prev


def sessions_sql(scope: Scope) -> str:
    """SQL (a query, parameters taken by `scope`) with one row per session.

    Columns: visitor_id, start, finish, pageviews, seconds, bounce, entry, exit,
    source_kind, source_name, referrer_host, utm_source, utm_medium, utm_campaign,
    country, device. Window and aggregate orders include (source_id, line_no), so tied
    timestamps give the same sessions on any number of threads.

    Example:
        >>> "PARTITION BY visitor_id" in sessions_sql(Scope())
        True
    """
    gap = int(scope.gap.total_seconds())
    key = f"({ORDER})"
    return f"""
        SELECT visitor_id, min(ts) AS start, max(ts) AS finish, count(*) AS pageviews,
               date_diff('second', min(ts), max(ts)) AS seconds, count(*) = 1 AS bounce,
               arg_min_null(path, {key}) AS entry, arg_max_null(path, {key}) AS exit,
               arg_min_null(source_kind, {key}) AS source_kind,
               arg_min_null(source_name, {key}) AS source_name,
               arg_min_null(referrer_host, {key}) AS referrer_host,
               arg_min_null(utm_source, {key}) AS utm_source,
               arg_min_null(utm_medium, {key}) AS utm_medium,
               arg_min_null(utm_campaign, {key}) AS utm_campaign,
               arg_min_null(country, {key}) AS country, arg_min_null(device, {key}) AS device
        FROM (
            SELECT *, sum(new) OVER (PARTITION BY visitor_id ORDER BY {ORDER}
                                     ROWS UNBOUNDED PRECEDING) AS n
            FROM (
                SELECT r.visitor_id, r.ts, r.source_id, r.line_no, r.path, r.source_kind,
                       r.source_name, r.referrer_host, r.utm_source, r.utm_medium,
                       r.utm_campaign, r.country, u.device,
                       CASE WHEN date_diff('second',
                                           lag(r.ts) OVER (PARTITION BY r.visitor_id
                                                           ORDER BY r.ts, r.source_id, r.line_no),
                                           r.ts) <= {gap}
                            THEN 0 ELSE 1 END AS new
                FROM requests r LEFT JOIN user_agents u ON r.ua_id = u.id
                WHERE {scope.where("r", pages=True)}
            )
        )
        GROUP BY visitor_id, n
    """


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
        return today - timedelta(days=int(m.group(1)) - 1)
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
