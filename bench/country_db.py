"""A real-size country-only .mmdb for `make bench`, derived once from GeoLite2-City.

logalyse stores countries, not cities, and a Country database is what the README
recommends; MaxMind's GeoLite2-Country is not on PyPI, so the bench builds the same thing
from the City database of `maxminddb-geolite2`: every network with its country's ISO code
(adjacent networks of one country merged). Lookups answer exactly as the City database's
country does. Takes ~2 minutes, once; written to bench/.data/GeoLite2-Country-derived.mmdb.
"""

from __future__ import annotations

import collections
import ipaddress
import sys
import time
from pathlib import Path
from typing import Any


def build(city: Path, out: Path) -> Path:
    import maxminddb
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    start = time.perf_counter()
    print(f"deriving {out.name} from {city.name} (once, ~2 min)...", file=sys.stderr)
    reader = maxminddb.open_database(str(city))
    by_country: dict[str, list[Any]] = collections.defaultdict(list)
    for network, record in reader:
        rec: Any = record or {}
        code = (rec.get("country") or rec.get("registered_country") or {}).get("iso_code")
        if code:
            by_country[code].append(network)
    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="GeoLite2-Country",
        languages=["en"],
        description="country only, derived from GeoLite2-City for logalyse's bench",
    )
    for code, networks in by_country.items():
        for version in (4, 6):
            nets = [n for n in networks if n.version == version]
            if nets:
                merged = ipaddress.collapse_addresses(nets)  # type: ignore[type-var,unused-ignore]
                writer.insert_network(
                    IPSet([str(n) for n in merged]), {"country": {"iso_code": code}}
                )
    tmp = out.with_suffix(".tmp")
    writer.to_db_file(str(tmp))
    tmp.rename(out)
    print(f"  done in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return out
