"""Redfile's own Prometheus metrics, beyond the per-request ones of ``metrics``.

Three groups, each an object with one method per thing that happens:

* ``CommonMetrics`` (every service; built by the app factory, ``redfile().metrics``):
  Redis commands, service-to-service calls, token rejections, security events,
  audit writes and readiness checks.
* ``AuthMetrics`` (auth): logins and refreshes by result.
* ``FilesMetrics`` (files): bytes in and out, chunks, uploads, checksums, quotas,
  share links.  ``files_metrics(app)`` builds it once per app.

Every metric carries a ``service`` label, like the request metrics, so one
query can cover all three services.  Known label values are created at start
(at 0), so ``rate()`` works from the first scrape.

Multiprocess (gunicorn, ``PROMETHEUS_MULTIPROC_DIR``): each worker writes its
samples to that directory and the master serves the merged view.  Counters
and histograms add up over workers by themselves; a gauge must say how its
workers' values combine: the one gauge here (active uploads) is a global
count read from Redis, so it uses ``mostrecent``, the value last set by any
worker.  A ``null()`` instance of each group counts nothing: domain code
takes one by default, so its unit tests need no registry.
"""

from __future__ import annotations

import re
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REDIS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Bounded label values: anything else becomes "other", so no request can mint a series.
LOGIN_RESULTS = ("success", "failure", "locked_out")
REFRESH_RESULTS = ("success", "invalid", "reuse")
UPLOAD_EVENTS = ("started", "completed", "aborted", "expired")
SHARE_EVENTS = ("created", "revoked", "used", "denied", "gone")
CHECKSUM_SOURCES = ("client", "storage")
READINESS_RESULTS = ("ok", "fail")
BREAKER_STATES = ("closed", "half_open", "open")  # the gauge's values 0, 1, 2
_COMMAND = re.compile(r"^[A-Z][A-Z_]{0,23}$")


class _Noop:
    """Stands in for a metric (or a labelled child of one) in a ``null()`` group."""

    def labels(self, *args: Any, **kwargs: Any) -> _Noop:
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def dec(self, amount: float = 1) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def observe(self, value: float) -> None:
        pass


_NOOP = _Noop()


class _Group:
    """Builds metrics on one registry, or no-ops when the registry is None."""

    def __init__(self, service: str, registry: CollectorRegistry | None) -> None:
        self.service = service
        self._registry = registry
        self._children: dict[tuple, Any] = {}

    def _make(self, kind, name: str, doc: str, labels: tuple[str, ...] = (), **kwargs: Any):
        if self._registry is None:
            return _NOOP
        return kind(name, doc, ("service", *labels), registry=self._registry, **kwargs)

    def _bound(self, metric, **labels: str):
        """``metric.labels(...)``, remembered: prometheus_client checks and locks on every call (several per request).
        It grows as the metric's own children do, one entry per label set ever used (all from the code's own
        names: commands, targets, reasons, events, error classes)."""
        key = (id(metric), *labels.items())
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(service=self.service, **labels)
        return child


