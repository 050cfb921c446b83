"""HTTP client for service-to-service calls.

Each call carries a freshly minted service token addressed to the target
service, the caller's request id, explicit connect/read timeouts, and is
retried with backoff on connection errors and on 502/503/504 answers.  Inside
a request each try's timeouts are what the request's budget has left
(``deadline``), the time waited is spent from it, and a 502/503/504 is tried
again only while the budget lasts; then the 503 goes back to the client with
its ``Retry-After``.  A read that timed out is never tried again.  The
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

RETRY_STATUSES = (502, 503, 504)


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
        self.retries = retries
        self.session = requests.Session()
        retry = Retry(
            total=retries,
            connect=retries,
            read=0,
            status=retries,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=None,  # the targets' internal endpoints are idempotent or safe to repeat
            backoff_factor=0.1,
            backoff_max=2.0,
            respect_retry_after_header=False,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=16)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # within a request's budget urllib3 tries nothing again: _within_budget does, while the budget lasts
        # (urllib3's own connect retries would each wait the whole connect timeout, past the budget)
        self.budgeted = requests.Session()
        once = HTTPAdapter(max_retries=Retry(total=0, connect=0, read=0, status=0, other=0), pool_connections=4, pool_maxsize=16)
        self.budgeted.mount("http://", once)
        self.budgeted.mount("https://", once)

    def request(self, service: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Authorization"] = f"Bearer {self.tokens.mint(service)}"
        if has_request_context() and g.get("request_id"):
            headers["X-Request-ID"] = g.request_id
        url = f"{self.base_urls[service]}{path}"
        started = time.perf_counter()
        try:
            if deadline.current() is None:
                resp = self.session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
            else:
                resp = self._within_budget(method, url, headers, kwargs)
        except requests.RequestException as exc:
            self.metrics.service_call(service, method, None, time.perf_counter() - started)
            self.metrics.service_call_failed(service, "unreachable")
            log.error("service_call_failed", target=service, path=path, error_type=type(exc).__name__)
            raise ApiError("bad_gateway", f"The {service} service could not be reached.") from None
        self.metrics.service_call(service, method, resp.status_code, time.perf_counter() - started)
        return resp

    def _within_budget(self, method: str, url: str, headers: dict, kwargs: dict) -> requests.Response:
        """Each try waits what the request's budget has left; a connection that failed (never a read that timed
        out) and a 502/503/504 are tried again while the budget lasts."""
        for attempt in range(self.retries + 1):
            read = deadline.timeout(self.timeout[1])  # DeadlineExceeded: a 503, nothing sent
            try:
                with deadline.Waiting():
                    resp = self.budgeted.request(method, url, headers=headers, timeout=(min(self.timeout[0], read), read), **kwargs)
            except requests.ConnectionError:
                if attempt == self.retries or not _pause_within_budget(attempt):
                    raise
                continue
            if resp.status_code not in RETRY_STATUSES or attempt == self.retries or not _pause_within_budget(attempt):
                break
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


def _pause_within_budget(attempt: int) -> bool:
    """Wait before try ``attempt + 2`` (0.1 s, doubling, at most 2 s), spent from the budget; False when it would not fit."""
    pause = min(2.0, 0.1 * 2**attempt)
    budget = deadline.current()
    if budget is None or budget.left() <= pause:
        return False
    budget.spend(pause)
    time.sleep(pause)
    return True
