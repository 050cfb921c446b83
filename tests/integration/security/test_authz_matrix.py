"""Authorization matrix: every endpoint of auth, files and admin × every kind of caller.

The table (``authz_table.ROWS``) names each endpoint's policy; the policy gives every
principal's expected status.  One test per cell (``<endpoint> | <principal>``), each on
fresh resources and fresh users, so destructive endpoints and the order of the cells
do not matter.  The apps are the real ones on the private Redis; admin reaches real auth
and files over HTTP (served on loopback) with service tokens.

Also here: the table covers exactly the apps' url_maps, each forged credential is
refused by the verifier for the reason it was built for, and the dev gateway never
forwards ``/internal/...``.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time

import jwt
import pytest
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.test import Client

from redfile_common.settings import SigningKey
from redfile_common.tokens import Keyring, ServiceTokens, TokenError, TokenState, UserTokens
from redfile_dev.testing import auth_header, settings_overrides

from .authz_table import B64, BROKEN, GATEWAY_INTERNAL, PASSWORD, POLICIES, PRINCIPALS, ROWS, TUS_CREATE, Row, expected_code
from .cluster_aware import connect, flush

CHEAP_ARGON2 = {"argon2_memory_kib": 1024, "argon2_time_cost": 1, "argon2_parallelism": 1}
OTHER_SERVICE = {"auth": "files", "files": "auth", "admin": "files"}
RETIRED_SECRET = b"r" * 40  # a key that once signed, and is no longer in any ring


# -- the system: three real apps on the private Redis, auth and files also on loopback ---------------------
class Stack:
    def __init__(self, redis_url: str) -> None:
        from redfile_admin import create_app as admin_app
        from redfile_auth import create_app as auth_app
        from redfile_files import create_app as files_app

        self.redis = connect(redis_url)
        flush(self.redis)
        self._servers: list[BaseWSGIServer] = []
        self.apps = {
            "auth": auth_app(**settings_overrides(redis_url, admin_users="admin", admin_password="admin-password-1", **CHEAP_ARGON2))
        }
        self.urls = {"auth": self._serve(self.apps["auth"])}  # files asks auth who a recipient is
        self.apps["files"] = files_app(**settings_overrides(redis_url, sweep_interval=0, auth_url=self.urls["auth"]))
        self.urls["files"] = self._serve(self.apps["files"])
        self.apps["admin"] = admin_app(**settings_overrides(redis_url, auth_url=self.urls["auth"], files_url=self.urls["files"]))
        self.urls["admin"] = self._serve(self.apps["admin"])
        self.clients = {name: app.test_client() for name, app in self.apps.items()}
        self.settings = self.apps["files"].extensions["redfile"].settings
        self.user_key = self.settings.user_keyring[0]
        self.service_key = self.settings.service_keyring[0]
        self.state = TokenState(self.redis)
        self.user_tokens = self.apps["files"].extensions["redfile"].user_tokens

    def _serve(self, wsgi_app) -> str:
        server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self.redis.close()


@pytest.fixture(scope="module")
def stack(redis_server):
    # Module-scoped (building the apps per cell would cost minutes): every cell makes its own users
    # and resources with fresh names instead of flushing Redis.
    s = Stack(redis_server.url)
    yield s
    s.close()


# -- tokens ----------------------------------------------------------------------------------------------
def sign(payload: dict, key: SigningKey) -> str:
    return jwt.encode(payload, key.secret, algorithm="HS256", headers={"kid": key.kid})


def retired(key: SigningKey) -> SigningKey:
    return SigningKey(kid=f"{key.kid}-retired", secret=RETIRED_SECRET)


def tamper(token: str) -> str:
    """The same header and signature over a changed payload (role -> admin, an hour more of life)."""
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["exp"] += 3600
    if "role" in claims:
        claims["role"] = "admin"
    else:
        claims["sub"] = "auth"
        claims["iss"] = "redfile-auth"
    forged = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).rstrip(b"=").decode()
    assert forged != body
    return f"{head}.{forged}.{sig}"


class Minter:
    def __init__(self, stack: Stack) -> None:
        self.s = stack

    def user_claims(self, name: str, role: str = "user", *, aud: str | None = None, age: int = 0, ttl: int = 900) -> dict:
        now = int(time.time()) - age
        version = self.s.state.current(name) or self.s.state.bump(name)
        return {
            "iss": self.s.settings.token_issuer,
            "sub": name,
            "aud": aud or self.s.settings.user_token_audience,
            "iat": now,
            "exp": now + ttl,
            "jti": secrets.token_urlsafe(16),
            "typ": "access",
            "role": role,
            "scopes": ["files:read", "files:write"] + (["admin"] if role == "admin" else []),
            "ver": version,
            "uid": self._uid(name),  # the account's id, as auth mints it
        }

    def _uid(self, name: str) -> str:
        raw = self.s.redis.hget(f"auth:user:{{{name}}}", "id")
        return raw.decode() if isinstance(raw, bytes) else ""

    def service_claims(self, target: str, *, caller: str = "admin", age: int = 0, ttl: int = 30) -> dict:
        now = int(time.time()) - age
        return {
            "iss": f"redfile-{caller}",
            "sub": caller,
            "aud": f"redfile-{target}",
            "iat": now,
            "exp": now + ttl,
            "jti": secrets.token_urlsafe(16),
            "typ": "service",
            "scopes": ["internal"],
        }

    def user(self, name: str, role: str = "user", **kw) -> str:
        return sign(self.user_claims(name, role, **kw), self.s.user_key)

    def service(self, target: str, caller: str = "admin") -> str:
        """A service token exactly as a service mints one (``caller`` calling ``target``)."""
        return ServiceTokens(Keyring([self.s.service_key]), service_name=caller).mint(target)


# -- one cell's world: fresh users, their tokens, the resources the row needs --------------------------------
class World:
    def __init__(self, stack: Stack, row: Row) -> None:
        self.s, self.row, self.mint = stack, row, Minter(stack)
        u = secrets.token_hex(4)
        self.ctx = {role: f"{role[:3]}-{u}" for role in ("owner", "other", "admin", "third", "sharer", "target", "fresh")}
        # accounts in auth first: auth gives each new user its token version, which the tokens below carry
        if "auth_users" in row.setup:
            for role in ("owner", "other", "admin"):
                self._auth_user(self.ctx[role], "admin" if role == "admin" else "user")
        if "target" in row.setup:
            self._auth_user(self.ctx["target"], "user")
        if "recipient" in row.setup or "{third}" in f"{row.path}{row.json}":  # a share goes to an account auth knows
            self._auth_user(self.ctx["third"], "user")
        if "shared" in row.setup and "auth_users" not in row.setup:
            self._auth_user(self.ctx["owner"], "user")
        natural_user = self.ctx["admin"] if row.policy == "admin" else self.ctx["owner"]
        natural_role = "admin" if row.policy == "admin" else "user"
        revoked = self.mint.user(natural_user, natural_role)
        self.s.state.bump(natural_user)  # what a password change, a disable or a role change does
        logged_out = self.mint.user(natural_user, natural_role)
        self.s.state.deny(self.s.user_tokens.verify(logged_out))  # what POST /auth/logout does
        self.tokens = {
            "owner": self.mint.user(self.ctx["owner"]),
            "other": self.mint.user(self.ctx["other"]),
            "admin": self.mint.user(self.ctx["admin"], "admin"),
            "sharer": self.mint.user(self.ctx["sharer"]),
        }
        for step in row.setup:
            if step not in ("auth_users", "target"):
                getattr(self, f"_make_{step}")()
        self.headers = self._principals(natural_user, natural_role, revoked, logged_out)

    # -- principals --------------------------------------------------------------------------------
    def _principals(self, natural_user: str, natural_role: str, revoked: str, logged_out: str) -> dict[str, dict]:
        svc, mint, s = self.row.service, self.mint, self.s
        if self.row.policy == "internal":
            natural, key, other_key = mint.service_claims(svc), s.service_key, s.user_key
            expired = mint.service_claims(svc, age=3600)
        else:
            natural, key, other_key = mint.user_claims(natural_user, natural_role), s.user_key, s.service_key
            expired = mint.user_claims(natural_user, natural_role, age=7200, ttl=3600)
        bearer = {
            "owner": self.tokens["owner"],
            "other": self.tokens["other"],
            "admin": self.tokens["admin"],
            "service": mint.service(svc),
            "service_other_caller": mint.service(svc, caller=OTHER_SERVICE[svc]),
            "service_wrong_aud": mint.service(OTHER_SERVICE[svc]),
            "user_wrong_aud": mint.user(natural_user, natural_role, aud=f"redfile-{svc}"),
            "expired": sign(expired, key),
            "tampered": tamper(sign(natural, key)),
            "retired_key": sign(natural, retired(key)),
            "other_keyring": sign(natural, other_key),
            "revoked": revoked,
            "logged_out": logged_out,
            "garbage": "not-a-jwt",
        }
        headers = {name: auth_header(token) for name, token in bearer.items()}
        headers |= {
            "anonymous": {},
            "basic": {"Authorization": "Basic " + base64.b64encode(f"{natural_user}:{PASSWORD}".encode()).decode()},
            "bearer_empty": {"Authorization": "Bearer"},
        }
        assert set(headers) == set(PRINCIPALS)
        return headers

    # -- resources (each owned by ``owner`` unless said otherwise) ------------------------------------------
    def _ok(self, resp, *statuses):
        assert resp.status_code in statuses, f"setup of {self.row.id}: {resp.status_code} {resp.get_data()[:300]!r}"
        return resp

    def _files(self, method: str, path: str, who: str = "owner", **kw):
        headers = {**auth_header(self.tokens[who]), **kw.pop("headers", {})}
        return self.s.clients["files"].open(path, method=method, headers=headers, **kw)

    def _auth_user(self, name: str, role: str) -> None:
        resp = self.s.clients["auth"].post(
            "/internal/users", json={"username": name, "password": PASSWORD, "role": role}, headers=auth_header(self.mint.service("auth"))
        )
        self._ok(resp, 201)

    def _make_refresh(self) -> None:
        resp = self._ok(self.s.clients["auth"].post("/auth/login", json={"username": self.ctx["owner"], "password": PASSWORD}), 200)
        self.ctx["refresh"] = resp.json["refresh_token"]

    def _new_file(self, who: str = "owner", name: str = "f.txt") -> str:
        return self._ok(self._files("POST", "/files", who, json={"name": name, "data": B64}), 201).json["id"]

    def _make_file(self) -> None:
        self.ctx["file"] = self._new_file()

    def _make_text(self) -> None:
        self.ctx["text"] = self._ok(self._files("POST", "/texts", json={"name": "t.txt", "content": "hello"}), 201).json["id"]

    def _make_recipient(self) -> None:
        self._ok(self._files("POST", f"/files/{self.ctx['file']}/recipients", json={"username": self.ctx["third"]}), 201)

    def _link(self, **options) -> None:
        link = self._ok(self._files("POST", f"/files/{self.ctx['file']}/shares", json=options), 201).json
        self.ctx["link"], self.ctx["share"] = link["token"], link["id"]

    def _make_link(self) -> None:
        self._link()

    def _make_private_link(self) -> None:
        self._link(visibility="private")

    def _make_shared(self) -> None:
        """A file of ``sharer``'s, shared with ``owner`` (so ``owner`` is the authorized recipient)."""
        fid = self._new_file("sharer")
        self._ok(self._files("POST", f"/files/{fid}/recipients", "sharer", json={"username": self.ctx["owner"]}), 201)
        self.ctx["shared"] = fid

    def _seed(self, total: int) -> None:
        body = {"chunk_index": 0, "total_chunks": total, "chunk_data": B64}
        self.ctx["seed"] = self._ok(self._files("POST", "/upload_chunk", json=body), 201).json["file_id"]

    def _make_seed(self) -> None:
        self._seed(2)

    def _make_seed_whole(self) -> None:
        self._seed(1)

    def _make_session(self) -> None:
        self.ctx["upload"] = self._ok(self._files("POST", "/uploads", json={"name": "s.bin", "total_size": 5}), 201).json["id"]

    def _make_session_whole(self) -> None:
        self._make_session()
        headers = {"Content-Type": "application/octet-stream"}
        self._ok(self._files("PUT", f"/uploads/{self.ctx['upload']}/chunks/0", data=b"hello", headers=headers), 201)

    def _tus(self, **kw) -> None:
        resp = self._ok(self._files("POST", "/tus/", **kw), 201)
        self.ctx["tus"] = resp.headers["Location"].rsplit("/", 1)[1]

    def _make_tus(self) -> None:
        self._tus(headers=TUS_CREATE)

    def _make_tus_done(self) -> None:
        self._tus(headers={**TUS_CREATE, "Content-Type": "application/offset+octet-stream"}, data=b"hello")

    # -- the request ------------------------------------------------------------------------------------
    def fill(self, value):
        if isinstance(value, str):
            return value.format(**self.ctx)
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        return value

    def missing(self) -> None:
        """Point every resource placeholder at one that does not exist (same shape, fresh random id)."""
        for key in ("file", "text", "seed", "upload", "tus", "shared", "share"):
            if key in self.ctx:
                self.ctx[key] = secrets.token_hex(16)
        if "link" in self.ctx:
            self.ctx["link"] = secrets.token_urlsafe(32)

    def send(self, principal: str):
        row = self.row
        kw = {}
        if row.json is not None:
            kw["json"] = self.fill(row.json)
        if row.data is not None:
            kw["data"] = row.data
        headers = {**row.headers, **self.headers[principal]}
        resp = self.s.clients[row.service].open(self.fill(row.path or row.rule), method=row.method, headers=headers, **kw)
        resp.get_data()  # read (and so close) a streamed body
        return resp


