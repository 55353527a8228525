"""User agents: browser, OS, device type, and whether a bot sent the request.

Runs once per distinct user agent (the store keeps the result), never per request.
Bots are ua-parser's Spiders, anything matching crawler-user-agents' patterns, uptime
monitors and health checkers, and requests with no user agent at all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

#: Health checkers and monitors that crawler-user-agents does not list. Matched against
#: the lowercased user agent: a case-insensitive regex of many alternatives is six times
#: slower in Python's `re`, and an attacker can send a million distinct user agents.
_MONITORS = re.compile(
    r"uptime|monitor|healthcheck|health-check|check_http|nagios|zabbix|prometheus|"
    r"kube-probe|elb-healthchecker|googlehc|statuscake|pingdom|site24x7|freshping|nodeping|"
    r"headlesschrome|phantomjs|puppeteer|playwright|selenium|validator|link ?check|libfetch|"
    r"portscout|^ruby$",
    re.ASCII,  # as RE2 reads it in the import (hints_sql)
)
#: A client that names a web address or an e-mail address, or says it fetches feeds,
#: describes a program, not a person at a browser (lowercased too).
_SELF_DESCRIBED = re.compile(
    r"https?://|\bwww\.\w|@[\w-]+\.\w|feed|\brss\b|crawl|spider|scrap|fetcher", re.ASCII
)
_DESKTOP_OS = {
    "Windows",
    "Mac OS X",
    "macOS",
    "Linux",
    "Ubuntu",
    "Debian",
    "Fedora",
    "Red Hat",
    "SUSE",
    "Arch Linux",
    "Linux Mint",
    "Chrome OS",
    "ChromeOS",
    "FreeBSD",
    "OpenBSD",
    "NetBSD",
    "Solaris",
}
_MOBILE_OS = {"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Tizen", "HarmonyOS"}
_TABLET = re.compile(r"ipad|tablet(?! pc)|kindle|silk/|playbook|nexus (7|9|10)\b|sm-t\d")


@dataclass(frozen=True)
class Agent:
    """What a user agent string says about its client."""

    browser: str | None
    browser_major: str | None
    os: str | None
    device: str  # desktop | mobile | tablet | bot | other
    is_bot: bool
    bot_name: str | None


def agent_columns(agents: Sequence[Agent]) -> dict[str, tuple[str, list[Any]]]:
    """The columns of `user_agents` that a classification fills, as (SQL type, values)."""
    return {
        "browser": ("VARCHAR", [a.browser for a in agents]),
        "browser_major": ("VARCHAR", [a.browser_major for a in agents]),
        "os": ("VARCHAR", [a.os for a in agents]),
        "device": ("VARCHAR", [a.device for a in agents]),
        "is_bot": ("BOOLEAN", [a.is_bot for a in agents]),
        "bot_name": ("VARCHAR", [a.bot_name for a in agents]),
    }


def _pattern_name(pattern: str) -> str:
    """A readable name for a crawler-user-agents pattern: `Googlebot\\/` -> Googlebot."""
    text = re.sub(r"\[(\w)\w*\]", r"\1", pattern)  # [wW]get -> wget
    text = re.sub(r"\\(.)", r"\1", text)  # \/ -> /
    text = re.sub(r"[\^$()?*+|]|\{[^}]*\}|\[[^\]]*\]", "", text)  # the rest of regex syntax
    return text.strip(" /.-_") or pattern


def _literal(pattern: str) -> str | None:
    """The text a pattern matches when it is a plain literal (most are), else None."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 < len(pattern) and not pattern[i + 1].isalnum():
                out.append(pattern[i + 1])
                i += 2
                continue
            return None
        if ch in "^$.[]()?*+|{}":
            return None
        out.append(ch)
        i += 1
    return "".join(out) or None


def _trie_regex(words: list[str]) -> str:
    """One regex for many literals, shaped as a trie: re then tries each prefix once."""
    trie: dict[str, Any] = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        alts = [re.escape(ch) + emit(node[ch]) for ch in sorted(k for k in node if k)]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(trie)


def _required(pattern: str) -> str:
    """A lowercase text every match of `pattern` holds ("" when there is none to find):
    the longest plain stretch outside classes, groups and optional characters.

    Example:
        >>> _required("[wW]get"), _required("Ahrefs(Bot|SiteAudit)"), _required("a|b")
        ('get', 'ahrefs', '')
    """
    if "|" in re.sub(r"\([^)]*\)|\[[^\]]*\]|\\.", "", pattern):
        return ""  # alternatives at the top: no one text is in every match
    marked = re.sub(r"\([^)]*\)[?*]?|\[[^\]]*\][?*]?|\\[^/.\-]|.[?*]|\{[^}]*\}", "\0", pattern)
    pieces = re.split(r"[\0^$.+]", marked.replace("\\", ""))
    return max(pieces, key=len).lower()


