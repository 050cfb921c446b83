import pytest

from redfile_common.tracing import TracingConfigError, requested_exporters

OTEL_VARS = (
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in OTEL_VARS:
        monkeypatch.delenv(var, raising=False)


def test_off_when_nothing_asks(monkeypatch):
    assert requested_exporters() == []
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert requested_exporters() == []


def test_endpoint_alone_means_otlp_and_sdk_disabled_wins(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert requested_exporters() == ["otlp"]
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert requested_exporters() == []


def test_exporters_by_name(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console,otlp")
    assert requested_exporters() == ["console", "otlp"]


@pytest.mark.parametrize("var,value", [("OTEL_TRACES_EXPORTER", "zipkin"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])
def test_what_is_not_installed_stops_the_start(monkeypatch, var, value):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv(var, value)
    with pytest.raises(TracingConfigError):
        requested_exporters()