# -- the matrix ----------------------------------------------------------------------------------------------
CELLS = [pytest.param(row, p, id=f"{row.id} | {p}") for row in ROWS for p in PRINCIPALS]


@pytest.mark.parametrize("row, principal", CELLS)
def test_cell(stack, row: Row, principal: str):
    world = World(stack, row)
    want = row.status_for(principal)
    resp = world.send(principal)
    body = resp.get_data()[:400]
    where = f"{row.id} as {principal} (policy {row.policy}: {POLICIES[row.policy]})"
    assert resp.status_code == want, f"{where}: expected {want}, got {resp.status_code}: {body!r}"
    if resp.status_code >= 400 and row.method != "HEAD":
        error = (resp.get_json(silent=True) or {}).get("error") or {}
        assert error.get("code"), f"{where}: an error without the one error shape: {body!r}"
        code = expected_code(row.policy, principal, resp.status_code)
        assert code in (None, error["code"]), f"{where}: expected error code {code}, got {error['code']}"
    if resp.status_code == 404 and principal != "owner" and row.setup:
        # existence is hidden: someone else's resource answers exactly as a missing one answers its owner
        world.missing()
        missing = world.send("owner")
        assert missing.status_code == 404, f"{row.id}: the owner asking for a missing resource got {missing.status_code}"
        if row.method != "HEAD":
            assert resp.get_json() == missing.get_json(), f"{where}: {resp.get_json()} differs from a missing one's {missing.get_json()}"


