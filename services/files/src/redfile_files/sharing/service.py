"""Sharing, without HTTP: share links (token URLs) and read-only shares with named users.

* A **link** is an unguessable token (256 random bits, URL-safe base64) that
  works without an account.  Only its SHA-256 is stored, so a copy of Redis
  holds no working link.  Options: an argon2id password (wrong: 401; limited
  per client, slowed per link: ``_check_password``), an expiry, a maximum number
  of downloads, inline preview, and for texts burn-after-read.
* Every download through a link first **reserves** itself in one Lua script in
  the file's slot (exists, not expired, not used up, count +1), before a byte is
  sent: of N simultaneous downloads of a one-download link exactly one wins.
  A HEAD, a 304 and the metadata do not count, and one transfer counts once: a
  counted download gives its client (by address) a resume allowance of the
  file's size for ``share_resume_window`` seconds, which ranges that do not
  start at byte 0 spend instead of counting (even once the link is used up).
* Unknown and revoked links are 404; expired and used-up ones 410 (while the
  owner keeps them); a deleted file takes every share of it along.  Answers
  about a link name only the link's own file, never another file or user.
* **Named users**: the owner adds recipients by username; the name is looked up
  in auth (``Directory``: an unknown one is 404 ``user_not_found``) and the share
  is bound to the account's immutable id, which the recipient's access token
  carries (``uid``).  Each reads the file (``shared with me``) until removed or
  deleted; a name deleted and created again is another account and inherits
  nothing.

Every action is a log event, an audit record (``share.created``, ``share.revoked``, ``share.used`` --
target: the share id, never the token) and a count in ``redfile_files_share_events_total``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import replace

import structlog

from redfile_common.errors import ApiError
from redfile_common.fields import USERNAME_PATTERN
from redfile_common.limiter import Refused, client_id
from redfile_files.catalogue.reader import Reader
from redfile_files.catalogue.service import Catalogue
from redfile_files.records import FileRecord, FileUpload, iso
from redfile_files.sharing.directory import Account, Directory, uid_of
from redfile_files.sharing.model import TOKEN_RE, LinkView, OpenedLink, client_key, password_hasher, token_hash
from redfile_files.storage.shares import ShareStore

log = structlog.get_logger("redfile.files")

USERNAME_RE = re.compile(USERNAME_PATTERN)  # the account rules (auth's), as the documents state them


class Sharing:
    def __init__(self, catalogue: Catalogue, reader: Reader, store: ShareStore, directory: Directory) -> None:
        self.catalogue = catalogue  # files, settings, clock, metrics, audit
        self.reader = reader
        self.store = store
        self.directory = directory  # username -> account id, asked of auth
        self.settings = catalogue.settings
        catalogue.on_deleted.append(self._file_deleted)

    def _own(self, actor, file_id: str) -> FileRecord:
        """The caller's own file (admins included: sharing is the owner's act); else 404."""
        record = self.catalogue.get_file(actor, file_id)
        if record.owner != actor.username:
            raise ApiError("file_not_found")
        return record

    # -- links -------------------------------------------------------------------
    def create_link(
        self,
        actor,
        file_id: str,
        *,
        password: str | None = None,
        expires_ts: int | None = None,
        max_downloads: int | None = None,
        preview: bool = True,
        burn_after_read: bool = False,
        visibility: str = "public",
    ) -> tuple[LinkView, str]:
        if expires_ts is not None and expires_ts <= self.catalogue.clock():
            raise ApiError("validation_error", details={"expires_at": ["must be in the future"]})
        record = self._own(actor, file_id)
        if burn_after_read:
            if record.kind != "text":
                raise ApiError("validation_error", "Only a text can be burnt after reading.", details={"burn_after_read": ["texts only"]})
            max_downloads = 1
        token = secrets.token_urlsafe(32)
        now = self.catalogue.clock()
        fields = {
            "id": secrets.token_hex(16),
            "file_id": record.id,
            "owner": record.owner,
            "token_sha256": token_hash(token),
            "password": password_hasher().hash(password) if password else "",
            "expires_ts": int(expires_ts or 0),
            "max_downloads": int(max_downloads or 0),
            "downloads": 0,
            "preview": "1" if preview else "0",
            "burn": "1" if burn_after_read else "0",
            "created_at": iso(now),
            "visibility": visibility,
        }
        if not self.store.create_link(fields, file_expires_ts=record.expires_ts):
            raise ApiError("file_not_found")
        view = LinkView.of(fields | {"downloads": "0"}, now)
        log.info(
            "share_created",
            share_id=view.id,
            file_id=record.id,
            owner=record.owner,
            kind="link",
            password=view.password,
            expires_at=view.expires_at,
            max_downloads=view.max_downloads,
        )
        self.catalogue.audit.record(
            "share.created", actor=actor.username, user=record.owner, target=view.id, kind="link", file_id=record.id
        )
        self.catalogue.metrics.share_event("created")
        return view, token

    def list_links(self, owner: str, file_id: str | None = None) -> list[LinkView]:
        """The owner's links (of one file, or all), newest first; index entries of vanished links are dropped."""
        index = self.store.owner_links(owner)
        pairs = [(fid, sid) for sid, fid in index.items() if file_id is None or fid == file_id]
        rows = self.store.get_links(pairs)
        exists = self.catalogue.store.alive([fid for fid, _ in pairs]) if pairs else []
        now = self.catalogue.clock()
        views, stale = [], []
        for (_fid, sid), row, ok in zip(pairs, rows, exists):
            if row is None or not ok:
                stale.append(sid)
            else:
                views.append(LinkView.of(row, now))
        self.store.forget_owner_links(owner, stale)
        return sorted(views, key=lambda v: (v.created_at, v.id), reverse=True)

    def revoke(self, actor, share_id: str) -> None:
        fid = self.store.owner_links(actor.username).get(share_id) if re.fullmatch(r"[0-9a-f]{32}", share_id or "") else None
        row = self.store.get_link(fid, share_id) if fid else None
        if fid is None or row is None or row.get("owner") != actor.username:
            raise ApiError("share_not_found")
        self.store.revoke(fid, share_id, row.get("token_sha256", ""), actor.username)
        log.info("share_revoked", share_id=share_id, file_id=fid, owner=actor.username)
        self.catalogue.audit.record("share.revoked", actor=actor.username, user=actor.username, target=share_id, kind="link", file_id=fid)
        self.catalogue.metrics.share_event("revoked")

    def open_link(
        self,
        token: str,
        password: str | None,
        *,
        reserve: bool,
        check_password: bool = True,
        viewer=None,
        client: str = "unknown",
        download: bool = False,
    ) -> OpenedLink:
        """The link's file, after its checks; with ``reserve``, one download is counted (atomically) first.

        ``client`` is the caller's address: its wrong passwords are counted on their own, and with ``download`` a
        used-up link still opens for it while its resume allowance lasts (the link's metadata and QR code do not)."""
        if not TOKEN_RE.match(token or ""):
            raise ApiError("share_not_found")
        digest = token_hash(token)
        found = self.store.resolve(digest)
        if found is None:
            raise ApiError("share_not_found")
        fid, sid = found
        who = client_key(self.settings.app_secret_key, client)
        state, _, _ = self.store.use_link(fid, sid, digest, reserve=False, client=who, download=download)
        self._raise_for(state)
        row = self.store.get_link(fid, sid)
        if row is None:
            raise ApiError("share_not_found")
        if row.get("visibility") == "private" and not self._may_view(row, viewer):
            raise ApiError("share_not_found")  # a private link is a missing one to everybody else (its QR code too)
        if row.get("password") and check_password:
            self._check_password(digest, row, password, client)
        meta = self.catalogue.store.get_meta(fid)
        if meta is None:
            raise ApiError("share_not_found")
        opened = OpenedLink(
            FileRecord.from_meta(meta), LinkView.of(row, self.catalogue.clock()), int(row.get("downloads") or 0), digest, who
        )
        return self.reserve(opened) if reserve else opened

    def reserve(self, opened: OpenedLink, span: tuple[int, int] | None = None) -> OpenedLink:
        """Count one download of an opened link, atomically (exists, not expired, not used up); else 404/410.

        One transfer counts once: a ``span`` that does not start at byte 0 is a resume, free while this client's
        allowance from its counted download (the file's size, for ``SHARE_RESUME_WINDOW`` seconds) covers it."""
        state, downloads, how = self.store.use_link(
            opened.link.file_id,
            opened.link.id,
            opened.digest,
            reserve=True,
            client=opened.client,
            span=span or (0, opened.record.size),
            size=opened.record.size,
            window=self.settings.share_resume_window,
        )
        self._raise_for(state)
        return replace(opened, downloads=downloads, resumed=how == "resumed")

    def _may_view(self, row: dict, viewer) -> bool:
        """A private link opens for its owner and the file's recipients.

        ``viewer`` is called only for a private link (so a public one ignores any credentials) and
        returns the caller (a principal), or None when anonymous.
        """
        user = viewer() if viewer is not None else None
        return user is not None and (user.username == row["owner"] or self.store.may_read(row["file_id"], uid_of(user), user.username))

    def _raise_for(self, state: str) -> None:
        if state == "missing":
            raise ApiError("share_not_found")
        if state in ("expired", "used_up"):
            self.catalogue.metrics.share_event("gone")
            raise ApiError("share_gone", details={"reason": state})

    def _check_password(self, digest: str, row: dict, password: str | None, client: str) -> None:
        """argon2 runs only while this client's wrong passwords on the link are under the limit, and past the
        link's ceiling only once the client has waited (``redfile_common.limiter``: exact under concurrency on
        every replica; the link itself never locks, and a right password, however often, never counts)."""
        if not password:
            raise ApiError("share_password_required")
        limiter = self.store.passwords
        scopes, cooldown = self.store.password_scopes(
            digest,
            client_id(client),
            per_client=self.settings.share_password_max_failures,
            per_link=self.settings.share_password_max_failures_per_link,
        )
        try:
            attempt = limiter.begin(scopes, cooldown=cooldown)
        except Refused as refused:
            log.warning("share_password_locked", share_id=row["id"], busy=refused.busy, slowed=refused.slowed)
            self.catalogue.metrics.share_event("denied")
            raise ApiError(
                "too_many_requests", "Too many wrong passwords for this link; try again later.", headers=refused.headers
            ) from None
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            password_hasher().verify(row["password"], password)
        except (VerificationError, InvalidHashError):
            limiter.failed(attempt)
            log.info("share_password_wrong", share_id=row["id"])
            self.catalogue.metrics.share_event("denied")
            self.catalogue.audit.record(
                "share.used", actor="anonymous", user=row["owner"], target=row["id"], outcome="denied", reason="wrong_password"
            )
            raise ApiError("share_password_required", "Wrong password for this share link.") from None
        except BaseException:
            limiter.abandon(attempt)
            raise
        limiter.succeeded(attempt, forget={"client"})

    def used(self, opened: OpenedLink, *, ranged: bool) -> None:
        """A download through the link has started: log, audit, count; burn a burn-after-read text."""
        link, record = opened.link, opened.record
        log.info(
            "share_used",
            share_id=link.id,
            file_id=record.id,
            owner=record.owner,
            downloads=opened.downloads,
            ranged=ranged,
            resumed=opened.resumed,
        )
        self.catalogue.audit.record("share.used", actor="anonymous", user=record.owner, target=link.id, kind="link")
        self.catalogue.metrics.share_download()
        self.catalogue.metrics.share_event("used")

    def read_and_burn(self, opened: OpenedLink) -> tuple[OpenedLink, bytes]:
        """A burn-after-read text: its one download counted, read whole, then deleted (gone meanwhile: 404)."""
        opened = self.reserve(opened)
        data = self.reader.read_whole(opened.record, gone=ApiError("share_not_found"))
        self.used(opened, ranged=False)
        self.burn(opened)
        return opened, data

    def burn(self, opened: OpenedLink) -> None:
        if opened.link.burn_after_read:
            self.catalogue.remove(opened.record.owner, opened.record.id)
            log.info("share_burnt", share_id=opened.link.id, file_id=opened.record.id, owner=opened.record.owner)

    # -- named users ---------------------------------------------------------------
    def add_recipient(self, actor, file_id: str, username: str) -> list[str]:
        record = self._own(actor, file_id)
        self._share_with(actor, record, self._recipient(actor, username))
        return self.recipients(actor, file_id)

    def _recipient(self, actor, username: str) -> Account:
        """The account a share may go to: an existing one (else 404 ``user_not_found``), not the owner's own."""
        if not USERNAME_RE.match(username or "") or username == actor.username:
            raise ApiError("validation_error", "Not a username you can share with.", details={"username": ["invalid"]})
        account = self.directory.account(username)
        if account.username == actor.username or account.id == uid_of(actor):
            raise ApiError("validation_error", "Not a username you can share with.", details={"username": ["invalid"]})
        return account

    def _share_with(self, actor, record: FileRecord, account: Account) -> None:
        if not self.store.add_recipient(record.id, record.owner, account.id, account.username):
            raise ApiError("file_not_found")
        name = account.username
        log.info("share_created", file_id=record.id, owner=record.owner, kind="user", recipient=name)
        self.catalogue.audit.record(
            "share.created", actor=actor.username, user=record.owner, target=f"{record.id}:{name}", kind="user", recipient=name
        )
        self.catalogue.metrics.share_event("created")

    def remove_recipient(self, actor, file_id: str, username: str) -> None:
        record, username = self._own(actor, file_id), username.lower()  # as auth names the account it was shared with
        if not self.store.remove_recipient(record.id, username):
            raise ApiError("share_not_found")
        log.info("share_revoked", file_id=record.id, owner=record.owner, kind="user", recipient=username)
        self.catalogue.audit.record(
            "share.revoked", actor=actor.username, user=record.owner, target=f"{record.id}:{username}", kind="user", recipient=username
        )
        self.catalogue.metrics.share_event("revoked")

    def recipients(self, actor, file_id: str) -> list[str]:
        return sorted(set(self.store.recipients(self._own(actor, file_id).id).values()))

    def shared_with_me(self, user) -> list[FileRecord]:
        """Files shared with ``user`` (a principal), newest first; inbox entries of vanished or unshared files are dropped."""
        inbox = self.store.inbox(user.username)
        ids = list(inbox)
        metas = self.catalogue.store.get_metas(ids) if ids else []
        items, stale, uid = [], [], uid_of(user)
        for fid, meta in zip(ids, metas):  # a token with no account id reads nothing, and drops nothing either
            if meta is not None and uid and self.store.may_read(fid, uid, user.username):
                items.append(FileRecord.from_meta(meta))
            elif meta is None or uid:
                stale.append(fid)
        self.store.forget_inbox(user.username, stale)
        return sorted(items, key=lambda r: (r.created_ms, r.id), reverse=True)

    def shared_file(self, user, file_id: str) -> FileRecord:
        """A file shared with ``user`` (a principal: the account, by its id): exactly as missing (404) when it is not."""
        meta = self.catalogue.store.get_meta(file_id) if re.fullmatch(r"[0-9a-f]{32}", file_id or "") else None
        if meta is None or not self.store.may_read(file_id, uid_of(user), user.username):
            raise ApiError("file_not_found")
        return FileRecord.from_meta(meta)

    def recipient_used(self, user: str, record: FileRecord) -> None:
        log.info("share_used", file_id=record.id, owner=record.owner, kind="user", recipient=user)
        self.catalogue.audit.record("share.used", actor=user, user=record.owner, target=f"{record.id}:{user}", kind="user")
        self.catalogue.metrics.share_event("used")

    def send(self, actor, username: str, read: Callable[[], FileUpload]) -> FileRecord:
        """The seed's "send to": store a small file (``read()`` reads it, once the recipient is known to exist) as the
        sender's own and share it with that account."""
        account = self._recipient(actor, username)
        upload = read()
        record = self.catalogue.create_file(actor.username, upload.data, name=upload.name, mime_type=upload.mime_type, folder=upload.folder)
        self._share_with(actor, record, account)
        return record

    def forget_recipient(self, username: str) -> int:
        """A deleted account: off every file shared with it, its inbox gone; how many shares it had."""
        return self.store.forget_recipient(username)

    def zip_entries(self, actor, file_ids: list[str]) -> list[tuple[str, FileRecord]]:
        """The files of a zip, each the caller's own or shared with them (else 404), named uniquely within it."""
        records = []
        for fid in dict.fromkeys(file_ids):
            try:
                record = self.catalogue.get_file(actor, fid)
            except ApiError:
                record = self.shared_file(actor, fid)
            records.append(record)
        seen: set[str] = set()
        entries = []
        for record in records:
            name, n = record.name, 1
            while name in seen:
                n += 1
                stem, dot, ext = record.name.rpartition(".")
                name = f"{stem} ({n}).{ext}" if dot and stem else f"{record.name} ({n})"
            seen.add(name)
            entries.append((name, record))
        return entries

    # -- a file is gone -----------------------------------------------------------------
    def _file_deleted(self, file_id: str) -> None:
        try:
            n = self.store.purge_file(file_id)
        except Exception:  # the file is gone already; its shares answer 404 and indexes repair lazily
            log.exception("share_purge_failed", file_id=file_id)
            return
        if n:
            log.info("shares_removed", file_id=file_id, count=n)


__all__ = ["TOKEN_RE", "LinkView", "OpenedLink", "Sharing", "token_hash"]
