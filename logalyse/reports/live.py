"""The live view (`logalyse top`): the last minutes of traffic, as stored by `tail`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ..model import Column, Report
from ..store import Store

#: Per-minute bars cover this many of the window's latest minutes at most.
_MINUTES_SHOWN = 15


#: A store whose newest request is older than this is not called live.
STALE_AFTER = timedelta(minutes=15)


def _ago(age: timedelta) -> str:
    """`age` in words: 26 days, 3 hours, 40 minutes.

    Example:
        >>> _ago(timedelta(days=26, hours=5)), _ago(timedelta(hours=3)), _ago(timedelta(minutes=40))
        ('26 days', '3 hours', '40 minutes')
    """
    if age >= timedelta(days=2):
        return f"{age.days} days"
    if age >= timedelta(hours=2):
        return f"{int(age.total_seconds() // 3600)} hours"
    return f"{int(age.total_seconds() // 60)} minutes"


def live(
    store: Store, minutes: int = 5, limit: int = 8, now: datetime | None = None
) -> list[Report]:
    """Requests/s, visitors and top pages and referrers over the last `minutes` up to
    `now` (default: the newest stored request, so that a replayed log shows too).

    Example:
        >>> import tempfile, pathlib
        >>> with Store(pathlib.Path(tempfile.mkdtemp()) / "t.duckdb") as s:
        ...     live(s)[0].record["requests"]
        0
    """
    clock = datetime.now(timezone.utc).replace(tzinfo=None)
    with store.attached() as db:
        if now is None:
            now = db.execute("SELECT max(ts) FROM requests").fetchall()[0][0]
        if now is None:
            now = datetime(1970, 1, 1)
        since = now - timedelta(minutes=minutes)
        window = [since, now]
        (requests, pageviews, visitors, bots) = db.execute(
            "SELECT count(*), count(*) FILTER (is_pageview), "
            "count(DISTINCT visitor_id) FILTER (is_pageview), "
            "count(*) FILTER (coalesce(is_bot, FALSE)) "
            "FROM requests WHERE ts > ? AND ts <= ?",
            window,
        ).fetchall()[0]
        per_minute = db.execute(
            "SELECT date_trunc('minute', ts) AS m, count(*), "
            "count(DISTINCT visitor_id) FILTER (is_pageview) "
            "FROM requests WHERE ts > ? AND ts <= ? GROUP BY 1 ORDER BY 1 DESC LIMIT ?",
            [*window, _MINUTES_SHOWN],
        ).fetchall()
        pages = db.execute(
            "SELECT path, count(*) AS n, count(DISTINCT visitor_id) FROM requests "
            "WHERE ts > ? AND ts <= ? AND is_pageview GROUP BY 1 ORDER BY n DESC, path LIMIT ?",
            [*window, limit],
        ).fetchall()
        refs = db.execute(
            "SELECT referrer_host, count(*) AS n FROM requests WHERE ts > ? AND ts <= ? "
            "AND is_pageview AND referrer_host IS NOT NULL "
            "AND source_kind NOT IN ('internal', 'spam') "
            "GROUP BY 1 ORDER BY n DESC, referrer_host LIMIT ?",
            [*window, limit],
        ).fetchall()
    seconds = minutes * 60
    label = f"last {minutes} min to {now:%Y-%m-%d %H:%M:%S} UTC"
    items: list[tuple[str, str, str, object]] = [
        ("requests", "Requests", "int", requests),
        ("requests_per_second", "Requests/s", "float", requests / seconds),
        ("pageviews", "Pageviews", "int", pageviews),
        ("visitors", "Visitors (humans)", "int", visitors),
        ("bot_requests", "Bot requests", "int", bots),
    ]
    empty = f"Nothing in the {label}."
    age = clock - now
    # Live only when the newest request is recent: a store not fed since says how old it is.
    title = f"Live: {label}" if age <= STALE_AFTER else f"Not live: {label}, {_ago(age)} ago"
    return [
        Report.of_record("now", title, items),
        Report(
            "minutes",
            "Per minute",
            [
                Column("minute", "minute"),
                Column("requests", "requests", "int"),
                Column("visitors", "visitors", "int"),
                Column("bar", "", "bar", of="requests"),
            ],
            [(f"{m:%H:%M}", n, v, None) for m, n, v in reversed(per_minute)],
            empty=empty,
        ),
        Report(
            "pages",
            "Top pages",
            [
                Column("path", "page"),
                Column("pageviews", "pageviews", "int"),
                Column("visitors", "visitors", "int"),
            ],
            pages,
            empty=empty,
        ),
        Report(
            "referrers",
            "Top referrers",
            [Column("referrer_host", "referrer"), Column("pageviews", "pageviews", "int")],
            refs,
            empty=f"No referred pageview in the {label}.",
        ),
    ]
