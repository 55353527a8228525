"""Rebuild logalyse/enrich/data/referrers.json from Matomo's lists (a developer's tool).

    python scripts/build_referrer_data.py ../shared/data/referrers

Reads SearchEngines.yml, Socials.yml, AIAssistants.yml (CC0, matomo-org/searchengine-and-
social-list) and spammers.txt (public domain, matomo-org/referrer-spam-list). Needs PyYAML,
which logalyse itself does not: the JSON it writes is what ships.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml  # type: ignore[import-untyped,unused-ignore]

OUT = Path(__file__).parent.parent / "logalyse" / "enrich" / "data" / "referrers.json"


def _host(url: str) -> str | None:
    url = url.strip().lower()
    if "//" in url:  # android-app://... entries are not web referrers
        return None
    host = url.split("/", 1)[0]
    return host.removeprefix("www.") or None


def _names(path: Path) -> dict[str, list[str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    out: dict[str, list[str]] = {}
    for name, entries in data.items():
        urls: list[str] = []
        for entry in entries:
            if isinstance(entry, str):
                urls.append(entry)
            else:
                urls.extend(entry.get("urls", []))
        out[str(name)] = urls
    return out


def build(src: Path) -> dict[str, object]:
    lists = src / "matomo-searchengine-and-social-list"
    result: dict[str, object] = {}
    for kind, file in (
        ("search", "SearchEngines.yml"),
        ("social", "Socials.yml"),
        ("ai", "AIAssistants.yml"),
    ):
        exact: dict[str, str] = {}
        patterns: list[list[str]] = []
        for name, urls in _names(lists / file).items():
            for url in urls:
                host = _host(url)
                if host is None:
                    continue
                if "{}" in host:
                    rx = (
                        "^" + re.escape(host).replace(r"\{\}", "[a-z0-9-]+(?:\\.[a-z0-9-]+)?") + "$"
                    )
                    patterns.append([rx, name])
                else:
                    exact.setdefault(host, name)
        result[kind] = {"exact": dict(sorted(exact.items())), "patterns": patterns}
    spam = sorted(
        {
            line.strip().lower().removeprefix("www.")
            for line in (src / "matomo-referrer-spam-list" / "spammers.txt")
            .read_text()
            .splitlines()
            if line.strip() and not line.startswith("#")
        }
    )
    result["spam"] = spam
    return result


if __name__ == "__main__":
    data = build(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/referrers"))
    OUT.write_text(
        json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {OUT}")