@lru_cache(maxsize=1)
def _crawlers() -> tuple[re.Pattern[str], dict[str, str], list[tuple[str, re.Pattern[str], str]]]:
    """crawler-user-agents' 1,500 patterns, compiled for speed.

    Its own helpers try the patterns one by one (0.5 ms a user agent); here the plain
    literals become one trie-shaped regex, and each of the few real regexes is tried only
    when the text it requires is in the user agent.
    """
    import crawleruseragents

    literals: dict[str, str] = {}
    others: list[tuple[str, re.Pattern[str], str]] = []
    for d in crawleruseragents.CRAWLER_USER_AGENTS_DATA:
        text = _literal(d["pattern"])
        if text is None:
            name = _pattern_name(d["pattern"])
            rx = re.compile(d["pattern"], re.ASCII)  # \d, \s as RE2 reads them
            others.append((_required(d["pattern"]), rx, name))
        else:
            literals.setdefault(text, _pattern_name(d["pattern"]))
    return re.compile(_trie_regex(sorted(literals))), literals, others


def _crawler_name(ua: str, low: str) -> str | None:
    trie, literals, others = _crawlers()
    m = trie.search(ua)
    if m:
        return literals.get(m.group(0), m.group(0))
    return next((name for need, rx, name in others if need in low and rx.search(ua)), None)


#: User agents parsed by the lazy resolver before the compiled one is worth its cost.
LAZY_UP_TO = 300
_parsed = 0


@lru_cache(maxsize=1)
def _ua_parser() -> Any:
    """ua-parser's best resolver (its Rust regex set: ~0.2 s and ~26 MiB to build, then
    fast), without its cache: each user agent comes here once (the store keeps the answer),
    and a cache that always misses only costs."""
    import ua_parser

    return ua_parser.BestAvailableResolver(ua_parser.load_lazy_builtins())


@lru_cache(maxsize=1)
def _lazy_ua_parser() -> Any:
    """The same rules, each compiled when first tried (Python's re): for the few new user
    agents of a nightly import or a tail's flush, cheaper than building the whole set."""
    import ua_parser
    from ua_parser import basic

    return basic.Resolver(ua_parser.load_lazy_builtins())


def _resolver() -> Any:
    """The lazy resolver for the first LAZY_UP_TO user agents of the process, then the
    compiled one (an import of many new user agents)."""
    global _parsed
    _parsed += 1
    return _lazy_ua_parser() if _parsed <= LAZY_UP_TO else _ua_parser()


def _parse(ua: str) -> tuple[str | None, str | None, str | None, str | None]:
    """(browser, its major version, OS, device family) by ua-parser's rules; None where
    they say "Other". With the Rust backend its extractors are called directly: the
    result objects around them were a third of the time."""
    resolver = _resolver()
    extractors = getattr(resolver, "ua", None), getattr(resolver, "os", None)
    if all(hasattr(x, "extract") for x in extractors) and hasattr(resolver, "de"):
        b, o, d = resolver.ua.extract(ua), resolver.os.extract(ua), resolver.de.extract(ua)
        browser, major = (b.family, b.major) if b else (None, None)
        os_family, device = (o.family if o else None), (d.family if d else None)
    else:  # another backend: its public interface
        from ua_parser import Domain

        r = resolver(ua, Domain.ALL)
        browser = r.user_agent.family if r.user_agent else None
        major = r.user_agent.major if r.user_agent else None
        os_family = r.os.family if r.os else None
        device = r.device.family if r.device else None
    return (
        browser if browser != "Other" else None,
        major,
        os_family if os_family != "Other" else None,
        device,
    )


_WORD = re.compile(r"[A-Za-z][\w.!-]*[A-Za-z0-9!]")
_COMPATIBLE = re.compile(r"\(compatible;\s*([A-Za-z][\w .!-]*?)\s*[/;)]")
_PRODUCT = re.compile(r"^\s*([A-Za-z][\w .!-]*?)\s*(?:/|\(|;|$)")


