"""Reads of the owner's name and size indexes (tag ``{u:<user>}``): pages in name or size order.

Contract:

* ``by_name`` answers entries of ``names`` in a lex range (a folder, a subtree, everything), in
  order, after a cursor entry, whose case-folded name holds a substring; it reads at most
  ``budget`` entries per call (``names_page.lua``), so a page may hold fewer than asked and still
  have a next position: the last entry read.
* ``by_score`` answers ids of ``sizes`` (or of the file index, by creation time) between two
  scores, in order (ties by member), after a (score, member) position, and the position of the last
  one when more follow.
* Entries name files that may be mid-operation: the caller checks each against its ``meta``
  (``IndexRow.entry``) and skips what it does not confirm.
"""

from __future__ import annotations

from typing import Any, cast

import redis

from redfile_common.lua_scripts import Scripts
from redfile_files.storage import keys
from redfile_files.storage.records import text

SCAN_BUDGET = 5_000  # entries a name search reads per call: ~10 ms of Redis time (docs/architecture.md)


class Listings:
    """Pages of one owner's name and size indexes (see the module contract)."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.scripts = Scripts(client, "redfile_files.storage")

    def by_name(
        self, owner: str, *, prefix: str, exact: bool, after: str | None, q: str, limit: int, desc: bool, budget: int = SCAN_BUDGET
    ) -> tuple[list[str], str | None]:
        """Entries under ``prefix`` (a folder key: its own entries only when ``exact``, else its subtree); and the
        last entry read when the range may go on."""
        lo, hi = (prefix + "\0", prefix + "\1") if exact else (prefix, prefix + "\xff")
        args = [lo, hi, after or "", q, limit, budget, "desc" if desc else "asc"]
        raw = self.scripts["names_page"](keys=[keys.user_names(owner)], args=args)
        last = text(raw[0])
        return [text(e) for e in raw[1:]], (last or None)

    def by_score(
        self, owner: str, index: str, *, after: tuple[int, str] | None, low: int, high: int | None, limit: int, desc: bool
    ) -> tuple[list[str], tuple[int, str] | None]:
        """File ids of ``index`` (``sizes``: by size; ``files``: by creation time) between ``low`` and ``high``
        (inclusive; None: no bound), ties in member order, after a (score, member) position; and the position of the
        last one when more follow."""
        key = keys.user_sizes(owner) if index == "sizes" else keys.user_files(owner)
        top = "+inf" if high is None else high
        rows: list[Any] = []
        start: str | int
        stop: str | int
        if after is not None:
            score, member = after
            same = cast("list[Any]", self.redis.zrange(key, score, score, byscore=True, withscores=True))
            rows = [(m, s) for m, s in (reversed(same) if desc else same) if (text(m) < member if desc else text(m) > member)]
            start, stop = (f"({score}", low) if desc else (f"({score}", top)
        else:
            start, stop = (top, low) if desc else (low, top)
        if len(rows) <= limit:
            more = self.redis.zrange(key, start, stop, desc=desc, byscore=True, withscores=True, offset=0, num=limit + 1 - len(rows))
            rows += cast("list[Any]", more)
        found = [(text(m), int(s)) for m, s in rows]
        extra = len(found) > limit
        found = found[:limit]
        ids = [keys.file_id_of(m) if index == "sizes" else m for m, _ in found]
        return ids, ((found[-1][1], found[-1][0]) if extra and found else None)