# -- the table covers every endpoint, and only endpoints --------------------------------------------------------
def _endpoints(app) -> tuple[set, set]:
    """(rule × method pairs the table must cover, every rule × method pair including HEAD and automatic OPTIONS)."""
    required, existing = set(), set()
    for rule in app.url_map.iter_rules():
        for method in rule.methods:
            existing.add((method, rule.rule))
            automatic = method == "HEAD" or (method == "OPTIONS" and getattr(rule, "provide_automatic_options", True))
            if not automatic:
                required.add((method, rule.rule))
    return required, existing


def test_the_table_covers_every_endpoint_and_only_endpoints(stack):
    required, existing = set(), set()
    for name, app in stack.apps.items():
        req, ex = _endpoints(app)
        required |= {(name, *pair) for pair in req}
        existing |= {(name, *pair) for pair in ex}
    table = {row.key for row in ROWS}
    missing = sorted(required - table)
    unknown = sorted(table - existing)
    assert not missing, "endpoints without a row in authz_table.ROWS (add one with its policy):\n" + "\n".join(map(str, missing))
    assert not unknown, "rows in authz_table.ROWS for endpoints that do not exist:\n" + "\n".join(map(str, unknown))
    ids = [(row.key, row.variant) for row in ROWS]
    assert len(ids) == len(set(ids)), "two rows for one endpoint need different variants"
    assert {row.policy for row in ROWS} <= set(POLICIES)
    assert all(set(row.expect) <= set(PRINCIPALS) for row in ROWS)


