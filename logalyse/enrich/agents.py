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

#: Health checkers and monitors that crawler-user-agents does not list.
_MONITORS = re.compile(
    r"uptime|monitor|healthcheck|health-check|check_http|nagios|zabbix|prometheus|"
    r"kube-probe|elb-healthchecker|googlehc|statuscake|pingdom|site24x7|freshping|nodeping|"
    r"headlesschrome|phantomjs|puppeteer|playwright|selenium|validator|link ?check|libfetch|"
    r"portscout|^ruby$",
    re.IGNORECASE,
)
#: A client that names a web address or an e-mail address, or says it fetches feeds,
#: describes a program, not a person at a browser.
_SELF_DESCRIBED = re.compile(
    r"https?://|\bwww\.\w|@[\w-]+\.\w|feed|\brss\b|crawl|spider|scrap|fetcher", re.IGNORECASE
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
_TABLET = re.compile(
    r"ipad|tablet(?! pc)|kindle|silk/|playbook|nexus (7|9|10)\b|sm-t\d", re.IGNORECASE
)


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


@lru_cache(maxsize=1)
def _crawlers() -> tuple[re.Pattern[str], dict[str, str], list[tuple[re.Pattern[str], str]]]:
    """crawler-user-agents' 1,500 patterns, compiled for speed.

    Its own helpers try the patterns one by one (0.5 ms a user agent); here the plain
    literals become one trie-shaped regex and only the few real regexes are tried
    apart (70 µs).
    """
    import crawleruseragents

    literals: dict[str, str] = {}
    others: list[tuple[re.Pattern[str], str]] = []
    for d in crawleruseragents.CRAWLER_USER_AGENTS_DATA:
        text = _literal(d["pattern"])
        if text is None:
            others.append((re.compile(d["pattern"]), _pattern_name(d["pattern"])))
        else:
            literals.setdefault(text, _pattern_name(d["pattern"]))
    return re.compile(_trie_regex(sorted(literals))), literals, others


def _crawler_name(ua: str) -> str | None:
    trie, literals, others = _crawlers()
    m = trie.search(ua)
    if m:
        return literals.get(m.group(0), m.group(0))
    return next((name for rx, name in others if rx.search(ua)), None)


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


@lru_cache(maxsize=65536)
def classify_agent(ua: str) -> Agent:
    """Classify one user agent string.

    Example:
        >>> agent = classify_agent("Mozilla/5.0 (compatible; Googlebot/2.1; +http://google.com/bot.html)")
        >>> agent.device, agent.is_bot, agent.bot_name
        ('bot', True, 'Googlebot')
        >>> classify_agent("").bot_name
        '(no user agent)'
    """
    from ua_parser import parse

    if not ua.strip() or ua.strip() == "-":
        return Agent(None, None, None, "bot", True, "(no user agent)")
    result = parse(ua).with_defaults()
    family = result.user_agent.family if result.user_agent.family != "Other" else None
    major = result.user_agent.major
    os_family = result.os.family if result.os.family != "Other" else None
    crawler = _crawler_name(ua)
    monitor = _MONITORS.search(ua) or _SELF_DESCRIBED.search(ua)
    spider = result.device.family == "Spider"
    if spider or crawler or monitor:
        if spider and family:
            name: str | None = family
        elif crawler:
            name = crawler
        else:
            name = family or _product(ua, monitor.start() if monitor else 0)
        return Agent(family, major, os_family, "bot", True, name or ua[:60])
    if result.device.family == "iPad" or _TABLET.search(ua):
        device = "tablet"
    elif os_family == "Android" and ua.startswith("Mozilla/") and "mobile" not in ua.lower():
        device = "tablet"  # Android tablets leave "Mobile" out of their user agent
    elif os_family in _MOBILE_OS or result.device.family in ("iPhone", "iPod") or "Mobi" in ua:
        device = "mobile"
    elif os_family in _DESKTOP_OS:
        device = "desktop"
    else:
        device = "other"
    return Agent(family, major, os_family, device, False, None)
