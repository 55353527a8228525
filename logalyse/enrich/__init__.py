"""Enrichment, computed once per distinct value: user agents, countries, referrer sources.

Per-request rules (pageviews, self-referrals, campaigns) are SQL, in `pages.py` and the
import; nothing here touches a stored row.
"""

from __future__ import annotations

from .agents import Agent, agent_columns, classify_agent, classify_with_hints, hints_sql
from .geo import GeoIP
from .pages import (
    DEFAULT_ASSET_EXTENSIONS,
    DEFAULT_NON_PAGES,
    is_asset_sql,
    page_request_sql,
    pageview_sql,
    referrer_host_steps,
    source_sql,
)
from .referrers import KINDS, classify_host, normalise_host, strip_www, strip_www_sql

__all__ = [
    "DEFAULT_ASSET_EXTENSIONS",
    "DEFAULT_NON_PAGES",
    "KINDS",
    "Agent",
    "GeoIP",
    "agent_columns",
    "classify_agent",
    "classify_host",
    "classify_with_hints",
    "hints_sql",
    "is_asset_sql",
    "normalise_host",
    "page_request_sql",
    "pageview_sql",
    "referrer_host_steps",
    "source_sql",
    "strip_www",
    "strip_www_sql",
]
