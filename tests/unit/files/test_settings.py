import pytest

from redfile_common.settings import SettingsError, load_settings
from redfile_dev.testing import settings_overrides
from redfile_files.settings import GIB, MIB, FilesSettings


def test_defaults():
    s = load_settings(FilesSettings, settings_overrides("redis://127.0.0.1:1/0"))
    assert (s.max_chunk_bytes, s.max_chunks, s.max_file_bytes) == (8 * MIB, 100_000, 10 * GIB)
    assert (s.upload_ttl, s.max_single_upload_bytes, s.max_name_bytes) == (86_400, 8 * MIB, 255)
    assert s.max_request_bytes == 8 * MIB * 4 // 3 + 64 * 1024


def test_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("MAX_CHUNK_BYTES", "1024")
    monkeypatch.setenv("UPLOAD_TTL", "60")
    s = load_settings(FilesSettings, settings_overrides("redis://127.0.0.1:1/0"))
    assert s.max_chunk_bytes == 1024 and s.upload_ttl == 60


@pytest.mark.parametrize("bad", [{"max_chunk_bytes": 0}, {"upload_ttl": 1}, {"max_chunk_bytes": 2048, "max_file_bytes": 1024}])
def test_nonsense_limits_are_refused(bad):
    with pytest.raises(SettingsError):
        load_settings(FilesSettings, settings_overrides("redis://127.0.0.1:1/0", **bad))