# -- each forged credential is refused for the reason it was made for ------------------------------------------
def test_each_forged_credential_fails_for_its_own_reason(stack):
    """A control: the principals' tokens are broken in exactly one way each (else a 401 could be luck)."""
    mint, s = Minter(stack), stack
    users = UserTokens(Keyring(s.settings.user_keyring), issuer=s.settings.token_issuer, audience=s.settings.user_token_audience)
    services = ServiceTokens(Keyring(s.settings.service_keyring), service_name="files")

    def reason(verify, token) -> str:
        try:
            verify(token)
        except TokenError as exc:
            return exc.reason
        return "accepted"

    name = f"own-{secrets.token_hex(4)}"
    good_user, good_service = mint.user_claims(name), mint.service_claims("files")
    assert reason(users.verify, sign(good_user, s.user_key)) == "accepted"
    assert reason(services.verify, sign(good_service, s.service_key)) == "accepted"
    assert reason(users.verify, mint.user(name, age=7200, ttl=3600)) == "expired"
    assert reason(services.verify, sign(mint.service_claims("files", age=3600), s.service_key)) == "expired"
    assert reason(users.verify, tamper(sign(good_user, s.user_key))) == "bad_signature"
    assert reason(services.verify, tamper(sign(good_service, s.service_key))) == "bad_signature"
    assert reason(users.verify, sign(good_user, retired(s.user_key))) == "unknown_key"
    assert reason(services.verify, sign(good_service, retired(s.service_key))) == "unknown_key"
    assert reason(users.verify, sign(good_user, s.service_key)) == "unknown_key"
    assert reason(services.verify, sign(good_service, s.user_key)) == "unknown_key"
    assert reason(users.verify, mint.user(name, aud="redfile-files")) == "wrong_audience"
    assert reason(users.verify, mint.service("files")) == "unknown_key"
    assert reason(services.verify, mint.service("auth")) == "wrong_audience"
    # the second user key still verifies (rotation): a token it signed is accepted, so "retired" means gone from the ring
    assert reason(users.verify, sign(good_user, s.settings.user_keyring[1])) == "accepted"
    # the audience decides, not the caller; but a caller must be who its issuer says, and live at most 60 s
    assert reason(services.verify, mint.service("files", caller="auth")) == "accepted"
    assert reason(services.verify, sign(good_service | {"iss": "redfile-files"}, s.service_key)) == "wrong_issuer"
    assert reason(services.verify, sign(mint.service_claims("files", ttl=3600), s.service_key)) == "lifetime_too_long"
    # revoked: valid signature, stale version; logged out: valid signature and version, denied jti
    revoked = mint.user(name)
    s.state.bump(name)
    logged_out = users.verify(mint.user(name))
    s.state.check(logged_out)
    s.state.deny(logged_out)
    for claims in (users.verify(revoked), logged_out):
        with pytest.raises(TokenError, match="revoked"):
            s.state.check(claims)
    assert set(BROKEN) < set(PRINCIPALS)


