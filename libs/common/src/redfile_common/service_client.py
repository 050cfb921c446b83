"""HTTP client for service-to-service calls.

Each call carries a freshly minted service token addressed to the target
service, the caller's request id, explicit connect/read timeouts, and is
retried with backoff on connection errors and on 502/503/504 answers.  The
trace context travels in the ``traceparent`` header (requests is
instrumented by ``tracing.instrument_app``).
"""

from __future__ import annotations

from typing import Any

import requests
import structlog
from flask import g, has_request_context
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .errors import ApiError
from .tokens import ServiceTokens

log = structlog.get_logger("redfile.service_client")


class ServiceClient:
    def __init__(self, tokens: ServiceTokens, base_urls: dict[str, str], *, timeout: float = 10.0, retries: int = 3) -> None:
        self.tokens = tokens
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

    def request(self, service: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Authorization"] = f"Bearer {self.tokens.mint(service)}"
        if has_request_context() and g.get("request_id"):
            headers["X-Request-ID"] = g.request_id
        url = f"{self.base_urls[service]}{path}"
        try:
            return self.session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            log.error("service_call_failed", target=service, path=path, error_type=type(exc).__name__)
            raise ApiError("bad_gateway", f"The {service} service could not be reached.") from None

    def call(self, service: str, method: str, path: str, *, expect=(200,), **kwargs: Any) -> Any:
        """Make a call and return its JSON; a 4xx error from the target is passed through as is."""
        resp = self.request(service, method, path, **kwargs)
        if resp.status_code in expect:
            if not resp.content:
                return None
            body = _json_or_none(resp)
            if body is None:
                log.error("service_bad_response", target=service, path=path, status=resp.status_code)
                raise ApiError("bad_gateway", f"The {service} service sent an unreadable answer.")
            return body
        body = _json_or_none(resp)
        err = (body or {}).get("error") if isinstance(body, dict) else None
        if resp.status_code in (401, 403):
            # The target refused *our* service token: a key or audience misconfiguration,
            # not something the end user can fix by logging in again.
            log.error("service_token_refused", target=service, path=path, status=resp.status_code)
            raise ApiError("bad_gateway", f"The {service} service refused this service's credentials.")
        if 400 <= resp.status_code < 500 and err and err.get("code"):
            from .errors import CATALOGUE

            code = err["code"] if err["code"] in CATALOGUE else "bad_request"
            raise ApiError(code, err.get("message"), status=resp.status_code, details=err.get("details"))
        log.error("service_call_error", target=service, path=path, status=resp.status_code)
        if resp.status_code == 503:
            raise ApiError("service_unavailable", headers={"Retry-After": "5"})
        raise ApiError("bad_gateway", f"The {service} service failed.")


def _json_or_none(resp: requests.Response):
    try:
        return resp.json()
    except ValueError:
        return None
