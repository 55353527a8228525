"""User agent ids: every stored user agent's id and bot flag in table uamap (on the store's
in-memory instance), keyed by the hash of its text, so that a batch joins on 8 bytes and
sends Python only the user agents never seen before. A new one is classified once (its
pattern matching done by the parsing threads, see `enrich.hints_sql`) and stored."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

import duckdb

from ..enrich import Agent, classify_agent, classify_with_hints
from ..store import columns_sql
from . import options as limits
from .commit import Committer

#: (user agent, crawler literal matched, another crawler pattern matched, self-described)
Hinted = tuple[str, str | None, bool, bool]
TABLE = "memory.main.uamap"


class AgentIds:
    """The ids of user agents, for one import run (on its own connection)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        attached: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]],
        committer: Committer,
    ) -> None:
        self.con = con
        self.attached = attached
        self.committer = committer
        #: new user agents, not stored yet: (id, text, classification)
        self.pending: list[tuple[int, str, Agent]] = []
        self._unclassified = 0
        with attached() as db:
            (self._next,) = db.execute(
                "SELECT coalesce(max(id), 0) + 1 FROM db.user_agents"
            ).fetchall()[0]

    def load(self, con: duckdb.DuckDBPyConnection) -> None:
        """Make table uamap on `con`'s instance and fill it from the store, in one scan
        (memory and time then stay flat with a million distinct user agents). Those stored
        before enrichment (no bot flag yet) are looked up by text when they come."""
        self.con = con
        con.execute(f"CREATE OR REPLACE TABLE {TABLE} (uh UBIGINT, ua_id INTEGER, is_bot BOOLEAN)")
        with self.attached() as db:
            db.execute(
                f"INSERT INTO {TABLE} SELECT hash(ua), id, is_bot FROM db.user_agents "
                "WHERE is_bot IS NOT NULL"
            )
            (self._unclassified,) = db.execute(
                "SELECT count(*) FROM db.user_agents WHERE is_bot IS NULL"
            ).fetchall()[0]

    def add(self, uas: Sequence[Hinted]) -> None:
        """Give a batch's new user agents ids and a classification (in uamap). A new one is
        stored with the next commit, or before it once UA_FLUSH of them wait."""
        if not uas:
            return
        # Two batches parsed side by side may both have found the same one new.
        hints = {u[0]: u[1:] for u in uas}
        fresh = [
            r[0]
            for r in self.con.execute(
                "SELECT n.ua FROM (SELECT unnest($1::VARCHAR[]) AS ua) n "
                f"LEFT JOIN {TABLE} m ON hash(n.ua) = m.uh WHERE m.uh IS NULL",
                [list(hints)],
            ).fetchall()
        ]
        if not fresh:
            return
        known: dict[str, tuple[int, bool | None]] = {}
        if self._unclassified:
            with self.attached() as db:
                found = db.execute(
                    "SELECT ua, id, is_bot FROM db.user_agents "
                    "WHERE ua IN (SELECT unnest($1::VARCHAR[]))",
                    [fresh],
                ).fetchall()
            known = {ua: (uid, is_bot) for ua, uid, is_bot in found}
        ids: list[int] = []
        bots: list[bool] = []
        for ua in fresh:
            if ua in known:
                uid, flag = known[ua]
                is_bot = classify_agent(ua).is_bot if flag is None else flag  # `enrich` fills it
            else:
                agent = classify_with_hints(ua, *hints[ua])
                uid, is_bot = self._next, agent.is_bot
                self.pending.append((uid, ua, agent))
                self._next += 1
            ids.append(uid)
            bots.append(is_bot)
        new_map, params = columns_sql(
            "new_map", ua=("VARCHAR", fresh), ua_id=("INTEGER", ids), is_bot=("BOOLEAN", bots)
        )
        self.con.execute(
            f"INSERT INTO {TABLE} SELECT hash(ua), ua_id, is_bot FROM {new_map}", params
        )
        if len(self.pending) >= limits.UA_FLUSH:
            # Stored ahead of their requests: a user agent without requests harms nothing,
            # and a rerun after a crash finds it by its text.
            self.committer.add_agents(self.pending)
            self.pending.clear()

    def take_pending(self) -> list[tuple[int, str, Agent]]:
        """The new user agents to store with a commit (and forget)."""
        out, self.pending = self.pending, []
        return out
