"""Service-to-service calls are timed by target, method and status, and failures counted by reason."""

import pytest
from prometheus_client import CollectorRegistry
from werkzeug.wrappers import Response

from redfile_common.errors import ApiError
from redfile_common.product_metrics import CommonMetrics
from redfile_common.service_client import ServiceClient
from redfile_common.settings import SigningKey
from redfile_common.tokens import Keyring, ServiceTokens
from redfile_dev.redis_server import free_port

KEY = SigningKey("s1", b"s" * 40)


def answering(status: int, body: bytes = b'{"ok": true}'):
    def app(environ, start_response):
        return Response(body, status=status, content_type="application/json")(environ, start_response)

    return app


class Measured:
    """Service clients of admin counting into one registry: ``measured(url)`` makes one, ``value`` reads a metric."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()

    def __call__(self, url: str, target: str = "files") -> ServiceClient:
        return ServiceClient(
            ServiceTokens(Keyring([KEY]), service_name="admin"),
            {target: url},
            timeout=2,
            retries=0,
            metrics=CommonMetrics("admin", self.registry),
        )

    def value(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, {"service": "admin", **labels}) or 0.0


@pytest.fixture
def measured() -> Measured:
    return Measured()


def test_a_good_call_is_timed_by_status(serve, measured):
    c = measured(serve(answering(200)))
    for _ in range(3):
        assert c.call("files", "get", "/internal/stats") == {"ok": True}
    assert measured.value("redfile_service_call_duration_seconds_count", target="files", method="GET", status="200") == 3
    assert measured.value("redfile_service_call_errors_total", target="files", reason="status_5xx") == 0


@pytest.mark.parametrize(
    "status, body, reason",
    [
        (500, b'{"error": {"code": "internal_error", "message": "x"}}', "status_5xx"),
        (401, b'{"error": {"code": "invalid_token", "message": "x"}}', "refused"),
        (200, b"not json", "bad_response"),
    ],
)
def test_failures_are_counted_by_reason(serve, measured, status, body, reason):
    c = measured(serve(answering(status, body)))
    with pytest.raises(ApiError):
        c.call("files", "GET", "/internal/stats")
    assert measured.value("redfile_service_call_errors_total", target="files", reason=reason) == 1
    assert measured.value("redfile_service_call_duration_seconds_count", target="files", method="GET", status=str(status)) == 1


def test_an_unreachable_target_is_status_error(measured):
    c = measured(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ApiError) as exc:
        c.call("files", "GET", "/internal/stats")
    assert exc.value.code == "bad_gateway"
    assert measured.value("redfile_service_call_errors_total", target="files", reason="unreachable") == 1
    assert measured.value("redfile_service_call_duration_seconds_count", target="files", method="GET", status="error") == 1
