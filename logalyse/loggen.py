"""A deterministic generator of realistic nginx access logs, for tests and benchmarks.

Visitors come back in sessions (a page, its assets, a few more pages), bots crawl,
scanners probe for /wp-login.php; referrers, campaigns, IPv6 and status codes are mixed
in proportions seen on small real sites. The same seed always writes the same bytes.

    python -m logalyse.loggen 100000 --seed 1 > access.log
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import BinaryIO

_BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.{b}.{p} Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.{b}.{p} Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.{b}.{p} Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/{s}.{p2} Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS {s}_{p2} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/{s}.{p2} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS {s}_{p2} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/{s}.{p2} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android {a}; SM-S91{p2}B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.{b}.{p} Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android {a}; Pixel {p2}) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.{b}.{p} Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.{b}.{p} Safari/537.36 Edg/{v}.0.{b}.{p}",
)
_BOTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "curl/8.5.0",
    "python-requests/2.32.3",
    "Go-http-client/1.1",
    "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
    "-",
)
_PAGES = (
    ["/", "/about", "/contact", "/blog", "/projects", "/feed.xml"]
    + [
        f"/blog/{y}/{slug}-{i}"
        for i, (y, slug) in enumerate(
            (y, s)
            for y in (2023, 2024, 2025, 2026)
            for s in (
                "self-hosting",
                "nginx-tuning",
                "duckdb-notes",
                "privacy",
                "rust-cli",
                "backups",
            )
        )
    ]
    + [f"/docs/{s}" for s in ("install", "config", "faq", "api", "changelog")]
)
_ASSETS = (
    "/static/css/site.css",
    "/static/js/app.js",
    "/static/img/logo.svg",
    "/static/img/hero.jpg",
    "/static/fonts/inter.woff2",
    "/favicon.ico",
)
_PROBES = (
    "/wp-login.php",
    "/.env",
    "/xmlrpc.php",
    "/admin/config.php",
    "/.git/config",
    "/phpmyadmin/",
)
_REFERRERS = (
    ("-", 40),
    ("https://www.google.com/", 25),
    ("https://www.bing.com/", 3),
    ("https://duckduckgo.com/", 4),
    ("https://news.ycombinator.com/", 4),
    ("https://www.reddit.com/r/selfhosted/comments/abc123/", 3),
    ("https://t.co/Xy12Ab", 2),
    ("https://mastodon.social/@someone/1122334455", 2),
    ("https://chatgpt.com/", 2),
    ("https://lobste.rs/s/qwe123/", 1),
    ("https://github.com/someone/awesome-selfhosted", 3),
    ("http://semalt.com/", 1),
)
_CAMPAIGNS = ("?utm_source=newsletter&utm_medium=email&utm_campaign=launch", "?ref=producthunt")


#: Networks of MaxMind's test databases (tests/data/maxmind), with weights: sample logs
#: drawn from them show countries when imported with --geoip GeoIP2-City-Test.mmdb.
TEST_NETWORKS = (
    ("214.78.120.0/22", 30),  # US
    ("81.2.69.160/27", 14),  # GB
    ("2a02:d180::/29", 12),  # DE
    ("2a02:cfc0::/29", 9),  # FR
    ("89.160.20.128/25", 6),  # SE
    ("2001:218::/32", 6),  # JP
    ("175.16.199.0/24", 5),  # CN
    ("214.0.1.0/24", 5),  # AU
    ("2a02:d1c0::/29", 5),  # IT
    ("202.196.224.0/20", 4),  # PH
    ("2a02:d040::/29", 4),  # SE
)


def _ip_in(r: random.Random, networks: tuple[tuple[str, int], ...]) -> str:
    import ipaddress

    net = ipaddress.ip_network(r.choices([n for n, _ in networks], [w for _, w in networks])[0])
    return str(net[r.randrange(1, min(net.num_addresses - 1, 1 << 24))])


def _ip(r: random.Random) -> str:
    if r.random() < 0.1:
        return f"2001:db8:{r.randrange(65536):x}:{r.randrange(65536):x}::{r.randrange(1, 65536):x}"
    first = r.choice(
        (5, 23, 31, 37, 45, 62, 77, 81, 89, 91, 104, 109, 145, 151, 176, 185, 188, 193, 203, 212)
    )
    return f"{first}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"


def _ua(r: random.Random) -> str:
    t = r.choice(_BROWSERS)
    return t.format(
        v=r.randrange(110, 131),
        b=r.randrange(5000, 7000),
        p=r.randrange(10, 200),
        s=r.randrange(15, 19),
        p2=r.randrange(0, 8),
        a=r.randrange(10, 15),
    )


def generate_lines(
    n: int,
    seed: int = 1,
    start: datetime | None = None,
    days: float = 7.0,
    host: str = "example.com",
    networks: tuple[tuple[str, int], ...] | None = None,
    returning: float = 0.4,
    realistic: bool = False,
) -> Iterator[str]:
    """Yield `n` combined-format lines (without newline), in time order.

    `realistic` gives the cardinalities of a real public 497k-line nginx log (issue 19)
    rather than the flattering defaults: about 11 distinct requests per 100 lines (a long
    tail of pages, query strings and versioned assets), 1.2 user agents per 100 lines and
    1.9 addresses per 100 lines (against 0.6, 0.3 and 4.6 by default).

    Client addresses are random public-looking ones, or drawn from `networks`
    (CIDR, weight) when given. `returning` is the share of sessions from a long-tailed
    few regular visitors: at 0.4 (the sample logs') the first of them makes thousands of
    pageviews a day over a 200,000-line week, a crowd behind one address more than a
    person.

    Example:
        >>> lines = list(generate_lines(3, seed=7))
        >>> len(lines), lines == list(generate_lines(3, seed=7))
        (3, True)
    """
    r = random.Random(seed)
    t0 = start or datetime(2026, 11, 1, tzinfo=timezone.utc)
    span = days * 86400.0
    # A population of visitors (address, user agent) with a long-tailed number of visits.
    # Real logs see a few thousand distinct user agents per million lines, not one each.
    agents = [_ua(r) for _ in range(max(20, n // 25 if realistic else min(3000, n // 300)))]

    def address() -> str:
        return _ip_in(r, networks) if networks else _ip(r)

    def agent() -> str:
        if realistic:
            return r.choice(agents)
        return agents[min(int(r.paretovariate(0.8)) - 1, len(agents) - 1)]

    people = [(address(), agent()) for _ in range(max(50, n // (70 if realistic else 12)))]
    bots = [(address(), r.choice(_BOTS)) for _ in range(max(10, n // 400))]
    scanners = [address() for _ in range(max(10, n // 1000))] if realistic else []
    refs = [x for x, w in _REFERRERS for _ in range(w)]
    tail = max(100, n // 5)

    def long_tail() -> str:
        """A page of a site with many: its fixed pages, then numbered ones drawn with a
        long tail, some with a query string of their own."""
        if r.random() < 0.35:
            return r.choice(_PAGES)
        k = r.randrange(tail) if r.random() < 0.4 else min(int(r.paretovariate(0.35)), tail)
        page = f"/{r.choice(('post', 'tag', 'item', 'wiki'))}/{k}"
        if r.random() < 0.2:
            page += f"?page={r.randrange(2, 40)}&sort={r.choice(('new', 'top'))}"
        return page

    pending: list[tuple[float, int, str]] = []
    seq = 0

    def push(at: float, line: str) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(pending, (at, seq, line))

    out = 0
    t = 0.0
    last_pushed = 1
    step = span / max(n, 1)
    while out < n:
        # Start something new, then emit what is due, keeping time order.
        t += r.expovariate(1.0) * step * last_pushed
        before = seq
        kind = r.random()
        if kind < 0.72:  # a human session: pages with their assets
            ip, ua = (
                people[min(int(r.paretovariate(1.1)) - 1, len(people) - 1)]
                if r.random() < returning
                else r.choice(people)
            )
            if realistic and r.random() < 0.15:  # another device behind the same address
                ua = agent()
            ref = r.choice(refs)
            tt = t
            page = long_tail() if realistic else r.choice(_PAGES)
            if r.random() < 0.05:
                page += r.choice(_CAMPAIGNS)
            for _ in range(1 + int(r.expovariate(0.7))):
                status = 200 if r.random() < 0.93 else r.choice((304, 404, 301))
                push(
                    tt,
                    f'{ip} - - [{{ts}}] "GET {page} HTTP/2.0" {status} '
                    f'{r.randrange(2000, 40000)} "{ref}" "{ua}"',
                )
                for a in r.sample(_ASSETS, r.randrange(0, 4)):
                    if realistic and r.random() < 0.3:
                        a += f"?v={r.randrange(40)}"
                    push(
                        tt + r.random(),
                        f'{ip} - - [{{ts}}] "GET {a} HTTP/2.0" {r.choice((200, 304))} '
                        f'{r.randrange(300, 90000)} "https://{host}{page}" "{ua}"',
                    )
                ref = f"https://{host}{page}"
                page = long_tail() if realistic else r.choice(_PAGES)
                tt += r.expovariate(1 / 90.0) if r.random() < 0.9 else 1900 + r.random() * 600
        elif kind < 0.95:  # a crawler or monitor
            ip, ua = r.choice(bots)
            path = r.choice(_PAGES + ["/robots.txt", "/sitemap.xml"])
            push(
                t,
                f'{ip} - - [{{ts}}] "GET {path} HTTP/1.1" 200 {r.randrange(500, 30000)} "-" "{ua}"',
            )
        else:  # a scanner
            ip = r.choice(scanners) if realistic else address()
            for path in r.sample(_PROBES, r.randrange(1, 4)):
                push(
                    t,
                    f'{ip} - - [{{ts}}] "GET {path} HTTP/1.1" 404 153 "-" "{r.choice(_BOTS[5:8])}"',
                )
        last_pushed = max(1, seq - before)
        # Emit, in time order, everything due before the next start.
        while pending and (pending[0][0] <= t or len(pending) > 4096) and out < n:
            tt, _, line = heapq.heappop(pending)
            ts = (t0 + timedelta(seconds=min(tt, span))).strftime("%d/%b/%Y:%H:%M:%S +0000")
            yield line.replace("{ts}", ts, 1)
            out += 1


#: Machines that send a browser's user agent (what `enrich.behaviour` is for), by kind:
#: the patch number of their Chrome version says which, and their build number (9000 and
#: up, where people's are 5000-6999) that it is a machine: the ground truth is in the
#: stored user agents. `shape` machines send user agents no browser sends.
MACHINES = {"rate": 1, "regular": 2, "repeat": 3, "stealth": 5}
SHAPES = ("Mozilla/5.0", "nlpproject.info research")
_MACHINE_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/108.0.{b}.{kind} Safari/537.36"
)


def machine_kind(ua: str) -> str | None:
    """Which machine of `machine_lines` sent `ua`, or None for anything else.

    Example:
        >>> machine_kind(_MACHINE_UA.format(b=9001, kind=3)), machine_kind("Mozilla/5.0")
        ('repeat', 'shape')
    """
    import re

    if ua in SHAPES:
        return "shape"
    m = re.search(r"Chrome/108\.0\.(9\d{3})\.(\d+) ", ua)
    if not m:
        return None
    return next((k for k, v in MACHINES.items() if v == int(m.group(2))), None)


def machine_lines(
    seed: int = 1,
    start: datetime | None = None,
    days: int = 1,
    host: str = "example.com",
    per_kind: int = 2,
) -> list[tuple[datetime, str]]:
    """Lines (with their times, unsorted) of `per_kind` machines of each kind per day:
    `rate` (a scraper: 200 pages in under an hour), `regular` (a poller: a page every
    60 s for three hours), `repeat` (a page fetched 40 times a day, never an asset),
    `shape` (a user agent no browser sends), and `stealth` (six pages at a reading pace,
    with their assets, from a machine: what behaviour cannot tell from a person)."""
    r = random.Random(seed)
    t0 = start or datetime(2026, 11, 1, tzinfo=timezone.utc)
    out: list[tuple[datetime, str]] = []
    build = 9000

    def line(at: datetime, ip: str, ua: str, path: str, ref: str = "-") -> None:
        ts = at.strftime("%d/%b/%Y:%H:%M:%S +0000")
        out.append(
            (at, f'{ip} - - [{ts}] "GET {path} HTTP/1.1" 200 {r.randrange(500, 30000)} '
             f'"{ref}" "{ua}"')
        )  # fmt: skip

    for day in range(days):
        base = t0 + timedelta(days=day)
        for k in range(per_kind):
            for kind, code in (*MACHINES.items(), ("shape", 0)):
                build += 1
                ip = f"198.18.{build % 250}.{1 + k + 10 * code}"
                ua = SHAPES[k % 2] if kind == "shape" else _MACHINE_UA.format(b=build, kind=code)
                at = base + timedelta(seconds=r.randrange(0, 14 * 3600))
                if kind == "rate":
                    for _ in range(200):
                        line(at, ip, ua, r.choice(_PAGES))
                        at += timedelta(seconds=r.randrange(3, 17))
                elif kind == "regular":
                    for _ in range(180):
                        line(at, ip, ua, r.choice(_PAGES))
                        at += timedelta(seconds=60)
                elif kind == "repeat":
                    for t in sorted(r.randrange(0, 86000) for _ in range(40)):
                        line(base + timedelta(seconds=t), ip, ua, "/contact", f"https://{host}/")
                elif kind == "shape":
                    for _ in range(15):
                        line(at, ip, ua, r.choice(_PAGES))
                        at += timedelta(seconds=r.randrange(5, 600))
                else:  # stealth: reads like a person
                    ref = "-"
                    for _ in range(6):
                        page = r.choice(_PAGES)
                        line(at, ip, ua, page, ref)
                        for a in r.sample(_ASSETS, 3):
                            line(at, ip, ua, a, f"https://{host}{page}")
                        ref = f"https://{host}{page}"
                        at += timedelta(seconds=r.randrange(30, 240))
    return out


def with_machines(lines: Iterator[str], machines: list[tuple[datetime, str]]) -> Iterator[str]:
    """`lines` (combined format, in time order) with `machines` merged in, in time order."""

    def timed(line: str) -> tuple[datetime, str]:
        stamp = line.split("[", 1)[1][:26]
        return datetime.strptime(stamp, "%d/%b/%Y:%H:%M:%S %z"), line

    for _, line in heapq.merge(map(timed, lines), sorted(machines, key=lambda m: m[0])):
        yield line


def write_log(out: BinaryIO, n: int, seed: int = 1, **kwargs: object) -> None:
    """Write `n` lines to a binary stream, in blocks."""
    buf: list[str] = []
    for line in generate_lines(n, seed, **kwargs):  # type: ignore[arg-type]
        buf.append(line)
        if len(buf) >= 10000:
            out.write(("\n".join(buf) + "\n").encode())
            buf = []
    if buf:
        out.write(("\n".join(buf) + "\n").encode())


_COMPOSE_START = (
    "/docker-entrypoint.sh: /docker-entrypoint.d/ is not empty, "
    "will attempt to perform configuration",
    "/docker-entrypoint.sh: Looking for shell scripts in /docker-entrypoint.d/",
    "10-listen-on-ipv6-by-default.sh: info: Getting the checksum of /etc/nginx/conf.d/default.conf",
    "/docker-entrypoint.sh: Configuration complete; ready for start up",
    '2026/11/04 06:00:01 [notice] 1#1: using the "epoll" event method',
    "2026/11/04 06:00:01 [notice] 1#1: nginx/1.27.3",
    "2026/11/04 06:00:01 [notice] 1#1: start worker processes",
)


def compose_lines(
    n: int, seed: int = 3, service: str = "nginx", start: datetime | None = None
) -> Iterator[str]:
    """`docker compose logs` output: service prefixes, start-up and error lines mixed in.

    Example:
        >>> next(compose_lines(5))
        'Attaching to nginx-1'
    """
    r = random.Random(seed)
    label = f"{service}-1"
    pad = " " * 2
    yield f"Attaching to {label}"
    for line in _COMPOSE_START:
        yield f"{label}{pad}| {line}"
    t0 = start or datetime(2026, 11, 4, 6, 0, 5, tzinfo=timezone.utc)
    lines = generate_lines(n, seed=seed, start=t0, days=0.5, networks=TEST_NETWORKS)
    for i, line in enumerate(lines):
        yield f"{label}{pad}| {line}"
        if r.random() < 0.02:
            ts = (t0 + timedelta(seconds=i * 21)).strftime("%Y/%m/%d %H:%M:%S")
            yield (
                f"{label}{pad}| {ts} [error] 29#29: *{i} "
                'open() "/usr/share/nginx/html/wp-login.php" failed '
                "(2: No such file or directory), client: 203.0.113.50, server: localhost, "
                'request: "GET /wp-login.php HTTP/1.1", host: "example.com"'
            )


def write_samples(directory: str) -> None:
    """Write the bundled sample logs: three rotated days and a docker compose stream."""
    import gzip
    from pathlib import Path

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    days = [
        ("access.log.2.gz", datetime(2026, 11, 1, tzinfo=timezone.utc)),
        ("access.log.1", datetime(2026, 11, 2, tzinfo=timezone.utc)),
        ("access.log", datetime(2026, 11, 3, tzinfo=timezone.utc)),
    ]
    for i, (name, start) in enumerate(days):
        lines = generate_lines(3000, seed=10 + i, start=start, days=1.0, networks=TEST_NETWORKS)
        text = "".join(line + "\n" for line in lines)
        data = text.encode()
        if name.endswith(".gz"):
            data = gzip.compress(data, mtime=0)
        (out / name).write_bytes(data)
    stream = "".join(line + "\n" for line in compose_lines(1500))
    (out / "docker-compose.log").write_text(stream)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a realistic nginx access log to stdout.")
    parser.add_argument("lines", type=int, nargs="?", default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument(
        "--realistic",
        action="store_true",
        help="the cardinalities of a real log (many distinct pages and user agents)",
    )
    parser.add_argument("--samples", metavar="DIR", help="write the bundled sample logs to DIR")
    parser.add_argument(
        "--machines",
        type=int,
        default=0,
        metavar="N",
        help="add N machines of each kind per day that send a browser's user agent",
    )
    args = parser.parse_args(argv)
    if args.samples:
        write_samples(args.samples)
    elif args.machines:
        days = max(1, int(args.days))
        lines = with_machines(
            generate_lines(args.lines, seed=args.seed, days=days),
            machine_lines(args.seed, days=days, per_kind=args.machines),
        )
        sys.stdout.buffer.writelines((line + "\n").encode() for line in lines)
    else:
        write_log(
            sys.stdout.buffer, args.lines, seed=args.seed, days=args.days, realistic=args.realistic
        )


if __name__ == "__main__":
    main()