def _one_of(value: str, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else "other"


def command_label(args: tuple) -> str:
    """``GET``, ``EVALSHA``, ``CLIENT`` (of ``CLIENT SETNAME``): the command's first word."""
    if not args:
        return "OTHER"
    first = args[0].decode(errors="replace") if isinstance(args[0], bytes) else str(args[0])
    word = first.split(" ", 1)[0].upper()
    return word if _COMMAND.match(word) else "OTHER"


class CommonMetrics(_Group):
    """What every service exports besides its requests."""

    def __init__(self, service: str, registry: CollectorRegistry | None) -> None:
        super().__init__(service, registry)
        self._redis_seconds = self._make(
            Histogram,
            "redfile_redis_command_duration_seconds",
            "Redis commands (a pipeline or MULTI counts once) by command, seconds, retries included.",
            ("command",),
            buckets=REDIS_BUCKETS,
        )
        self._redis_errors = self._make(
            Counter, "redfile_redis_command_errors", "Redis commands that raised, by command and error class.", ("command", "error")
        )
        self._call_seconds = self._make(
            Histogram,
            "redfile_service_call_duration_seconds",
            "Calls to another Redfile service, by target, method and answer status (error: no answer), seconds.",
            ("target", "method", "status"),
            buckets=CALL_BUCKETS,
        )
        self._call_errors = self._make(
            Counter,
            "redfile_service_call_errors",
            "Failed calls to another Redfile service, by target and reason (unreachable, refused, status_5xx, bad_response).",
            ("target", "reason"),
        )
        self._token_rejections = self._make(
            Counter, "redfile_token_rejections", "Tokens refused at verification, by kind (access/service) and reason.", ("kind", "reason")
        )
        self._security_events = self._make(
            Counter, "redfile_security_events", "Security events (each also a warning log line), by event.", ("event",)
        )
        self._audit_events = self._make(Counter, "redfile_audit_events", "Audit entries written, by action.", ("action",))
        self._audit_failures = self._make(
            Counter, "redfile_audit_write_failures", "Audit entries that could not be written to Redis (still logged)."
        )
        self._readiness = self._make(Counter, "redfile_readiness_checks", "/readyz answers, by result (ok/fail).", ("result",))
        for result in READINESS_RESULTS:
            self._bound(self._readiness, result=result)
        # per worker; the merged view shows the worst (livemax): 2 while any live worker's breaker is open
        self._breaker_state = self._make(
            Gauge,
            "redfile_redis_breaker_state",
            "The circuit breaker in front of Redis: 0 closed, 1 half open, 2 open (the most open of the live workers).",
            multiprocess_mode="livemax",
        )
        self._breaker_changes = self._make(
            Counter, "redfile_redis_breaker_transitions", "Changes of the Redis circuit breaker's state, by the state entered.", ("to",)
        )
        for state in BREAKER_STATES:
            self._bound(self._breaker_changes, to=state)
        self._bound(self._breaker_state).set(0)
        self._bound(self._audit_failures)

    @classmethod
    def null(cls, service: str = "test") -> CommonMetrics:
        return cls(service, None)

    def redis_command(self, command: str, seconds: float, error: BaseException | None = None) -> None:
        self._bound(self._redis_seconds, command=command).observe(seconds)
        if error is not None:
            self._bound(self._redis_errors, command=command, error=type(error).__name__).inc()

    def service_call(self, target: str, method: str, status: int | None, seconds: float) -> None:
        self._bound(self._call_seconds, target=target, method=method.upper(), status=str(status) if status else "error").observe(seconds)

    def service_call_failed(self, target: str, reason: str) -> None:
        self._bound(self._call_errors, target=target, reason=reason).inc()

    def token_rejected(self, reason: str, kind: str) -> None:
        """The signature of ``Redfile.on_token_rejected``."""
        self._bound(self._token_rejections, kind=kind, reason=reason).inc()

    def security_event(self, event: str) -> None:
        self._bound(self._security_events, event=event).inc()

    def audit_written(self, action: str) -> None:
        self._bound(self._audit_events, action=action).inc()

    def audit_failed(self) -> None:
        self._bound(self._audit_failures).inc()

    def readiness(self, ok: bool) -> None:
        self._bound(self._readiness, result="ok" if ok else "fail").inc()

    def breaker_changed(self, old: str, new: str) -> None:
        self._bound(self._breaker_changes, to=_one_of(new, BREAKER_STATES)).inc()
        self._bound(self._breaker_state).set(BREAKER_STATES.index(new) if new in BREAKER_STATES else 2)


class AuthMetrics(_Group):
    """Logins and refresh-token use (auth only)."""

    def __init__(self, service: str, registry: CollectorRegistry | None) -> None:
        super().__init__(service, registry)
        self._logins = self._make(Counter, "redfile_auth_logins", "Logins by result: success, failure, locked_out.", ("result",))
        self._refreshes = self._make(
            Counter, "redfile_auth_refreshes", "Refresh-token uses by result: success, invalid, reuse (family revoked).", ("result",)
        )
        for result in LOGIN_RESULTS:
            self._bound(self._logins, result=result)
        for result in REFRESH_RESULTS:
            self._bound(self._refreshes, result=result)

    @classmethod
    def null(cls, service: str = "auth") -> AuthMetrics:
        return cls(service, None)

    def login(self, result: str) -> None:
        self._bound(self._logins, result=_one_of(result, LOGIN_RESULTS)).inc()

    def refresh(self, result: str) -> None:
        self._bound(self._refreshes, result=_one_of(result, REFRESH_RESULTS)).inc()


class FilesMetrics(_Group):
    """What the files service counts.  Each method says when to call it."""

    def __init__(self, service: str, registry: CollectorRegistry | None) -> None:
        super().__init__(service, registry)
        self._uploaded = self._make(
            Counter, "redfile_files_uploaded_bytes", "Bytes of file data accepted (new chunks and one-request files)."
        )
        self._downloaded = self._make(
            Counter, "redfile_files_downloaded_bytes", "Bytes of file data sent in downloads (share links included)."
        )
        self._chunks = self._make(Counter, "redfile_files_chunks_stored", "Chunks newly stored (a retried identical chunk does not count).")
        self._uploads = self._make(
            Counter, "redfile_files_upload_events", "Chunked uploads by event: started, completed, aborted, expired.", ("event",)
        )
        self._active = self._make(
            Gauge, "redfile_files_active_uploads", "Uploads in progress, as last counted in Redis.", multiprocess_mode="mostrecent"
        )
        self._checksums = self._make(
            Counter,
            "redfile_files_checksum_failures",
            "Checksum mismatches: client (the data sent does not match its declared checksum), storage (stored data failed its check).",
            ("source",),
        )
        self._quota = self._make(Counter, "redfile_files_quota_rejections", "Requests refused because they would exceed the user's quota.")
        self._shares = self._make(Counter, "redfile_files_share_downloads", "Downloads through a share link.")
        self._share_events = self._make(
            Counter,
            "redfile_files_share_events",
            "Share actions: created, revoked, used (a download by link or recipient), denied (wrong password or locked), gone (410).",
            ("event",),
        )
        for metric in (self._uploaded, self._downloaded, self._chunks, self._quota, self._shares):
            self._bound(metric)
        for event in UPLOAD_EVENTS:
            self._bound(self._uploads, event=event)
        for event in SHARE_EVENTS:
            self._bound(self._share_events, event=event)
        for source in CHECKSUM_SOURCES:
            self._bound(self._checksums, source=source)

    @classmethod
    def null(cls, service: str = "files") -> FilesMetrics:
        return cls(service, None)

    def bytes_uploaded(self, n: int) -> None:
        """After a chunk (or a one-request file or text) is stored: its size in bytes."""
        if n > 0:
            self._bound(self._uploaded).inc(n)

    def bytes_downloaded(self, n: int) -> None:
        """As a download's bytes are sent (per chunk is fine): their number."""
        if n > 0:
            self._bound(self._downloaded).inc(n)

    def chunk_stored(self) -> None:
        """When a chunk is newly stored (not for an identical retry)."""
        self._bound(self._chunks).inc()

    def upload_started(self) -> None:
        self._bound(self._uploads, event="started").inc()

    def upload_completed(self) -> None:
        self._bound(self._uploads, event="completed").inc()

    def upload_aborted(self) -> None:
        """An upload cancelled by its owner (or removed with its owner)."""
        self._bound(self._uploads, event="aborted").inc()

    def upload_expired(self, n: int = 1) -> None:
        """Uploads found expired (idle past UPLOAD_TTL) by the sweeper or a request."""
        if n > 0:
            self._bound(self._uploads, event="expired").inc(n)

    def set_active_uploads(self, n: int) -> None:
        """The number of uploads in progress, as just counted in Redis."""
        self._bound(self._active).set(max(0, n))

    def checksum_failure(self, source: str) -> None:
        """``client``: sent data does not match its checksum; ``storage``: stored data failed its check."""
        self._bound(self._checksums, source=_one_of(source, CHECKSUM_SOURCES)).inc()

    def quota_rejection(self) -> None:
        self._bound(self._quota).inc()

    def share_download(self) -> None:
        """A download through a share link (its bytes go to ``bytes_downloaded`` too)."""
        self._bound(self._shares).inc()

    def share_event(self, event: str) -> None:
        """A share action (``SHARE_EVENTS``): a link or recipient created or revoked, a use, a denial, a 410."""
        self._bound(self._share_events, event=_one_of(event, SHARE_EVENTS)).inc()


def files_metrics(app) -> FilesMetrics:
    """The files service's metrics on the app's registry, made once per app."""
    return _group(app, "files", FilesMetrics)


def auth_metrics(app) -> AuthMetrics:
    """The auth service's metrics on the app's registry, made once per app."""
    return _group(app, "auth", AuthMetrics)


def _group(app, key: str, cls):
    rf = app.extensions["redfile"]
    found = rf.extra.get(f"metrics.{key}")
    if found is None:
        found = rf.extra[f"metrics.{key}"] = cls(rf.settings.service_name, app.extensions["redfile_metrics"].registry)
    return found
