"""Where the files domain counts (FilesMetrics) and audits, for what runs without Lua (fakeredis).

Uploads, completion, aborts, expiry, quotas and deletion run Lua scripts: their counts, the audit
of deletes and GET /internal/stats are tested against a real Redis in
tests/integration/files/test_metrics_and_stats.py.  Here: reads (downloaded bytes, storage
failures), the checks made before any script (client checksums) and the app's wiring.
"""

from collections import Counter
from collections.abc import Iterable
from typing import cast

import fakeredis
import pytest

from redfile_common.app import redfile
from redfile_common.audit import NullAuditLog
from redfile_common.errors import ApiError
from redfile_common.product_metrics import FilesMetrics, files_metrics
from redfile_dev.testing import settings_overrides
from redfile_files import create_app
from redfile_files.catalogue.downloads import download_response
from redfile_files.crypto import ChunkCorrupt
from redfile_files.domain import FilesDomain, build_domain, files_domain
from redfile_files.settings import FilesSettings
from redfile_files.storage import keys

from .test_domain import ALICE, seed_file


class RecordingMetrics:
    """Stands in for FilesMetrics and remembers each call: (method, *args) -> times."""

    def __init__(self) -> None:
        self.calls: Counter = Counter()

    def __getattr__(self, name):
        if not callable(getattr(FilesMetrics, name, None)) or name.startswith("_"):
            raise AttributeError(name)  # only FilesMetrics' own methods: a typo fails the test
        return lambda *args: self.calls.update([(name, *args)])


@pytest.fixture
def r():
    return fakeredis.FakeRedis()


@pytest.fixture
def metrics():
    return RecordingMetrics()


def make_domain(r, metrics, **overrides) -> FilesDomain:
    settings = FilesSettings(**settings_overrides("redis://unused:1/0", max_chunk_bytes=8, max_single_upload_bytes=16, **overrides))
    domain = build_domain(settings, r, clock=lambda: 1_764_000_000.0, metrics=metrics)
    domain.storage.lifecycle.sweep_user = lambda *a, **k: 0  # type: ignore[method-assign]  # a Lua script
    return domain


@pytest.fixture
def domain(r, metrics):
    return make_domain(r, metrics)


@pytest.fixture
def service(domain):
    return domain.catalogue


def code(fn, *args, **kwargs) -> str:
    with pytest.raises(ApiError) as err:
        fn(*args, **kwargs)
    return err.value.code


def test_the_app_builds_its_metrics_at_start_and_hands_them_and_the_audit_trail_to_the_domain():
    app = create_app(**settings_overrides("redis://unused:1/0"))
    with app.app_context():
        domain = files_domain()
    fm = files_metrics(app)
    assert domain.catalogue.metrics is fm and domain.uploads.metrics is fm and domain.storage.lifecycle.metrics is fm
    assert domain.reader.metrics is fm and domain.tus.core.metrics is fm and domain.sweeper.metrics is fm
    assert domain.verifier.metrics is not fm  # the consistency check's reads are not downloads
    assert domain.catalogue.audit is redfile(app).audit
    registry = app.extensions["redfile_metrics"].registry
    value = lambda name, **labels: registry.get_sample_value(name, {"service": "files", **labels})  # noqa: E731
    for event in ("started", "completed", "aborted", "expired"):
        assert value("redfile_files_upload_events_total", event=event) == 0
    for source in ("client", "storage"):
        assert value("redfile_files_checksum_failures_total", source=source) == 0
    for name in ("uploaded_bytes", "downloaded_bytes", "chunks_stored", "quota_rejections", "share_downloads"):
        assert value(f"redfile_files_{name}_total") == 0
    # the gauge appears with its first count (a 0 set at start would hide another worker's count)
    assert value("redfile_files_active_uploads") is None


def test_domain_objects_built_without_metrics_or_audit_count_and_audit_nothing(r):
    settings = FilesSettings(**settings_overrides("redis://unused:1/0"))
    domain = build_domain(settings, r)
    service = domain.catalogue
    assert isinstance(service.metrics, FilesMetrics) and service.metrics._registry is None
    assert domain.uploads.metrics is service.metrics and domain.storage.lifecycle.metrics is service.metrics
    assert isinstance(service.audit, NullAuditLog)