def _product(ua: str, at: int) -> str | None:
    """A name for a self-described client: the word holding the match, unless the match is
    an address (then the product token the user agent starts with)."""
    for m in _WORD.finditer(ua):
        if m.start() <= at < m.end():
            word = m.group(0)
            if at > 0 and ua[m.end() : m.end() + 1] in ("/", " ", ";", ")", "") and "." not in word:
                return word
            break
    m2 = _COMPATIBLE.search(ua) or _PRODUCT.match(ua)
    return m2.group(1) if m2 and m2.group(1).lower() != "mozilla" else None


_ASCII_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_TO_LOWER = str.maketrans(_ASCII_UPPER, _ASCII_UPPER.lower())


def _lower(ua: str) -> str:
    """ASCII letters lowercased, nothing else: positions stay those of `ua`."""
    return ua.lower() if ua.isascii() else ua.translate(_TO_LOWER)


def _described(low: str) -> re.Match[str] | None:
    return _MONITORS.search(low) or _SELF_DESCRIBED.search(low)


@lru_cache(maxsize=4096)
def classify_agent(ua: str) -> Agent:
    """Classify one user agent string.

    Example:
        >>> agent = classify_agent("Mozilla/5.0 (compatible; Googlebot/2.1; +http://google.com/bot.html)")
        >>> agent.device, agent.is_bot, agent.bot_name
        ('bot', True, 'Googlebot')
        >>> classify_agent("").bot_name
        '(no user agent)'
    """
    low = _lower(ua)
    return _classify(ua, low, _crawler_name(ua, low), _described(low))


def hints_sql(ua: str) -> str:
    """SQL: the pattern matching `classify_agent` does in Python, done by DuckDB (RE2, on
    the import's parsing threads, without the GIL): three columns to hand to
    `classify_with_hints`. Python's share of a new user agent is then ua-parser alone, and
    an import of a million distinct user agents (an attacker's) stays fast.

    Example:
        >>> import duckdb
        >>> ua = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://google.com/bot.html)"
        >>> duckdb.sql(f"SELECT {hints_sql('u')} FROM (SELECT '{ua}' AS u)").fetchall()
        [('Googlebot/', False, True)]
    """
    trie, _, others = _crawlers()
    any_other = "|".join(f"(?:{rx.pattern})" for _, rx, _ in others)
    low = f"translate({ua}, '{_ASCII_UPPER}', '{_ASCII_UPPER.lower()}')"
    return (
        f"nullif(regexp_extract({ua}, {_sql(trie.pattern)}), '') AS crawler_hit, "
        f"regexp_matches({ua}, {_sql(any_other)}) AS other_hit, "
        f"regexp_matches({low}, {_sql(_MONITORS.pattern + '|' + _SELF_DESCRIBED.pattern)}) "
        "AS described"
    )


def _sql(pattern: str) -> str:
    return "'" + pattern.replace("'", "''") + "'"


def classify_with_hints(
    ua: str, crawler_hit: str | None, other_hit: bool, described: bool
) -> Agent:
    """`classify_agent`, with the pattern matching done already (see `hints_sql`)."""
    low = _lower(ua)
    _, literals, others = _crawlers()
    if crawler_hit:
        crawler: str | None = literals.get(crawler_hit, crawler_hit)
    elif other_hit:
        crawler = next((name for need, rx, name in others if need in low and rx.search(ua)), None)
    else:
        crawler = None
    return _classify(ua, low, crawler, _described(low) if described else None)


def _classify(ua: str, low: str, crawler: str | None, monitor: re.Match[str] | None) -> Agent:
    if not ua.strip() or ua.strip() == "-":
        return Agent(None, None, None, "bot", True, "(no user agent)")
    family, major, os_family, device_family = _parse(ua)
    spider = device_family == "Spider"
    if spider or crawler or monitor:
        if spider and family:
            name: str | None = family
        elif crawler:
            name = crawler
        else:
            name = family or _product(ua, monitor.start() if monitor else 0)
        return Agent(family, major, os_family, "bot", True, name or ua[:60])
    if device_family == "iPad" or _TABLET.search(low):
        device = "tablet"
    elif os_family == "Android" and ua.startswith("Mozilla/") and "mobile" not in low:
        device = "tablet"  # Android tablets leave "Mobile" out of their user agent
    elif os_family in _MOBILE_OS or device_family in ("iPhone", "iPod") or "Mobi" in ua:
        device = "mobile"
    elif os_family in _DESKTOP_OS:
        device = "desktop"
    else:
        device = "other"
    return Agent(family, major, os_family, device, False, None)
