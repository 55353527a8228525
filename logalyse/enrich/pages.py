"""Per-request rules as SQL: which paths are assets (not pages), and a referrer's host.

A request is a pageview when a human sent it, it is a GET answered 2xx or 304, and
its path is a page, not an asset. The import stores both: reports say which they count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..quote import sql_list, sql_literal
from .referrers import strip_www_sql

DEFAULT_ASSET_EXTENSIONS = (
    "css", "js", "mjs", "map", "png", "jpg", "jpeg", "gif", "svg", "ico", "webp", "avif",
    "bmp", "tif", "tiff", "woff", "woff2", "ttf", "otf", "eot", "mp4", "webm", "mp3", "ogg",
    "wav", "pdf", "zip", "gz", "tgz", "xz", "bz2", "7z", "rar", "json", "txt", "wasm",
)  # fmt: skip
DEFAULT_NON_PAGES = (
    "/robots.txt",
    "/favicon.ico",
    "/sitemap.xml",
    "/ads.txt",
    "/apple-touch-icon.png",
    "/.well-known/security.txt",
)


def is_glob(value: str) -> bool:
    """A path pattern (`/image/*`, `/api/v?/*`) rather than an exact path."""
    return any(c in value for c in "*?[")


def is_asset_sql(
    path: str,
    extensions: Sequence[str] = DEFAULT_ASSET_EXTENSIONS,
    non_pages: Sequence[str] = DEFAULT_NON_PAGES,
) -> str:
    """SQL: TRUE when `path` is an asset or a file only robots ask for.

    `non_pages` are exact paths or globs (`/image/*`: `*` spans slashes too); an
    "extension" that starts with a slash is a path glob as well.

    Example:
        >>> import duckdb
        >>> sql = is_asset_sql("p", ["css"], ["/robots.txt", "/image/*"])
        >>> paths = ["/a.CSS", "/image/12", "/images", "/robots.txt", "/blog/"]
        >>> [duckdb.execute(f"SELECT {sql} FROM (SELECT ? AS p)", [p]).fetchall()[0][0]
        ...  for p in paths]
        [True, True, False, True, False]
    """
    globs = [v for v in non_pages if is_glob(v)] + [e for e in extensions if e.startswith("/")]
    exact = [v for v in non_pages if not is_glob(v)]
    exts = [e for e in extensions if not e.startswith("/")]
    # One RE2 match (anchored at the end) is three times faster than splitting the path.
    alternatives = "|".join(re.escape(e.lower().lstrip(".")) for e in exts)
    pattern = sql_literal(f"\\.(?i:{alternatives})$")
    ext_match = f"regexp_matches({path}, {pattern})" if alternatives else "FALSE"
    glob_match = " OR ".join(f"{path} GLOB {sql_literal(g)}" for g in globs)
    return (
        f"CASE WHEN {path} IS NULL THEN TRUE "
        f"WHEN {path} IN ({sql_list(exact)}) THEN TRUE "
        + (f"WHEN {glob_match} THEN TRUE " if globs else "")
        + f"ELSE {ext_match} END"
    )


#: A host name with a dot, its last label (a TLD) two characters or more and starting with
#: a letter: no IP literal, no masked address (x.x.x.x), no `localhost`.
HOST_NAME_RE = r"^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$"


def referrer_host_steps(referrer: str, name: str = "referrer_host") -> list[tuple[str, str]]:
    """SQL, as (alias, expression) steps each using the one before: a referrer's host,
    lowercase, without port, credentials or `www.`.

    Steps, not one expression: each part would otherwise be spelt (and computed) again
    inside every CASE that uses it, nine times over.

    Example:
        >>> import duckdb
        >>> (a, e1), (b, e2), (c, e3) = referrer_host_steps("r")
        >>> duckdb.sql(f"SELECT {e3} FROM (SELECT {e2} AS {b} FROM (SELECT {e1} AS {a} "
        ...            "FROM (VALUES ('https://WWW.Google.com:443/x'), ('http://203.0.113.9/'), "
        ...            "('http://[2001:db8::1]/'), ('t(''${${env'), ('-f'), ('http://localhost/')) "
        ...            "t(r)))").fetchall()
        [('google.com',), (None,), (None,), (None,), (None,), (None,)]
    """
    after = (
        f"CASE WHEN contains({referrer}, '://') THEN split_part({referrer}, '://', 2) "
        f"ELSE {referrer} END"
    )
    authority = f"lower(split_part(split_part(split_part({after}, '/', 1), '?', 1), '@', -1))"
    a, b = f"{name}_0", f"{name}_1"
    no_port = (
        f"CASE WHEN contains({a}, ':') AND NOT starts_with({a}, '[') "
        f"THEN split_part({a}, ':', 1) ELSE {a} END"
    )
    # A host name, or nothing: not an address, not `localhost`, not log junk.
    host = f"nullif(regexp_extract({strip_www_sql(b)}, {sql_literal(HOST_NAME_RE)}), '')"
    return [(a, authority), (b, no_port), (name, host)]


def page_request_sql(method: str, status: str, is_asset: str) -> str:
    """SQL: a GET, answered 2xx or 304, of a page (not an asset), whoever sent it: a
    pageview but for the human condition (what a bot's pageview is, with --include-bots)."""
    return (
        f"({method} = 'GET' AND NOT ({is_asset}) "
        f"AND ({status} BETWEEN 200 AND 299 OR {status} = 304))"
    )


def pageview_sql(is_bot: str, method: str, status: str, is_asset: str) -> str:
    """SQL: a pageview is a human's GET, answered 2xx or 304, of a page (not an asset)."""
    return f"(NOT {is_bot} AND {page_request_sql(method, status, is_asset)})"


def source_sql(
    kind: str, name: str, utm_source: str, referrer_host: str, host: str, sites: Sequence[str]
) -> tuple[str, str]:
    """SQL (source_kind, source_name) of a request.

    `kind`/`name` are the referrer host's classification (search, social, ai, website,
    spam); spam stays spam, a campaign parameter beats the referrer, no referrer is
    direct, and a referrer on the site's own host (`host`, or one of `sites`) is internal.
    """
    own = f"{referrer_host} = {strip_www_sql(host)}"
    if sites:
        own += f" OR {referrer_host} IN ({sql_list(sorted(sites))})"
    when = (
        f"WHEN {kind} = 'spam' THEN {{spam}} WHEN {utm_source} IS NOT NULL THEN {{campaign}} "
        f"WHEN {referrer_host} IS NULL THEN {{direct}} WHEN {own} THEN {{internal}} "
        f"ELSE {{other}} END"
    )
    kind_sql = "CASE " + when.format(
        spam="'spam'",
        campaign="'campaign'",
        direct="'direct'",
        internal="'internal'",
        other=f"coalesce({kind}, 'website')",
    )
    name_sql = "CASE " + when.format(
        spam=referrer_host,
        campaign=utm_source,
        direct="NULL",
        internal=referrer_host,
        other=f"coalesce({name}, {referrer_host})",
    )
    return kind_sql, name_sql
