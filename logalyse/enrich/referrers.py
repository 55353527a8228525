"""Where visitors came from: referrer hosts sorted into search, social, AI assistants,
other websites and spam, with Matomo's public lists (CC0 and public domain, shipped in
`data/`). Runs once per distinct referrer host; campaign parameters and self-referrals
are decided in SQL, per request, by the import.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

#: Source kinds, as stored in requests.source_kind.
KINDS = ("direct", "internal", "campaign", "search", "social", "ai", "website", "spam")


@lru_cache(maxsize=1)
def _data() -> dict[str, object]:
    text = resources.files("logalyse.enrich").joinpath("data/referrers.json").read_text("utf-8")
    data: dict[str, object] = json.loads(text)
    return data


@lru_cache(maxsize=1)
def _tables() -> tuple[
    set[str], list[tuple[str, dict[str, str], list[tuple[re.Pattern[str], str]]]]
]:
    data = _data()
    spam = {str(d) for d in data["spam"]}  # type: ignore[attr-defined]
    ordered = []
    # AI assistants and social networks first: gemini.google.com is not Google search.
    for kind in ("ai", "social", "search"):
        entry = data[kind]
        assert isinstance(entry, dict)
        patterns = [(re.compile(rx), name) for rx, name in entry["patterns"]]
        ordered.append((kind, entry["exact"], patterns))
    return spam, ordered


def strip_www(host: str) -> str:
    """A host without its leading `www.` (already lowercase): `www.example.com` and
    `example.com` are one site. `strip_www_sql` is its SQL twin.

    Example:
        >>> strip_www("www.example.com")
        'example.com'
    """
    return host.removeprefix("www.")


def strip_www_sql(host: str) -> str:
    """SQL: `strip_www` of the (already lowercase) text expression `host`.

    Example:
        >>> import duckdb
        >>> duckdb.sql(f"SELECT {strip_www_sql('h')} FROM (SELECT 'www.a.org' AS h)").fetchall()
        [('a.org',)]
    """
    return f"CASE WHEN starts_with({host}, 'www.') THEN substr({host}, 5) ELSE {host} END"


def normalise_host(host: str) -> str:
    """`https://WWW.Example.com:443/` -> `example.com`: how hosts are compared with referrers.

    Example:
        >>> normalise_host("WWW.Example.com:443")
        'example.com'
    """
    host = host.strip().lower().split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    return strip_www(host)


def _parents(host: str) -> list[str]:
    """`a.b.example.com` -> [a.b.example.com, b.example.com, example.com]."""
    parts = host.split(".")
    return [".".join(parts[i:]) for i in range(len(parts) - 1)] or [host]


@lru_cache(maxsize=65536)
def classify_host(host: str) -> tuple[str, str]:
    """(kind, name) for a referrer host, already lowercase and without `www.`.

    Example:
        >>> classify_host("google.co.uk")
        ('search', 'Google')
        >>> classify_host("m.facebook.com")
        ('social', 'Facebook')
        >>> classify_host("chatgpt.com")
        ('ai', 'ChatGPT')
        >>> classify_host("blog.example.org")
        ('website', 'blog.example.org')
    """
    spam, ordered = _tables()
    candidates = _parents(host)
    if any(c in spam for c in candidates):
        return "spam", host
    for kind, exact, patterns in ordered:
        for c in candidates:
            name = exact.get(c)
            if name is not None:
                return kind, name
        for rx, name in patterns:
            if rx.match(host):
                return kind, name
    return "website", host
