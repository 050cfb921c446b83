"""The services' own metrics: names, bounded labels, null groups, and exact sums across processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.multiprocess import MultiProcessCollector

from redfile_common.product_metrics import AuthMetrics, CommonMetrics, FilesMetrics, command_label


def value(registry, name, **labels):
    return registry.get_sample_value(name, labels) or 0.0


def test_each_group_counts_on_its_registry_with_the_service_label():
    registry = CollectorRegistry()
    common, auth, files = CommonMetrics("auth", registry), AuthMetrics("auth", registry), FilesMetrics("files", registry)
    common.redis_command("GET", 0.002)
    common.redis_command("EVALSHA", 0.001, error=KeyError("x"))
    common.service_call("files", "get", 200, 0.01)
    common.service_call("files", "get", None, 0.5)
    common.service_call_failed("files", "unreachable")
    common.token_rejected("expired", "access")
    common.security_event("login_failed")
    common.audit_written("login.succeeded")
    common.audit_failed()
    common.readiness(False)
    auth.login("success")
    auth.refresh("reuse")
    files.bytes_uploaded(1000)
    files.bytes_downloaded(700)
    files.chunk_stored()
    files.upload_started()
    files.upload_expired(3)
    files.set_active_uploads(5)
    files.checksum_failure("storage")
    files.quota_rejection()
    files.share_download()
    files.share_event("created")
    files.share_event("bogus")

    assert value(registry, "redfile_redis_command_duration_seconds_count", service="auth", command="GET") == 1
    assert value(registry, "redfile_redis_command_errors_total", service="auth", command="EVALSHA", error="KeyError") == 1
    assert value(registry, "redfile_service_call_duration_seconds_count", service="auth", target="files", method="GET", status="200") == 1
    assert value(registry, "redfile_service_call_duration_seconds_count", service="auth", target="files", method="GET", status="error") == 1
    assert value(registry, "redfile_service_call_errors_total", service="auth", target="files", reason="unreachable") == 1
    assert value(registry, "redfile_token_rejections_total", service="auth", kind="access", reason="expired") == 1
    assert value(registry, "redfile_security_events_total", service="auth", event="login_failed") == 1
    assert value(registry, "redfile_audit_events_total", service="auth", action="login.succeeded") == 1
    assert value(registry, "redfile_audit_write_failures_total", service="auth") == 1
    assert value(registry, "redfile_readiness_checks_total", service="auth", result="fail") == 1
    assert value(registry, "redfile_auth_logins_total", service="auth", result="success") == 1
    assert value(registry, "redfile_auth_refreshes_total", service="auth", result="reuse") == 1
    assert value(registry, "redfile_files_uploaded_bytes_total", service="files") == 1000
    assert value(registry, "redfile_files_downloaded_bytes_total", service="files") == 700
    assert value(registry, "redfile_files_chunks_stored_total", service="files") == 1
    assert value(registry, "redfile_files_upload_events_total", service="files", event="started") == 1
    assert value(registry, "redfile_files_upload_events_total", service="files", event="expired") == 3
    assert value(registry, "redfile_files_active_uploads", service="files") == 5
    assert value(registry, "redfile_files_checksum_failures_total", service="files", source="storage") == 1
    assert value(registry, "redfile_files_quota_rejections_total", service="files") == 1
    assert value(registry, "redfile_files_share_downloads_total", service="files") == 1
    assert value(registry, "redfile_files_share_events_total", service="files", event="created") == 1
    assert value(registry, "redfile_files_share_events_total", service="files", event="other") == 1


def test_known_label_values_exist_at_zero_from_the_start():
    registry = CollectorRegistry()
    AuthMetrics("auth", registry)
    FilesMetrics("files", registry)
    assert registry.get_sample_value("redfile_auth_logins_total", {"service": "auth", "result": "locked_out"}) == 0
    assert registry.get_sample_value("redfile_files_upload_events_total", {"service": "files", "event": "aborted"}) == 0
    assert registry.get_sample_value("redfile_files_checksum_failures_total", {"service": "files", "source": "client"}) == 0


def test_label_values_stay_bounded():
    registry = CollectorRegistry()
    auth, files = AuthMetrics("auth", registry), FilesMetrics("files", registry)
    auth.login("password-typed-as-result")
    files.checksum_failure("anything")
    assert value(registry, "redfile_auth_logins_total", service="auth", result="other") == 1
    assert value(registry, "redfile_files_checksum_failures_total", service="files", source="other") == 1
    assert command_label(("GET", "k")) == "GET"
    assert command_label((b"hset", "k")) == "HSET"
    assert command_label(("CLIENT SETNAME", "x")) == "CLIENT"
    assert command_label(("user-data; DROP", "x")) == "OTHER"
    assert command_label(()) == "OTHER"


def test_null_groups_accept_every_call_and_register_nothing():
    for group in (CommonMetrics.null(), AuthMetrics.null(), FilesMetrics.null()):
        for name in dir(group):
            if not name.startswith("_") and callable(getattr(group, name)) and name != "null":
                method = getattr(group, name)
                args = {
                    "redis_command": ("GET", 0.1),
                    "service_call": ("auth", "GET", 200, 0.1),
                    "service_call_failed": ("auth", "x"),
                    "token_rejected": ("expired", "access"),
                    "security_event": ("login_failed",),
                    "audit_written": ("logout",),
                    "readiness": (True,),
                    "breaker_changed": ("closed", "open"),
                    "login": ("success",),
                    "refresh": ("success",),
                    "bytes_uploaded": (1,),
                    "bytes_downloaded": (1,),
                    "upload_expired": (1,),
                    "set_active_uploads": (1,),
                    "checksum_failure": ("client",),
                    "share_event": ("used",),
                }.get(name, ())
                method(*args)


def test_every_gauge_says_how_workers_combine():
    registry = CollectorRegistry()
    for group in (CommonMetrics("s", registry), AuthMetrics("s", registry), FilesMetrics("s", registry)):
        for attr in vars(group).values():
            if isinstance(attr, Gauge):
                assert attr._multiprocess_mode != "all", attr._name


WORKER = textwrap.dedent(
    """
    import sys
    from prometheus_client import CollectorRegistry
    from redfile_common.product_metrics import CommonMetrics, FilesMetrics
    files = FilesMetrics("files", CollectorRegistry())
    common = CommonMetrics("files", CollectorRegistry())
    n = int(sys.argv[1])
    for _ in range(n):
        files.bytes_uploaded(10)
        files.upload_started()
        common.redis_command("GET", 0.001)
    files.set_active_uploads(int(sys.argv[2]))
    """
)


def test_workers_add_up_exactly_and_the_active_uploads_gauge_is_the_latest(tmp_path):
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    for n, active in ((7, 3), (5, 9)):  # two "workers", one after the other
        subprocess.run([sys.executable, "-c", WORKER, str(n), str(active)], env=env, check=True, timeout=60)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    assert registry.get_sample_value("redfile_files_uploaded_bytes_total", {"service": "files"}) == 120
    assert registry.get_sample_value("redfile_files_upload_events_total", {"service": "files", "event": "started"}) == 12
    assert registry.get_sample_value("redfile_redis_command_duration_seconds_count", {"service": "files", "command": "GET"}) == 12
    assert registry.get_sample_value("redfile_files_active_uploads", {"service": "files"}) == 9


@pytest.mark.parametrize("n", [-5, 0])
def test_non_positive_amounts_are_ignored(n):
    registry = CollectorRegistry()
    files = FilesMetrics("files", registry)
    files.bytes_uploaded(n)
    files.upload_expired(n)
    assert value(registry, "redfile_files_uploaded_bytes_total", service="files") == 0
