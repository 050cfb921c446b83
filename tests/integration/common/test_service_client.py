import pytest
from werkzeug.wrappers import Request, Response

from redfile_common.errors import ApiError
from redfile_common.service_client import ServiceClient
from redfile_common.settings import SigningKey
from redfile_common.tokens import Keyring, ServiceTokens

KEY = SigningKey("s1", b"s" * 40)


class Recorder:
    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.seen = []

    def __call__(self, environ, start_response):
        req = Request(environ)
        self.seen.append(req.headers.get("Authorization", ""))
        status = self.statuses.pop(0) if self.statuses else 200
        body = b'{"ok": true}' if status == 200 else b'{"error": {"code": "user_not_found", "message": "No such user."}}'
        return Response(body, status=status, content_type="application/json")(environ, start_response)


def client_for(url):
    return ServiceClient(ServiceTokens(Keyring([KEY]), service_name="admin"), {"auth": url}, timeout=2, retries=3)


def test_retries_503_and_attaches_a_fresh_token_for_the_target(serve):
    rec = Recorder([503, 502, 200])
    body = client_for(serve(rec)).call("auth", "GET", "/internal/users")
    assert body == {"ok": True}
    assert len(rec.seen) == 3
    verifier = ServiceTokens(Keyring([KEY]), service_name="auth")
    for header in rec.seen:
        claims = verifier.verify(header.removeprefix("Bearer "))
        assert claims.sub == "admin" and claims.aud == "redfile-auth"


def test_4xx_from_the_target_passes_through(serve):
    rec = Recorder([404])
    with pytest.raises(ApiError) as err:
        client_for(serve(rec)).call("auth", "GET", "/internal/users/nobody")
    assert err.value.status == 404 and err.value.code == "user_not_found"
    assert len(rec.seen) == 1  # 4xx is not retried


def test_unreachable_target_is_bad_gateway():
    from redfile_dev.redis_server import free_port

    with pytest.raises(ApiError) as err:
        client_for(f"http://127.0.0.1:{free_port()}").call("auth", "GET", "/x")
    assert err.value.status == 502


def test_a_refused_service_token_is_a_bad_gateway_not_a_401(serve):
    rec = Recorder([401])
    with pytest.raises(ApiError) as err:
        client_for(serve(rec)).call("auth", "GET", "/internal/users")
    assert err.value.status == 502


def test_inside_a_request_s_budget_a_call_waits_what_is_left_and_a_503_is_tried_again_only_while_it_lasts(serve):
    import time

    from redfile_common import deadline

    class Slow:
        calls = 0

        def __call__(self, environ, start_response):
            Slow.calls += 1
            time.sleep(1.5)
            return Response(b"{}", content_type="application/json")(environ, start_response)

    unavailable_app = Recorder([503, 503, 503, 200])
    slow, unavailable = serve(Slow()), serve(unavailable_app)
    budget = deadline.begin(0.5)
    try:
        started = time.monotonic()
        with pytest.raises(ApiError) as err:
            client_for(slow).call("auth", "GET", "/internal/users")
        assert err.value.status == 502 and time.monotonic() - started < 1.2  # not the client's 2 s, nor 1.5
        assert budget.left() <= 0.05  # the wait was spent
        with pytest.raises(deadline.DeadlineExceeded):  # nothing left: not sent
            client_for(unavailable).call("auth", "GET", "/internal/users")
        deadline.begin(0.25)  # time for one more try (after 0.1 s), not for the next (0.2 s more)
        with pytest.raises(ApiError) as err:
            client_for(unavailable).call("auth", "GET", "/internal/users")
        assert err.value.status == 503 and err.value.headers["Retry-After"]
        assert len(unavailable_app.seen) == 2
    finally:
        deadline.end()
    assert Slow.calls == 1


@pytest.mark.timing
def test_inside_a_budget_a_target_that_never_accepts_costs_the_budget_not_every_retry():
    """A dead pod drops the connection's SYN: each try waits its connect timeout.  urllib3's own connect retries did
    not look at the budget (4 tries of 0.5 s for a 0.5 s budget, found in review); now the budget bounds them all."""
    import socket
    import time

    from redfile_common import deadline

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers = []
    for _ in range(4):  # the backlog full: the kernel drops further SYNs, as from a pod that is gone
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(address)
        fillers.append(filler)
    deadline.begin(0.5)
    try:
        started = time.monotonic()
        with pytest.raises((ApiError, deadline.DeadlineExceeded)):
            client_for(f"http://{address[0]}:{address[1]}").call("auth", "GET", "/internal/users")
        took = time.monotonic() - started
    finally:
        deadline.end()
        for s in (listener, *fillers):
            s.close()
    assert took < 1.0, took  # one try of what the budget had left (0.5 s), not four
