"""Everything that stands between a raw log line and the store: it runs before storage.

- `DayKeys` (from `keys`): one random secret key per day, beside the database (never in
  it), erased once the day is closed, so old visitor ids cannot be brute-forced back to
  addresses; `closable_days` says which days are closed.
- `visitor_id`: HMAC-SHA256 (cut to 32 bits) of (client address, user agent, host).
- `client_address`: the address to hash, from $remote_addr and X-Forwarded-For.
- query-string and referrer scrubbing (SQL, with a Python twin for tests), and IP masking
  for any text that leaves the process (rejects file, messages).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError
from .keys import KEY_BYTES as KEY_BYTES
from .keys import DayKeys as DayKeys
from .quote import sql_list

#: Query keys kept by default besides every `utm_*`: campaign markers, not identities.
DEFAULT_QUERY_ALLOW = ("ref",)
DEFAULT_GRACE = timedelta(hours=2)


# --- days ---------------------------------------------------------------------------


def check_time_zone(tz: str) -> ZoneInfo:
    """The time zone named `tz`, or a ConfigError that says what to write instead.

    Example:
        >>> check_time_zone("Europe/Paris").key
        'Europe/Paris'
    """
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ConfigError(f"unknown time zone {tz!r} (try UTC or Europe/Paris)") from e


def day_end(day: str, tz: str = "UTC") -> datetime:
    """The instant (naive UTC) at which `day` ends in time zone `tz`."""
    d = date.fromisoformat(day) + timedelta(days=1)
    local = datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(tz))
    return local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def closable_days(
    days: Iterable[str], newest: datetime, *, tz: str = "UTC", grace: timedelta = DEFAULT_GRACE
) -> list[str]:
    """Days whose end, plus the grace period, lies before `newest` (naive UTC).

    Example:
        >>> closable_days(["2026-11-01", "2026-11-02"], datetime(2026, 11, 2, 3, 0))
        ['2026-11-01']
    """
    return sorted(d for d in days if day_end(d, tz) + grace < newest)


# --- visitor ids --------------------------------------------------------------------


def visitor_id(key: bytes, address: str, user_agent: str, host: str) -> int:
    """HMAC-SHA256 of (address, user agent, host) under a day key, cut to a signed 32-bit int.

    32 bits keep the store small (a visitor id is most of a request's stored bytes) and
    still tell visitors apart: two of a day's N visitors share an id with odds of about
    N^2 / 2^33, one pair a day for a site with 100,000 visitors a day.

    The import computes the same function in SQL (`visitor_id_sql`), per distinct
    combination; this is the reference the tests hold it to.

    Example:
        >>> a = visitor_id(b"k" * 32, "203.0.113.9", "curl/8", "example.com")
        >>> a == visitor_id(b"k" * 32, "203.0.113.9", "curl/8", "example.com")
        True
        >>> a == visitor_id(b"K" * 32, "203.0.113.9", "curl/8", "example.com")
        False
    """
    msg = f"{address}\0{user_agent}\0{host}".encode("utf-8", "surrogatepass")
    digest = hmac.new(key, msg, hashlib.sha256).digest()[:4]
    return int.from_bytes(digest, "big", signed=True)


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """The inner and outer padded keys of HMAC-SHA256, for computing it in SQL."""
    k = key.ljust(64, b"\0") if len(key) <= 64 else hashlib.sha256(key).digest().ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in k), bytes(b ^ 0x5C for b in k)


def visitor_id_sql(ipad: str, opad: str, address: str, user_agent: str, host: str) -> str:
    """SQL twin of `visitor_id`: BLOB pad columns and VARCHAR fields -> INTEGER."""
    msg = f"encode({address} || chr(0) || {user_agent} || chr(0) || {host})"
    inner = f"unhex(sha256({ipad} || {msg}))"
    u = f"('0x' || left(sha256({opad} || {inner}), 8))::BIGINT"
    # Reinterpret the unsigned 32 bits as two's complement, as Python's signed=True does.
    return f"({u} - CASE WHEN {u} >= 2147483648 THEN 4294967296 ELSE 0 END)::INTEGER"


_SPLIT_RE = re.compile(r"[\s,\"]+")


def _addresses(field: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    out: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for part in _SPLIT_RE.split(field):
        if not part:
            continue
        if part.startswith("[") and "]" in part:  # [v6]:port
            part = part[1 : part.index("]")]
        elif part.count(":") == 1 and "." in part:  # v4:port
            part = part.split(":", 1)[0]
        try:
            ip = ipaddress.ip_address(part)
        except ValueError:
            continue
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            out.append(ip.ipv4_mapped)
        else:
            out.append(ip)
    return out


#: Networks a proxy or a container bridge sits in: an address there is not the visitor.
_INTERNAL = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if ip.is_loopback or ip.is_link_local or ip.is_unspecified:
        return False
    return not any(ip.version == n.version and ip in n for n in _INTERNAL)


def client_address(remote: str, forwarded: str = "") -> str:
    """The client address to identify a visitor by, normalised for hashing.

    `remote` is $remote_addr as logged (sometimes a list, as some setups log it);
    `forwarded` is X-Forwarded-For / X-Real-IP. When the direct peer is a private or
    loopback address (a reverse proxy, docker's bridge), the first public address of
    X-Forwarded-For is the visitor. IPv4-mapped IPv6 folds to IPv4; IPv6 is compressed.
    A field holding no address (`unix:`, a host name) is returned as logged.

    Example:
        >>> client_address("::ffff:203.0.113.7")
        '203.0.113.7'
        >>> client_address("172.17.0.1", "198.51.100.4, 10.0.0.2")
        '198.51.100.4'
    """
    if not forwarded:
        if remote.count(".") == 3 and remote.replace(".", "").isdigit():
            return remote  # the common case: one plain IPv4 address
        if ":" in remote and "." not in remote and "," not in remote and " " not in remote:
            # nginx logs IPv6 compressed already; only its case may vary.
            return remote.lower() if remote[:1] != "[" else remote.strip("[]").lower()
    ips = _addresses(remote)
    chosen = next((ip for ip in ips if _is_public(ip)), ips[0] if ips else None)
    if forwarded and (chosen is None or not _is_public(chosen)):
        fwd = _addresses(forwarded)
        public = next((ip for ip in fwd if _is_public(ip)), None)
        if public is not None:
            chosen = public
        elif chosen is None and fwd:
            chosen = fwd[0]
    if chosen is None:
        return remote.strip().lower()
    return str(chosen)


# --- query strings and referrers ----------------------------------------------------


def scrub_query(query: str | None, allow: Sequence[str] = DEFAULT_QUERY_ALLOW) -> str | None:
    """Keep only `utm_*` and allow-listed keys of a query string; None when nothing is left.

    Example:
        >>> scrub_query("id=42&utm_source=hn&email=a%40b.c&ref=x")
        'utm_source=hn&ref=x'
    """
    if not query:
        return None
    allowed = {a.lower() for a in allow}
    kept = [
        p
        for p in query.split("&")
        if p.lower().startswith("utm_") or p.split("=", 1)[0].lower() in allowed
    ]
    return "&".join(kept) or None


def scrub_query_sql(expr: str, allow: Sequence[str] = DEFAULT_QUERY_ALLOW) -> str:
    """SQL twin of `scrub_query` for a VARCHAR expression."""
    names = sql_list(a.lower() for a in allow)
    kept = (
        f"list_filter(string_split({expr}, '&'), lambda x: starts_with(lower(x), 'utm_') "
        f"OR lower(split_part(x, '=', 1)) IN ({names}))"
    )
    return (
        f"CASE WHEN coalesce({expr}, '') = '' THEN NULL "
        f"ELSE nullif(array_to_string({kept}, '&'), '') END"
    )


def strip_referrer(referrer: str | None) -> str | None:
    """Drop a referrer's query string and fragment.

    Example:
        >>> strip_referrer("https://www.google.com/search?q=me#top")
        'https://www.google.com/search'
    """
    if not referrer:
        return None
    return referrer.split("?", 1)[0].split("#", 1)[0] or None


def strip_referrer_sql(expr: str) -> str:
    """SQL twin of `strip_referrer`."""
    return f"nullif(split_part(split_part({expr}, '?', 1), '#', 1), '')"


# --- masking: no address leaves the process, none is stored ---------------------------

#: Runs of the characters addresses are written with, holding two colons: IPv6 candidates.
_V6_RUN = re.compile(r"[0-9A-Fa-f.:]*:[0-9A-Fa-f.]*:[0-9A-Fa-f.:]*")
#: Where a dotted quad may start (overlapping: a run of digits may hide one further on).
_V4_AT = re.compile(r"(?=(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3}))")
_QUAD = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_QUAD_END = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}$")
_HEX = frozenset("0123456789abcdefABCDEF")
#: Longer runs of hex digits, colons and dots are masked whole: no address is that long.
_LONGEST_RUN = 100
V4_MASK = "x.x.x.x"
V6_MASK = "x:x:x:x"


def _is_v6(text: str) -> bool:
    if sum(c in _HEX for c in text) < 2:  # "::", "::1", "d::" in "std::map": not addresses
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _first_parts(part: str) -> list[str]:
    """Where an address may start inside the first group of a run: its whole, its last hex
    digits (after letters such as `cafe`), or just after it; never inside a dotted quad."""
    if _QUAD_END.search(part):
        return [""]  # 1.2.3.4:2001:db8::1 is two addresses
    part = part.rsplit(".", 1)[-1]
    return [part[-k:] for k in range(min(4, len(part)), 0, -1)] + [""]


def _last_parts(part: str) -> list[str]:
    """Where an address may end inside the last group: a dotted quad (its last number cut
    short if it must be), hex digits, or just before it."""
    quad = _QUAD.match(part)
    if quad:
        q = quad.group(0)
        return [q[:k] for k in range(len(q), q.rindex(".") + 1, -1)] + [""]
    hexes = [part[:k] for k in range(min(4, len(part)), 0, -1)]
    return [h for h in hexes if all(c in _HEX for c in h)] + [""]


def _mask_v6_run(run: str) -> str:
    """Mask the IPv6 addresses in a run of hex digits, colons and dots: the longest first,
    ending on a whole group if it can (so that `2001:db8::1:54321` keeps its port)."""
    if len(run) > _LONGEST_RUN:
        return V6_MASK
    parts = run.split(":")
    starts = [0]
    for p in parts:
        starts.append(starts[-1] + len(p) + 1)
    n = len(parts)
    for trim_last in (False, True):
        for size in range(min(n, 10), 2, -1):
            for a in range(n - size + 1):
                b = a + size - 1
                lasts = _last_parts(parts[b]) if trim_last else [parts[b]]
                for first in _first_parts(parts[a]):
                    for last in lasts:
                        if not _is_v6(":".join([first, *parts[a + 1 : b], last])):
                            continue
                        begin = starts[a] + len(parts[a]) - len(first)
                        end = starts[b] + len(last)
                        return _mask_v6_run(run[:begin]) + V6_MASK + _mask_v6_run(run[end:])
    return run


def _mask_v4(text: str) -> str:
    out, pos = [], 0
    for m in _V4_AT.finditer(text):
        if m.start() < pos or any(int(o) > 255 for o in m.groups()[:3]):
            continue
        last = m.group(4)
        while int(last) > 255:  # 1.2.3.456 holds 1.2.3.45
            last = last[:-1]
        out += [text[pos : m.start()], V4_MASK]
        pos = m.start() + len(".".join(m.groups()[:3])) + 1 + len(last)
    return "".join(out) + text[pos:]


def mask_ips(text: str) -> str:
    """Replace every IPv4 and IPv6 address in text: before storing a path, query, referrer,
    host or user agent, and in rejects files and messages. Addresses next to letters,
    with a port, in brackets or with an IPv4 tail are found; times are not addresses.

    Example:
        >>> mask_ips("203.0.113.9 - - [10:05:03] from 2001:db8::1:54321 (client_::11ms)")
        'x.x.x.x - - [10:05:03] from x:x:x:x:54321 (client_x:x:x:xms)'
    """
    if ":" not in text and "." not in text:
        return text
    if text.count(":") >= 2:
        text = _V6_RUN.sub(lambda m: _mask_v6_run(m.group(0)), text)
    return _mask_v4(text) if "." in text else text