# -- the dev gateway never exposes /internal -------------------------------------------------------------------
@pytest.fixture(scope="module")
def gateway(stack):
    from redfile_dev.gateway import create_gateway

    return Client(create_gateway(stack.urls["auth"], stack.urls["files"], stack.urls["admin"]))


@pytest.mark.parametrize("service, method, path", GATEWAY_INTERNAL, ids=[f"{m} {p}" for _, m, p in GATEWAY_INTERNAL])
def test_the_gateway_never_forwards_internal_routes(stack, gateway, service, method, path):
    mint = Minter(stack)
    owner = f"own-{secrets.token_hex(4)}"
    headers = auth_header(mint.service(service))
    body = {"username": f"gw-{secrets.token_hex(4)}", "password": PASSWORD, "role": "admin"} if method == "POST" else None
    resp = gateway.open(path.format(owner=owner), method=method, headers=headers, json=body)
    assert resp.status_code == 404, f"{method} {path} through the gateway: {resp.status_code} {resp.get_data()[:300]!r}"
    # and the same token straight at the service works: the 404 is the gateway's doing
    if "/../" not in path and "//" not in path and "%" not in path and "/./" not in path:
        direct = stack.clients[service].open(path.format(owner=owner), method=method, headers=headers, json=body)
        assert direct.status_code in (200, 201), direct.get_data()[:300]


def test_the_gateway_forwards_public_routes(stack, gateway):
    """The control for the test above: the same gateway does reach every service."""
    mint = Minter(stack)
    owner = mint.user(f"own-{secrets.token_hex(4)}")
    admin = mint.user(f"adm-{secrets.token_hex(4)}", "admin")
    assert gateway.get("/files", headers=auth_header(owner)).status_code == 200
    assert gateway.get("/quota", headers=auth_header(owner)).status_code == 200
    assert gateway.get("/admin/stats", headers=auth_header(admin)).status_code == 200
    assert gateway.get("/auth/openapi.json").status_code == 200
    assert gateway.get("/admin/users", headers=auth_header(owner)).status_code == 403
