"""The files service's domain, put together once per app: what every route calls (``files_domain()``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redfile_common.app import domain_of
from redfile_common.product_metrics import FilesMetrics
from redfile_files.catalogue.reader import Reader
from redfile_files.catalogue.service import Catalogue
from redfile_files.crypto import Encryption, parse_master_keys
from redfile_files.maintenance.consistency import ConsistencyChecker
from redfile_files.maintenance.sweeper import Sweeper
from redfile_files.settings import FilesSettings
from redfile_files.sharing.directory import Directory
from redfile_files.sharing.service import Sharing
from redfile_files.storage import Storage
from redfile_files.tus.core import TusCore
from redfile_files.tus.engine import TusUploads
from redfile_files.uploads.completion import Completion
from redfile_files.uploads.service import Uploads

if TYPE_CHECKING:
    import redis


@dataclass
class FilesDomain:
    settings: FilesSettings
    storage: Storage
    encryption: Encryption
    uploads: Uploads
    completion: Completion
    reader: Reader
    catalogue: Catalogue
    tus: TusUploads
    sharing: Sharing
    sweeper: Sweeper
    verifier: Reader  # reads files back for the consistency check: counts nothing (verifying is not downloading)

    def consistency_checker(self) -> ConsistencyChecker:
        return ConsistencyChecker(self.storage, self.verifier)


def build_domain(
    settings: FilesSettings,
    client: redis.Redis,
    *,
    metrics: FilesMetrics | None = None,
    audit=None,
    clock: Callable[[], float] = time.time,
    directory: Directory | None = None,
) -> FilesDomain:
    """Every part of the files service on one Redis client; ``metrics`` and ``audit`` default to null ones, ``directory``
    (who a username is: auth over HTTP) to one without auth."""
    metrics = metrics or FilesMetrics.null()
    storage = Storage.open(client, settings, metrics=metrics, clock=clock)
    encryption = Encryption(parse_master_keys(settings.encryption_keys))
    uploads = Uploads(storage.lifecycle, encryption, settings, clock, metrics=metrics)
    completion = Completion(uploads)
    reader = Reader(storage.files, encryption, metrics)
    catalogue = Catalogue(
        uploads, completion, reader, storage.ledger, settings, clock=clock, metrics=metrics, audit=audit, listings=storage.listings
    )
    core = TusCore(storage.lifecycle, uploads, completion, catalogue, reader, encryption, settings, clock=clock, metrics=metrics)
    return FilesDomain(
        settings=settings,
        storage=storage,
        encryption=encryption,
        uploads=uploads,
        completion=completion,
        reader=reader,
        catalogue=catalogue,
        tus=TusUploads(core),
        sharing=Sharing(catalogue, reader, storage.shares, directory or Directory()),
        sweeper=Sweeper(storage.lifecycle, storage.ledger, settings.sweep_interval, metrics),
        verifier=Reader(storage.files, encryption),
    )


def files_domain() -> FilesDomain:
    """The current app's domain."""
    return domain_of(FilesDomain)
