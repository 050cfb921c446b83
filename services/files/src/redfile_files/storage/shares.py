"""Sharing in Redis: share links, named recipients, and their indexes in other slots.

A share lives under its file's tag, so the file slot alone decides whether a link download may
happen (the share, its counter and the file's meta are read and changed by one script), and
deleting a file finds every share of it in its own slot.  A link exists iff its share hash and
its file's meta do; a recipient may read iff the file's ``recipients`` has their account id and
the meta exists.  The token's lookup (``{l:<sha256(token)>}``), the owner's ``links`` and the recipient's
``inbox`` are indexes in other slots: written before the file-slot step when acquiring, removed
after it when releasing, so a crash leaves an index entry pointing at nothing, never a share
without one.  Readers skip such entries and remove them.
"""

from __future__ import annotations

from collections.abc import Iterator

import redis

from redfile_common.limiter import FailureLimiter, Scope
from redfile_common.lua_scripts import Scripts
from redfile_files.storage import keys
from redfile_files.storage.recipient_rows import is_account_row, legacy_name, row_name
from redfile_files.storage.records import text

PURGE_ROUNDS = 5  # reads of a gone file's share list while links still appear on it


class ShareStore:
    """Share links and recipients in Redis.  Contract:

    * ``create_link`` returns False (and writes nothing in the file slot) when the file is gone;
    * ``use_link`` returns ``('missing'|'expired'|'used_up', 0, '')`` or ``('ok', downloads, how)``,
      counting a download only with ``reserve`` and only when ``how`` is ``counted`` (a ``resumed`` one
      spent the client's resume allowance instead);
    * ``revoke`` and ``purge_file`` remove the link hashes first, then the indexes.
    """

    def __init__(self, client: redis.Redis, *, password_window: int, password_slowdown_max: int = 60) -> None:
        self.redis = client
        self.scripts = Scripts(client, "redfile_files.storage")
        self.passwords = FailureLimiter(client, window=password_window, max_delay=password_slowdown_max)

    # -- links -------------------------------------------------------------------
    def create_link(self, fields: dict, *, file_expires_ts: int = 0) -> bool:
        """The file's expiry, when it has one, ends the link's keys with it (its own expiry is a field: 410)."""
        fid, sid, owner = fields["file_id"], fields["id"], fields["owner"]
        self.redis.hset(keys.user_links(owner), sid, fid)  # indexes first (acquiring)
        self.redis.set(keys.link(fields["token_sha256"]), f"{fid}:{sid}", exat=file_expires_ts or None)
        flat = [str(x) for kv in fields.items() for x in kv]
        ok = (
            text(
                self.scripts["share_create"](
                    keys=[keys.share(fid, sid), keys.shares(fid), keys.meta(fid)], args=[sid, fields["created_at"], *flat]
                )
            )
            == "ok"
        )
        if not ok:
            self.redis.delete(keys.link(fields["token_sha256"]))
            self.redis.hdel(keys.user_links(owner), sid)
        return ok

    def resolve(self, token_sha256: str) -> tuple[str, str] | None:
        value = self.redis.get(keys.link(token_sha256))
        if value is None:
            return None
        fid, _, sid = text(value).partition(":")
        return fid, sid

    def get_link(self, file_id: str, share_id: str) -> dict | None:
        raw = self.redis.hgetall(keys.share(file_id, share_id))
        return {text(k): text(v) for k, v in raw.items()} or None

    def get_links(self, pairs: list[tuple[str, str]]) -> list[dict | None]:
        with self.redis.pipeline(transaction=False) as pipe:
            for fid, sid in pairs:
                pipe.hgetall(keys.share(fid, sid))
            rows = pipe.execute()
        return [{text(k): text(v) for k, v in row.items()} or None for row in rows]

    def use_link(
        self,
        file_id: str,
        share_id: str,
        token_sha256: str,
        *,
        reserve: bool,
        client: str,
        span: tuple[int, int] = (0, 0),
        size: int = 0,
        window: int = 0,
        download: bool = False,
    ) -> tuple[str, int, str]:
        """(state, downloads, how): how is ``counted``, ``resumed`` (spent the client's allowance) or ``""``.

        Without ``reserve``, a used-up link is ``ok`` for a ``download`` whose client's allowance lasts (it may resume)."""
        start, end = span
        result = self.scripts["share_use"](
            keys=[keys.share(file_id, share_id), keys.meta(file_id), keys.resume(file_id, share_id, client)],
            args=[token_sha256, "1" if reserve else "0", start, end - start, size, window, "1" if download else "0"],
        )
        if len(result) < 2:
            return text(result[0]), 0, ""
        return text(result[0]), int(result[1]), text(result[2])

    def password_scopes(self, token_sha256: str, client: str, *, per_client: int, per_link: int) -> tuple[list[Scope], str]:
        """The failure-limiter scopes of one link's password check by ``client``, and that client's cooldown key.

        The (link, client) pair locks at ``per_client``; the link slows past ``per_link`` (it never
        locks: a stranger cannot shut the recipients out).  Every key is in the link's slot.
        """
        link = Scope("link", keys.password_failures(token_sha256), keys.password_checks(token_sha256), per_link, slows=True)
        pair = Scope(
            "client", keys.password_client_failures(token_sha256, client), keys.password_client_checks(token_sha256, client), per_client
        )
        return [link, pair], keys.password_wait(token_sha256, client)

    def owner_links(self, owner: str) -> dict[str, str]:
        return {text(k): text(v) for k, v in self.redis.hgetall(keys.user_links(owner)).items()}

    def forget_owner_links(self, owner: str, share_ids: list[str]) -> None:
        if share_ids:
            self.redis.hdel(keys.user_links(owner), *share_ids)

    def revoke(self, file_id: str, share_id: str, token_sha256: str, owner: str) -> None:
        with self.redis.pipeline(transaction=True) as pipe:  # one slot
            pipe.unlink(keys.share(file_id, share_id))
            pipe.hdel(keys.shares(file_id), share_id)
            pipe.execute()
        if token_sha256:
            self.redis.delete(keys.link(token_sha256))
        self.redis.hdel(keys.user_links(owner), share_id)

    # -- recipients ------------------------------------------------------------------
    # A file's recipients are account ids (auth's, never reused) -> username; the inbox, keyed by
    # the username, is only an index: whether a user may read is decided by the id alone.  A name
    # row stored before account ids (``recipient_rows``) counts as a share with whoever holds the
    # name now until ``redfile-upgrade-shares`` converts it; adding or removing that name converts it too.
    def add_recipient(self, file_id: str, owner: str, uid: str, username: str) -> bool:
        self.redis.hset(keys.inbox(username), file_id, owner)
        ok = text(self.scripts["share_add_recipient"](keys=[keys.recipients(file_id), keys.meta(file_id)], args=[uid, username])) == "ok"
        if not ok:
            self.redis.hdel(keys.inbox(username), file_id)
        else:
            self._drop_name_rows(file_id, username, self.rows(file_id))
        return ok

    def remove_recipient(self, file_id: str, username: str) -> bool:
        """Stop sharing with whoever is listed under ``username`` (the ids it names, and a name row of it)."""
        rows = self.rows(file_id)
        ids = [field for field, value in rows.items() if is_account_row(field, value) and value == username]
        removed = bool(ids) and bool(self.redis.hdel(keys.recipients(file_id), *ids))
        removed = self._drop_name_rows(file_id, username, rows) or removed
        self.redis.hdel(keys.inbox(username), file_id)
        return removed

    def _drop_name_rows(self, file_id: str, username: str, rows: dict[str, str]) -> bool:
        dropped = False
        for field, value in rows.items():
            if legacy_name(field, value) == username and self.convert_name_row(file_id, field, value, "", username) == "ok":
                dropped = True
                if field != username:
                    self.redis.hdel(keys.inbox(field), file_id)  # stored under the name as it was typed
        return dropped

    def convert_name_row(self, file_id: str, field: str, value: str, uid: str, username: str) -> str:
        """A name row made an account row (``uid`` -> ``username``), or dropped (``uid`` empty): ``ok``, or
        ``changed`` when the row no longer holds ``value`` (nothing written).  Inboxes are the caller's."""
        return text(self.scripts["share_convert_recipient"](keys=[keys.recipients(file_id)], args=[field, value, uid, username]))

    def forget_recipient(self, username: str) -> int:
        """A deleted account: off every file its inbox names (every share adds the inbox entry first), then its inbox."""
        removed = 0
        for file_id in self.inbox(username):
            removed += 1 if self.remove_recipient(file_id, username) else 0
        self.redis.delete(keys.inbox(username))
        return removed

    def files_with_recipients(self, batch: int) -> Iterator[str]:
        """The id of every file with a recipients hash (a SCAN walk; on a cluster, of every primary)."""
        for key in self.redis.scan_iter(match=keys.id_key("*", "recipients"), count=batch, _type="hash"):
            found = keys.classify(text(key))
            if found is not None and found.part == "recipients":
                yield found.tag

    def file_owner(self, file_id: str) -> str | None:
        owner = self.redis.hget(keys.meta(file_id), "owner")
        return None if owner is None else text(owner)

    def index_inbox(self, username: str, file_id: str, owner: str) -> None:
        self.redis.hset(keys.inbox(username), file_id, owner)

    def unindex_inbox(self, username: str, file_id: str) -> None:
        self.redis.hdel(keys.inbox(username), file_id)

    def rows(self, file_id: str) -> dict[str, str]:
        """The recipients hash as stored: account id -> username, and any name row (username -> created_at)."""
        return {text(k): text(v) for k, v in self.redis.hgetall(keys.recipients(file_id)).items()}

    def recipients(self, file_id: str) -> dict[str, str]:
        """Each row -> the username it lists (a name row's own field)."""
        return {field: row_name(field, value) for field, value in self.rows(file_id).items()}

    def may_read(self, file_id: str, uid: str, username: str = "") -> bool:
        """The account ``uid`` is a recipient (or ``username``, its name, has a name row) and the file exists."""
        if not uid:
            return False
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(keys.recipients(file_id))
            pipe.exists(keys.meta(file_id))
            raw, exists = pipe.execute()
        rows = {text(k): text(v) for k, v in raw.items()}
        shared = is_account_row(uid, rows.get(uid, "")) or (bool(username) and any(legacy_name(f, v) == username for f, v in rows.items()))
        return shared and bool(exists)

    def inbox(self, user: str) -> dict[str, str]:
        return {text(k): text(v) for k, v in self.redis.hgetall(keys.inbox(user)).items()}

    def forget_inbox(self, user: str, file_ids: list[str]) -> None:
        if file_ids:
            self.redis.hdel(keys.inbox(user), *file_ids)

    # -- a file is gone ----------------------------------------------------------------
    def purge_file(self, file_id: str) -> int:
        """Remove every link and recipient of a (deleted) file; how many shares there were."""
        links: list[str] = []
        rows: list = []
        for _ in range(PURGE_ROUNDS):  # a share listed after its ids were read is purged by the next round
            sids = [text(s) for s in self.redis.hkeys(keys.shares(file_id))]
            call_keys = [keys.shares(file_id), keys.recipients(file_id), *(keys.share(file_id, s) for s in sids)]
            removed, found, left = self.scripts["share_purge"](keys=call_keys, args=sids)
            links += [text(x) for x in removed]
            rows += found
            if not int(left):
                break
        for i in range(0, len(links), 3):
            sid, token_sha256, owner = links[i : i + 3]
            if token_sha256:
                self.redis.delete(keys.link(token_sha256))
            if owner:
                self.redis.hdel(keys.user_links(owner), sid)
        rows = [text(x) for x in rows]
        for field, value in zip(rows[0::2], rows[1::2]):
            self.redis.hdel(keys.inbox(row_name(field, value)), file_id)
            if legacy_name(field, value) and field != row_name(field, value):
                self.redis.hdel(keys.inbox(field), file_id)
        return len(links) // 3 + len(rows) // 2
