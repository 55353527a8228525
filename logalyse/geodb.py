"""Countries out of the box: `logalyse geoip update` downloads DB-IP's free "IP to Country
Lite" (or City Lite) database, checks it, and installs it where imports find it when no
`--geoip` is given.

DB-IP Lite needs no account and is licensed CC BY 4.0: reports that show its countries
credit it (`CREDIT`). It is published monthly; early in a month the new file may not be
there yet, so the previous month's is taken instead.
"""

from __future__ import annotations

import os
import tempfile
import zlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from .enrich import GeoIP
from .enrich.geo import CREDIT, credit_for
from .errors import ExitCode, GeoError, LogalyseError

#: Where the databases come from; {edition} is country or city, {yyyy} and {mm} the month.
DEFAULT_URL = "https://download.db-ip.com/free/dbip-{edition}-lite-{yyyy}-{mm}.mmdb.gz"
EDITIONS = ("country", "city")
#: A download larger than this is refused (DB-IP's City Lite is ~130 MB unpacked).
MAX_BYTES = 512 << 20
#: Addresses whose country every real database knows; one must answer as expected.
KNOWN = {"81.2.69.142": "GB", "8.8.8.8": "US", "1.1.1.1": "AU", "2001:218::1": "JP"}
TIMEOUT = 60.0


class DownloadError(LogalyseError):
    """No network, the server refused, or what came is not a database."""

    exit_code = ExitCode.DOWNLOAD


@dataclass
class Installed:
    path: Path
    url: str
    month: str  # YYYY-MM of the file installed
    kind: str  # the database's own type, e.g. DBIP-Country-Lite
    size: int


def default_dir() -> Path:
    """`$XDG_DATA_HOME/logalyse` (beside the default database)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "logalyse"


def installed_path(edition: str = "country", directory: Path | None = None) -> Path:
    return (directory or default_dir()) / f"dbip-{edition}-lite.mmdb"


def installed(directory: Path | None = None) -> Path | None:
    """The database `geoip update` installed (country first), if any."""
    for edition in EDITIONS:
        path = installed_path(edition, directory)
        if path.exists():
            return path
    return None


def _months(today: date) -> list[tuple[str, str]]:
    """This month, then the previous one."""
    prev = date(today.year - 1, 12, 1) if today.month == 1 else date(today.year, today.month - 1, 1)
    return [(f"{d.year:04d}", f"{d.month:02d}") for d in (today, prev)]


def _download(url: str, out: Path, timeout: float) -> None:
    """`url` into `out`, unpacked when gzipped; HTTPError 404 is raised as is."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "logalyse geoip update"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(out, "wb") as f:
        unzip: zlib._Decompress | None = None
        first = True
        total = 0
        while chunk := response.read(1 << 20):
            if first:
                first = False
                if chunk[:2] == b"\x1f\x8b":
                    unzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
            if unzip is not None:
                try:
                    chunk = unzip.decompress(chunk, MAX_BYTES + 1 - total)
                except zlib.error as e:
                    raise DownloadError(f"{url}: not a valid gzip file ({e})") from e
            total += len(chunk)
            if total > MAX_BYTES:
                raise DownloadError(f"{url}: larger than {MAX_BYTES >> 20} MiB: refused")
            f.write(chunk)
        if unzip is not None and not unzip.eof:
            raise DownloadError(f"{url}: the download ended early (a cut gzip file)")
        f.flush()
        os.fsync(f.fileno())


def check(path: Path, url: str) -> str:
    """The database's type, once it opens, is a country or city one, and knows a country
    that every real database knows."""
    try:
        geo = GeoIP(path)
    except GeoError as e:
        raise DownloadError(f"{url}: not a usable GeoIP database: {e}") from e
    try:
        answers = {ip: geo.lookup(ip)[0] for ip in KNOWN}
    finally:
        geo.close()
    if not any(answers[ip] == cc for ip, cc in KNOWN.items()):
        raise DownloadError(f"{url}: the database knows none of {', '.join(KNOWN)}")
    return geo.kind


def update(
    edition: str = "country",
    directory: Path | None = None,
    *,
    url: str = DEFAULT_URL,
    today: date | None = None,
    timeout: float = TIMEOUT,
) -> Installed:
    """Download this month's database (else last month's), check it and install it in
    `directory` atomically: the one installed before stays until the new one is checked.

    Raises:
        DownloadError: no network, the server refused both months, a bad download.
        OSError: the directory cannot be written (a full disk, no permission).

    Example:
        >>> update("region")
        Traceback (most recent call last):
        ...
        logalyse.errors.ConfigError: unknown edition 'region': country or city
    """
    import urllib.error
    from urllib.parse import urlsplit

    from .errors import ConfigError

    if edition not in EDITIONS:
        raise ConfigError(f"unknown edition {edition!r}: country or city")
    directory = directory or default_dir()
    directory.mkdir(parents=True, exist_ok=True)
    target = installed_path(edition, directory)
    tried = []
    for yyyy, mm in _months(today or date.today()):
        try:
            full = url.format(edition=edition, yyyy=yyyy, mm=mm)
        except (KeyError, IndexError, ValueError) as e:
            raise ConfigError(
                f"bad --url {url!r}: placeholders are {{edition}}, {{yyyy}}, {{mm}}"
            ) from e
        if urlsplit(full).scheme not in ("http", "https"):
            raise ConfigError(f"bad --url {url!r}: an http or https URL")
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
        os.close(fd)
        tmp = Path(name)
        try:
            try:
                _download(full, tmp, timeout)
            except urllib.error.HTTPError as e:
                tried.append(f"{full}: HTTP {e.code}")
                if e.code == 404:
                    continue  # not published yet: the month before
                raise DownloadError(f"{full}: the server answered HTTP {e.code}") from e
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                reason = getattr(e, "reason", e)
                raise DownloadError(f"cannot download {full}: {reason} (no network?)") from e
            kind = check(tmp, full)
            os.chmod(tmp, 0o644)
            size = tmp.stat().st_size
            os.replace(tmp, target)
            return Installed(target, full, f"{yyyy}-{mm}", kind, size)
        finally:
            tmp.unlink(missing_ok=True)
    raise DownloadError("no database to download: " + "; ".join(tried))


__all__ = [
    "CREDIT",
    "DEFAULT_URL",
    "EDITIONS",
    "DownloadError",
    "Installed",
    "credit_for",
    "default_dir",
    "installed",
    "update",
]