def test_downloaded_bytes_are_counted_piece_by_piece(service, r, metrics, domain):
    fid = seed_file(r, 1, chunks=(b"hello", b" wor", b"ld"))
    record = service.get_file(ALICE, fid)
    assert b"".join(domain.reader.read_chunks(record)) == b"hello world"
    assert metrics.calls == Counter({("bytes_downloaded", 5): 1, ("bytes_downloaded", 4): 1, ("bytes_downloaded", 2): 1})
    metrics.calls.clear()
    assert b"".join(domain.reader.read_chunks(record, 3, 7)) == b"lo w"  # a range counts what it sends
    assert metrics.calls == Counter({("bytes_downloaded", 2): 2})


def test_a_download_that_stops_early_counts_only_what_was_handed_out(service, r, metrics, domain):
    fid = seed_file(r, 1, chunks=(b"abc", b"def"))
    pieces = domain.reader.read_chunks(service.get_file(ALICE, fid))
    assert next(pieces) == b"abc"
    pieces.close()
    assert metrics.calls == Counter({("bytes_downloaded", 3): 1})


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_stored_data_that_fails_its_check_is_counted_once_as_storage(service, r, metrics, damage, domain):
    fid = seed_file(r, 1, chunks=(b"abc", b"def"))
    if damage == "missing":
        r.delete(keys.chunk(fid, 0, "", keys.LEGACY))
    else:
        r.set(keys.chunk(fid, 0, "", keys.LEGACY), b"abX")
    record = service.get_file(ALICE, fid)
    # the first chunk is read before any header: a clean stored_data_corrupt
    assert code(download_response, record, domain.reader.read_chunks(record)) == "stored_data_corrupt"
    assert metrics.calls == Counter({("checksum_failure", "storage"): 1})


def test_a_later_chunk_that_fails_cuts_the_stream_and_is_counted(service, r, metrics, domain):
    fid = seed_file(r, 1, chunks=(b"abc", b"def"))
    r.set(keys.chunk(fid, 1, "", keys.LEGACY), b"deX")
    record = service.get_file(ALICE, fid)
    body = iter(cast("Iterable[bytes]", download_response(record, domain.reader.read_chunks(record)).response))
    assert next(body) == b"abc"
    with pytest.raises(ChunkCorrupt):
        next(body)
    assert metrics.calls == Counter({("bytes_downloaded", 3): 1, ("checksum_failure", "storage"): 1})


def test_a_corrupt_text_is_stored_data_corrupt_and_counted(service, r, metrics):
    fid = seed_file(r, 1, chunks=(b"note", b"s"), kind="text")
    r.set(keys.chunk(fid, 1, "", keys.LEGACY), b"S")
    assert code(service.read_text, ALICE, fid) == "stored_data_corrupt"
    assert metrics.calls[("checksum_failure", "storage")] == 1


def test_a_file_key_that_does_not_open_is_counted_as_storage(service, r, metrics, domain):
    fid = seed_file(r, 1)
    r.hset(keys.meta(fid), "dek", "gone:AAAA")  # wrapped by a master key no longer configured
    assert code(domain.reader.read_chunks, service.get_file(ALICE, fid)) == "stored_data_corrupt"
    assert metrics.calls == Counter({("checksum_failure", "storage"): 1})


def test_client_checksums_that_do_not_match_are_counted_before_anything_is_stored(service, r, metrics, domain):
    import hashlib

    from redfile_files.checksums import part_of

    assert (
        code(domain.uploads.receive_seed_chunk, "alice", file_id=None, index=0, total_chunks=1, data=b"x", sha256="0" * 64)
        == "checksum_mismatch"
    )
    part = part_of(b"abc")
    assert code(domain.uploads.put, "alice", "a" * 32, 0, b"abc", part, crc32c="00000000") == "checksum_mismatch"
    assert (
        code(domain.uploads.put, "alice", "a" * 32, 0, b"abc", part, sha256=hashlib.sha256(b"abc").hexdigest()) == "upload_not_found"
    )  # a match passes
    assert metrics.calls == Counter({("checksum_failure", "client"): 2})
    assert r.dbsize() == 0


def test_refusals_before_any_script_count_nothing(service, r, metrics, domain):
    assert (
        code(domain.uploads.receive_seed_chunk, "alice", file_id=None, index=0, total_chunks=1, data=b"x" * 9, sha256=None)
        == "payload_too_large"
    )
    assert code(service.create_file, "alice", b"x" * 17, name="a", mime_type=None) == "payload_too_large"
    assert code(service.create_text, "alice", "x", name="a/b") == "invalid_name"
    assert metrics.calls == Counter()
