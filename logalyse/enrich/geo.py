"""Countries (and, when asked, cities) from a MaxMind-format `.mmdb`, looked up in memory.

The lookup happens before the address is hashed and dropped; only the ISO country code
(and the city's English name, if enabled) is kept, never coordinates. Uses the
`maxminddb` reader directly (the C extension, memory-mapped): geoip2's model objects
cost three times as much per lookup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import GeoError

#: Distinct addresses remembered between batches: more is a little faster and heavier.
_CACHE_MAX = 50_000
#: Addresses a database must answer at open: a broken file fails here, not mid-import.
#: What a report says under countries from a DB-IP database (its licence, CC BY 4.0, asks).
CREDIT = "IP geolocation by DB-IP (db-ip.com), CC BY 4.0"


def credit_for(kind: object) -> str | None:
    """The credit a database's licence asks for, by its type (`GeoIP.kind`, which the
    import keeps in the store's meta as `geoip_kind`).

    Example:
        >>> credit_for("DBIP-Country-Lite"), credit_for("GeoLite2-Country")
        ('IP geolocation by DB-IP (db-ip.com), CC BY 4.0', None)
    """
    return CREDIT if isinstance(kind, str) and "dbip" in kind.lower() else None


_PROBES = ("81.2.69.142", "1.1.1.1", "8.8.8.8", "2001:218::1", "2a02:cf40::1")


class GeoIP:
    """A country (and city) lookup over one `.mmdb` file.

    Example:
        >>> geo = GeoIP("tests/data/maxmind/GeoLite2-City-Test.mmdb")  # doctest: +SKIP
        >>> geo.lookup("81.2.69.142")  # doctest: +SKIP
        ('GB', None)
    """

    def __init__(self, path: str | Path, *, city: bool = False) -> None:
        import maxminddb
        from maxminddb.const import MODE_AUTO

        self.path = Path(path)
        self.city = city
        if not self.path.exists():
            raise GeoError(
                f"no GeoIP database at {self.path}: download GeoLite2-Country or DB-IP "
                "IP-to-Country Lite (.mmdb) and point --geoip at it"
            )
        try:
            self._reader: Any = maxminddb.open_database(str(self.path), MODE_AUTO)
            meta = self._reader.metadata()
            kind = str(meta.database_type)
            for probe in _PROBES:
                if meta.ip_version == 6 or ":" not in probe:
                    self._reader.get(probe)
        except (maxminddb.InvalidDatabaseError, ValueError, OSError) as e:
            raise GeoError(f"{self.path} is not a valid MaxMind-format database ({e})") from e
        if "city" not in kind.lower() and "country" not in kind.lower():
            raise GeoError(
                f"{self.path} is a {kind} database: logalyse needs a City or Country one"
            )
        self.kind = kind
        self._errors = maxminddb.InvalidDatabaseError
        self._cache: dict[str, tuple[str | None, str | None]] = {}
        self._results: dict[tuple[str | None, str | None], tuple[str | None, str | None]] = {}

    def lookup(self, address: str) -> tuple[str | None, str | None]:
        """(ISO country code, city name or None) for an address; (None, None) when unknown."""
        hit = self._cache.get(address)
        if hit is not None:
            return hit
        if len(self._cache) > _CACHE_MAX:
            self._cache.clear()
        try:
            record = self._reader.get(address)
        except ValueError:  # not an address: unix:, a host name
            record = None
        except self._errors as e:
            raise GeoError(f"{self.path} is corrupt ({e}): replace it") from e
        result: tuple[str | None, str | None] = (None, None)
        if record:
            country = record.get("country") or record.get("registered_country") or {}
            code = country.get("iso_code")
            name = None
            if self.city and record.get("city"):
                name = record["city"].get("names", {}).get("en")
            result = self._results.setdefault((code, name), (code, name))  # one per country
        self._cache[address] = result
        return result

    def forget(self) -> None:
        """Empty the cache of looked-up addresses."""
        self._cache.clear()
        self._results.clear()

    def close(self) -> None:
        self._reader.close()
