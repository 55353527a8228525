"""Everything that stands between a raw log line and the store: it runs before storage.

- `DayKeys`: one random secret key per day, in a 0600 file beside the database (never in
  it), destroyed once the day is closed, so old visitor ids cannot be brute-forced back
  to addresses.
- `visitor_id`: HMAC-SHA256 (cut to 32 bits) of (client address, user agent, host).
- `client_address`: the address to hash, from $remote_addr and X-Forwarded-For.
- query-string and referrer scrubbing (SQL, with a Python twin for tests), and IP masking
  for any text that leaves the process (rejects file, messages).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import stat
import threading
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from .errors import KeyFileError

KEY_BYTES = 32
#: Query keys kept by default besides every `utm_*`: campaign markers, not identities.
DEFAULT_QUERY_ALLOW = ("ref",)
DEFAULT_GRACE = timedelta(hours=2)


# --- day keys -----------------------------------------------------------------------


class DayKeys:
    """The secret per-day keys, kept in a 0600 JSON file next to the database.

    Example:
        >>> import tempfile, pathlib
        >>> keys = DayKeys(pathlib.Path(tempfile.mkdtemp()) / "db.keys")
        >>> len(keys.key("2026-11-01"))
        32
        >>> _ = keys.destroy(["2026-11-01"]); keys.days()
        []
    """

    def __init__(self, path: Path | None) -> None:
        self.path = Path(path) if path is not None else None  # None: in memory only
        self._keys: dict[str, bytes] = {}
        self._lock = threading.Lock()  # parsing threads ask for keys concurrently
        self._load()

    def _load(self) -> None:
        if self.path is None:
            return
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return
        if stat.S_IMODE(st.st_mode) & 0o077:
            # Someone widened the permissions: narrow them before reading a byte.
            os.chmod(self.path, 0o600)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self._keys = {d: bytes.fromhex(k) for d, k in data["keys"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise KeyFileError(
                f"the day-key file {self.path} is unreadable or corrupt ({e}); "
                "move it away to start new keys (visitor ids of its open days will not link)"
            ) from e

    def days(self) -> list[str]:
        """Days (YYYY-MM-DD) that still have a key."""
        return sorted(self._keys)

    def has(self, day: str) -> bool:
        return day in self._keys

    def key(self, day: str) -> bytes:
        """The key of `day`, created (and saved, before any row uses it) when missing."""
        with self._lock:
            k = self._keys.get(day)
            if k is None:
                k = secrets.token_bytes(KEY_BYTES)
                self._keys[day] = k
                self._save()
            return k

    def destroy(self, days: Iterable[str]) -> list[str]:
        """Forget the keys of `days`; return the days whose key existed."""
        with self._lock:
            gone = [d for d in days if d in self._keys]
            if gone:
                for d in gone:
                    del self._keys[d]
                self._save(scrub_old=True)
            return gone

    def _save(self, scrub_old: bool = False) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(
            {"format": 1, "keys": {d: k.hex() for d, k in sorted(self._keys.items())}}
        ).encode()
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if scrub_old:
            # Overwrite the old file's bytes before it is unlinked, so a destroyed key
            # does not linger in free blocks as plainly as it could.
            with contextlib.suppress(FileNotFoundError):
                size = self.path.stat().st_size
                with open(self.path, "r+b") as f:
                    f.write(b"\0" * size)
                    f.flush()
                    os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


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
    names = ", ".join("'" + a.lower().replace("'", "''") + "'" for a in allow) or "NULL"
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


# --- masking for text that leaves the process ---------------------------------------

_V4_RE = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d])")
_V6_RE = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%\w+)?(?![\w:])")


def _mask_v6(m: re.Match[str]) -> str:
    text = m.group(0)
    if "::" not in text and text.count(":") != 7:
        return text  # a time like 10:05:03, not an address
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text
    return "x:x:x:x"


def mask_ips(text: str) -> str:
    """Replace every IPv4 and IPv6 address in text, for rejects files and messages.

    Example:
        >>> mask_ips("203.0.113.9 - - [10:05:03] from 2001:db8::1")
        'x.x.x.x - - [10:05:03] from x:x:x:x'
    """
    text = _V4_RE.sub("x.x.x.x", text)
    return _V6_RE.sub(_mask_v6, text)
