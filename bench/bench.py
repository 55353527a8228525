"""`make bench`: time `logalyse import` end to end on a generated log.

Writes a deterministic 1M-line log once (bench/.data/access-1M.log), then runs the real
command in a fresh process against a fresh database, several times, and prints lines/s,
peak RSS, the time of a rerun over the already imported file, and the database size.

    python bench/bench.py [--lines N] [--runs N] [--geoip PATH | --no-geoip]

Enrichment is on, countries included: by default with a real-size Country database derived
once from the GeoLite2 City database of the `maxminddb-geolite2` package (installed by
`make bench`; see country_db.py); `--city` uses the 57 MB City database itself.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
DATA = HERE / ".data"


def ensure_log(lines: int) -> Path:
    path = DATA / f"access-{lines // 1000}k.log"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        print(f"writing {path} ({lines:,} lines, once)...", file=sys.stderr)
        # In a child process: a command this one starts later reports, as its peak RSS,
        # at least this process's own peak (Linux keeps it across fork and exec).
        subprocess.run([sys.executable, __file__, "--write-log", str(lines), str(path)], check=True)
    return path


def distinct_agents(log: Path) -> Path:
    """The log with every user agent made unique, as an attacker rotating them sends it:
    the same requests, each with a user agent the store has never seen."""
    out = log.with_name(log.stem + "-distinct-ua.log")
    if not out.exists():
        print(f"writing {out} (once)...", file=sys.stderr)
        tmp = out.with_suffix(".tmp")
        with open(log, "rb") as src, open(tmp, "wb") as dst:
            for n, line in enumerate(src):
                cut = line.rstrip(b"\n").rfind(b'"')  # the closing quote of the user agent
                dst.write(line[:cut] + b" u/%d" % n + line[cut:])
        tmp.rename(out)
    return out


def write_log(lines: int, path: Path) -> None:
    from logalyse.loggen import write_log

    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        write_log(f, lines, seed=1, days=7)
    tmp.rename(path)


def city_geoip() -> Path | None:
    try:
        import _maxminddb_geolite2  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    return Path(_maxminddb_geolite2.__file__).parent / "GeoLite2-City.mmdb"


def default_geoip() -> Path | None:
    """A real-size Country database (what logalyse needs), derived once from the City one."""
    city = city_geoip()
    if city is None:
        return None
    out = DATA / "GeoLite2-Country-derived.mmdb"
    if not out.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        # In a child process, for the same reason as ensure_log.
        code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import country_db; "
        code += (
            f"from pathlib import Path; country_db.build(Path({str(city)!r}), Path({str(out)!r}))"
        )
        subprocess.run([sys.executable, "-c", code], check=True)
    return out


def run(args: list[str]) -> tuple[float, int, int]:
    """Run a command; return (wall seconds, peak RSS in KiB, exit code)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.stderr.close()  # type: ignore[union-attr]
    return wall, usage.ru_maxrss, os.waitstatus_to_exitcode(status)


def main() -> None:
    if sys.argv[1:2] == ["--write-log"]:
        write_log(int(sys.argv[2]), Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--geoip",
        type=Path,
        help="a City or Country .mmdb [default: a Country one derived from GeoLite2-City]",
    )
    parser.add_argument("--city", action="store_true", help="use the GeoLite2-City database")
    parser.add_argument("--no-geoip", action="store_true", help="no countries")
    parser.add_argument(
        "--distinct-agents", action="store_true", help="every line with a user agent of its own"
    )
    args = parser.parse_args()
    chosen = city_geoip() if args.city else args.geoip
    geoip = None if args.no_geoip else (chosen or default_geoip())
    if not args.no_geoip and geoip is None:
        sys.exit("no GeoIP database: pip install maxminddb-geolite2, or pass --geoip/--no-geoip")
    geo_args = ["--geoip", str(geoip)] if geoip else []
    log = ensure_log(args.lines)
    if args.distinct_agents:
        log = distinct_agents(log)
    exe = [sys.executable, "-m", "logalyse"]
    imports, reruns, rss, size = [], [], [], 0
    for _ in range(args.runs):
        tmp = Path(tempfile.mkdtemp(prefix="logalyse-bench-"))
        db = tmp / "bench.duckdb"
        try:
            wall, peak, code = run([*exe, "--db", str(db), "import", "-q", *geo_args, str(log)])
            if code != 0:
                sys.exit(f"import failed with exit code {code}")
            imports.append(wall)
            rss.append(peak)
            again, _, _ = run([*exe, "--db", str(db), "import", "-q", *geo_args, str(log)])
            reruns.append(again)
            size = db.stat().st_size
        finally:
            shutil.rmtree(tmp)
    best = min(imports)
    med = statistics.median(imports)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"log: {log.name}, {args.lines:,} lines, {log.stat().st_size / 2**20:.0f} MiB")
    print(f"enrichment: user agents, bots, referrers, pageviews; GeoIP: {geoip or 'off'}")
    print()
    print(f"| measure (runs: {args.runs}) | value |")
    print("|---|---|")
    print(f"| import, lines/s (best; median) | {args.lines / best:,.0f}; {args.lines / med:,.0f} |")
    print(f"| import wall time (best; median) | {best:.2f} s; {med:.2f} s |")
    print(f"| import peak RSS (max) | {max(rss) / 1024:.0f} MiB |")
    print(f"| rerun over the imported file (best) | {min(reruns):.2f} s |")
    per_million = size / 2**20 / (args.lines / 1e6)
    print(f"| database size | {size / 2**20:.1f} MiB ({per_million:.1f} MiB per 1M requests) |")
    goaccess(log, args.lines, best, max(rss), min(reruns))


def goaccess(log: Path, lines: int, best: float, rss_kib: int, rerun: float) -> None:
    """The same file through GoAccess (Debian's package, installed if missing and root)."""
    exe = shutil.which("goaccess")
    if exe is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "goaccess"], capture_output=True)
        exe = shutil.which("goaccess")
    if exe is None:
        print("\n(goaccess not installed: no side-by-side figures)")
        return
    out = Path(tempfile.mkdtemp(prefix="goaccess-bench-")) / "out.json"
    cmd = [exe, str(log), "--log-format=COMBINED", "-o", str(out)]
    runs = [run(cmd) for _ in range(2)]
    shutil.rmtree(out.parent)
    ga_wall = min(w for w, _, _ in runs)
    ga_rss = max(r for _, r, _ in runs)
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    print()
    print(f"Beside {version.splitlines()[0] if version else 'GoAccess'} on the same file, same run")
    print(f"(`{' '.join(['goaccess', log.name, '--log-format=COMBINED', '-o', 'out.json'])}`;")
    print("GoAccess does no GeoIP, bot naming, sessions or hashing here):")
    print()
    print("| measure | logalyse | GoAccess | ratio |")
    print("|---|---|---|---|")
    print(f"| lines/s | {lines / best:,.0f} | {lines / ga_wall:,.0f} | {ga_wall / best:.1f}x |")
    print(
        f"| peak RSS | {rss_kib / 1024:.0f} MiB | {ga_rss / 1024:.0f} MiB | "
        f"{rss_kib / ga_rss:.1f}x |"
    )
    print(
        f"| again over the same file | {rerun:.2f} s | {ga_wall:.2f} s (reads it all again) | "
        f"{ga_wall / rerun:.0f}x faster |"
    )


if __name__ == "__main__":
    main()
