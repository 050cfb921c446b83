"""HTTP client for service-to-service calls.

Each call carries a freshly minted service token addressed to the target
service, the caller's request id, explicit connect/read timeouts, and is
retried with backoff on connection errors and on 502/503/504 answers.  Inside
a request the timeouts are what the request's budget has left (``deadline``),
the time waited is spent from it, and only a call that never connected is
tried again: a 503 goes back to the client at once, with its ``Retry-After``.  The
trace context travels in the ``traceparent`` header (requests is
instrumented by ``tracing.instrument_app``).

Each call is timed into ``redfile_service_call_duration_seconds`` (by target,
method and status; ``error`` when no answer came) and each failure counted in
``redfile_service_call_errors_total`` (unreachable, refused, status_5xx,
bad_response) through the ``CommonMetrics`` given.
"""

from __future__ import annotations

import time
from typing import Any

import requests
import structlog
from flask import g, has_request_context
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from . import deadline
from .errors import ApiError
from .product_metrics import CommonMetrics
from .tokens import ServiceTokens

log = structlog.get_logger("redfile.service_client")


class ServiceClient:
    def __init__(
        self,
        tokens: ServiceTokens,
        base_urls: dict[str, str],
        *,
        timeout: float = 10.0,
        retries: int = 3,
        metrics: CommonMetrics | None = None,
    ) -> None:
        self.tokens = tokens
        self.metrics = metrics or CommonMetrics.null()
        self.base_urls = {k: v.rstrip("/") for k, v in base_urls.items()}
        self.timeout = (min(2.0, timeout), timeout)
        self.session = requests.Session()
        retry = Retry(
            total=retries,
            connect=retries,
            read=0,
            status=retries,
            status_forcelist=(502, 503, 504),
            allowed_methods=None,  # the targets' internal endpoints are idempotent or safe to repeat
            backoff_factor=0.1,
            backoff_max=2.0,
            respect_retry_after_header=False,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=16)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # within a request's budget: tried again only when it never connected
        self.budgeted = requests.Session()
        once = HTTPAdapter(
            max_retries=Retry(total=retries, connect=retries, read=0, status=0, other=0), pool_connections=4, pool_maxsize=16
        )
        self.budgeted.mount("http://", once)
        self.budgeted.mount("https://", once)

    def request(self, service: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Authorization"] = f"Bearer {self.tokens.mint(service)}"
        if has_request_context() and g.get("request_id"):
            headers["X-Request-ID"] = g.request_id
        url = f"{self.base_urls[service]}{path}"
        session, timeout = self.session, self.timeout
        if deadline.current() is not None:
            read = deadline.timeout(self.timeout[1])  # DeadlineExceeded: a 503, nothing sent
            session, timeout = self.budgeted, (min(self.timeout[0], read), read)
        started = time.perf_counter()
        try:
            with deadline.Waiting():
                resp = session.request(method, url, headers=headers, timeout=timeout, **kwargs)
        except requests.RequestException as exc:
            self.metrics.service_call(service, method, None, time.perf_counter() - started)
            self.metrics.service_call_failed(service, "unreachable")
            log.error("service_call_failed", target=service, path=path, error_type=type(exc).__name__)
            raise ApiError("bad_gateway", f"The {service} service could not be reached.") from None
        self.metrics.service_call(service, method, resp.status_code, time.perf_counter() - started)
        return resp

    def call(self, service: str, method: str, path: str, *, expect=(200,), **kwargs: Any) -> Any:
        """Make a call and return its JSON; a 4xx error from the target is passed through as is."""
        resp = self.request(service, method, path, **kwargs)
        if resp.status_code in expect:
            if not resp.content:
                return None
            body = _json_or_none(resp)
            if body is None:
                self.metrics.service_call_failed(service, "bad_response")
                log.error("service_bad_response", target=service, path=path, status=resp.status_code)
                raise ApiError("bad_gateway", f"The {service} service sent an unreadable answer.")
            return body
        body = _json_or_none(resp)
        err = (body or {}).get("error") if isinstance(body, dict) else None
        if resp.status_code in (401, 403):
            # The target refused *our* service token: a key or audience misconfiguration,
            # not something the end user can fix by logging in again.
            self.metrics.service_call_failed(service, "refused")
            log.error("service_token_refused", target=service, path=path, status=resp.status_code)
            raise ApiError("bad_gateway", f"The {service} service refused this service's credentials.")
        if 400 <= resp.status_code < 500 and err and err.get("code"):
            from .errors import CATALOGUE

            code = err["code"] if err["code"] in CATALOGUE else "bad_request"
            raise ApiError(code, err.get("message"), status=resp.status_code, details=err.get("details"))
        self.metrics.service_call_failed(service, "status_5xx" if resp.status_code >= 500 else "bad_response")
        log.error("service_call_error", target=service, path=path, status=resp.status_code)
        if resp.status_code == 503:
            raise ApiError("service_unavailable", headers={"Retry-After": resp.headers.get("Retry-After", "5")})
        raise ApiError("bad_gateway", f"The {service} service failed.")


def _json_or_none(resp: requests.Response):
    try:
        return resp.json()
    except ValueError:
        return None
