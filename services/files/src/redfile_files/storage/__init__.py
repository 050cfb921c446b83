"""The files service's storage: the only code of the service that talks to Redis.

``keys`` builds (and parses) every key; ``files`` is the file slot (an upload's or a file's keys),
``ledger`` the user slot and the global index, ``tus`` and ``shares`` their scripts in the file
slot; ``lifecycle`` is the protocol that spans the slots (open, put/append, commit, discard,
delete, reconcile); ``listing`` reads pages of the owner's name and size indexes; ``inspect`` and ``datakeys`` are the read-only walks and the data-key swap of
the operators' tools.  The Lua scripts are in ``lua/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from redfile_common.product_metrics import FilesMetrics
from redfile_files.settings import FilesSettings
from redfile_files.storage.datakeys import DataKeys
from redfile_files.storage.files import FileStore
from redfile_files.storage.inspect import Inspector
from redfile_files.storage.ledger import Ledger
from redfile_files.storage.lifecycle import Lifecycle
from redfile_files.storage.listing import Listings
from redfile_files.storage.shares import ShareStore
from redfile_files.storage.tus import TusStore

StorageError = redis.RedisError  # what a Redis failure raises, for code outside storage to catch


@dataclass(frozen=True)
class Storage:
    client: redis.Redis
    files: FileStore
    ledger: Ledger
    tus: TusStore
    shares: ShareStore
    lifecycle: Lifecycle
    inspect: Inspector
    data_keys: DataKeys
    listings: Listings

    @classmethod
    def open(
        cls, client: redis.Redis, settings: FilesSettings, *, metrics: FilesMetrics | None = None, clock: Callable[[], float] = time.time
    ) -> Storage:
        files = FileStore(client, upload_ttl=settings.upload_ttl, max_file_bytes=settings.max_file_bytes)
        ledger = Ledger(client, default_quota=settings.default_quota_bytes, default_max_file=settings.max_file_bytes)
        tus = TusStore(client, upload_ttl=settings.upload_ttl, max_file_bytes=settings.max_file_bytes)
        lifecycle = Lifecycle(files, ledger, tus, batch=settings.sweep_batch, metrics=metrics, clock=clock)
        return cls(
            client,
            files,
            ledger,
            tus,
            ShareStore(client, password_window=settings.share_password_window, password_slowdown_max=settings.share_password_slowdown_max),
            lifecycle,
            Inspector(client),
            DataKeys(client),
            Listings(client),
        )
