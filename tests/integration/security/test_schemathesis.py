"""Property-based requests from each service's OpenAPI documents, with every check schemathesis has.

Every operation of ``/auth/openapi.json``, ``/files/openapi.json`` and
``/admin/openapi.json``, and of the internal documents (``/internal/openapi.json``
of auth and files), is exercised by schemathesis against the real app on the
private real Redis (admin over the real auth and files apps on loopback): user
operations with a real user access token, admin operations with an admin's
token, ``/internal/*`` ones with a service token addressed to that service.
Three kinds of cases, as ``schemathesis run`` makes them: the coverage phase
(boundary values, each parameter missing or of the wrong type, every method the
path does not document), then schema-valid (positive) and schema-invalid
(negative) requests drawn by Hypothesis, in every request media type an
operation documents: multipart file parts, raw ``application/octet-stream``
chunks and base64 JSON included, and the byte-carrying operations must have
stored something in each form.

The checks are ``--checks all``: every check schemathesis registers (no 5xx; a
documented status, content type, headers and schema, errors included; negative
data refused with a 4xx and positive data accepted; a missing required header
refused; an undocumented method a 405 with ``Allow``; ``OPTIONS`` naming the
documented methods; authentication not ignored; and the stateful ones, which
find nothing to judge without links between operations).  None is excluded;
``negative_data_rejection`` judges negative cases only (see ``POSITIVE_CHECKS``),
and a 413 counts as a refusal of valid data where a deployment's size limit
applies (``CONFIG``).  What a positive case may not hold although no JSON Schema
can say so (a made-up page cursor, a past ``expires_at``, cross-field rules) is
taken out of it by ``beyond_the_schema``, each rule named there and documented
in the operation's descriptions.

Path parameters come from schemathesis or, as often, from ids that exist (a
stored file, a text, an upload session, a share link, users), and a few
operations sometimes get the right body fields ("tweaks": a chunk of the
right size, the right refresh token; a chunk's positive cases always), so requests reach past the 404s and
the validation into the code that stores.  Before each example Redis is put
back to the seeded state (``FLUSHALL`` + ``RESTORE`` of a snapshot): examples
are independent, and the run is reproducible (``derandomize``; no shrinking,
so a failure is reported as found).  The failures of all operations are
collected and reported together, after the status codes each one got.
About 40 seconds for the three tests.
"""

from __future__ import annotations

import base64
import collections
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS as REGISTERED_CHECKS
from schemathesis.checks import load_all_checks

from redfile_dev.testing import auth_header, restore_state, service_token, settings_overrides, user_account, user_token

# Examples per operation and generation mode, times the number of request media types it documents.
POSITIVE_EXAMPLES = 20
NEGATIVE_EXAMPLES = 10
COVERAGE_CASES = 60  # per operation, of schemathesis's coverage phase (most have fewer)

# `--checks all`: every check schemathesis registers, but those named here, each with the reason.
EXCLUDED_CHECKS: dict[str, str] = {}
load_all_checks()
CHECKS = [check for check in REGISTERED_CHECKS.get_all() if check.__name__ not in EXCLUDED_CHECKS]
# negative_data_rejection judges negative cases only: schemathesis re-reads a positive case's raw bytes in a
# multipart part (and a tweaked body, the harness's own) as schema-violating, and would hold its 2xx against it.
POSITIVE_CHECKS = [check for check in CHECKS if check.__name__ != "negative_data_rejection"]

CHEAP_ARGON2 = {"argon2_memory_kib": 1024, "argon2_time_cost": 1, "argon2_parallelism": 1}
ADMIN_PASSWORD = "admin-password-1"
FILES_LIMITS = {"max_chunk_bytes": 64, "max_single_upload_bytes": 256, "max_chunks": 1000, "upload_ttl": 600, "sweep_interval": 0}


def hypothesis_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,  # the same examples on every run: CI is reproducible
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure of each operation is reported as is
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )


# -- snapshot and restore the seeded Redis state ------------------------------------------
def snapshot(r: redis.Redis) -> list[tuple[bytes, int, bytes]]:
    # a key that expires between SCAN and DUMP dumps as None: there is nothing of it to restore
    return [(key, max(r.pttl(key), 0), dumped) for key in r.scan_iter(count=1000) if (dumped := r.dump(key)) is not None]


def restore(r: redis.Redis, state) -> None:
    restore_state(r, state)


# -- the run --------------------------------------------------------------------------------
@dataclass
class Target:
    """One service under test: its schema, how to authenticate, known path values, the seeded state."""

    schemas: list[Any]  # the service's public document, and its internal one when it has /internal/ operations
    headers_for: Callable[[Any], dict[str, str]]  # operation -> auth headers (fresh per example)
    path_values: dict[str, list[Any]]
    reset: Callable[[], None]
    # operation label -> fn(case, draw): turns some positive cases into ones that reach past validation
    tweaks: dict[str, Callable[[Any, Callable], None]] = field(default_factory=dict)
    # operations whose positive cases are all tweaked (the rest: one in two), so every form reaches what it stores
    always: frozenset[str] = frozenset()
    statuses: dict[str, collections.Counter] = field(default_factory=lambda: collections.defaultdict(collections.Counter))
    media_types: dict[str, set] = field(default_factory=lambda: collections.defaultdict(set))


def security_of(operation) -> str | None:
    for requirement in operation.definition.raw.get("security") or ():
        for name in requirement:
            return name
    return None


def request_media_types(operation) -> list[str | None]:
    body = operation.definition.raw.get("requestBody") or {}
    return list(body.get("content", {})) or [None]


def negates_authorization(case) -> bool:
    """Whether a negative case's mutations touch the Authorization header (or which headers are sent at all)."""
    data = getattr(getattr(case.meta, "phase", None), "data", None) if case.meta is not None else None
    for mutation in getattr(data, "mutations", None) or ():
        if mutation.parameter_location.value == "header" and (mutation.parameter or "authorization").lower() == "authorization":
            return True
    return False


# what beyond_the_schema touches: a negative case about one of these is left as it is
BEYOND_THE_SCHEMA = frozenset(
    {"cursor", "expires_at", "burn_after_read", "total_size", "chunk_size", "sha256", "chunk_index", "total_chunks"}
    | {"upload-checksum", "upload-metadata", "upload-concat", "upload-defer-length", "upload-length"}
)


def one_index(query: dict) -> dict:
    """``GET /files``'s filters as one index serves them (else a 400 ``unsupported_query``): folder and q in name
    order, size bounds in size order, time bounds in creation order."""
    sort = query.get("sort") or ("name" if query.get("folder") is not None or query.get("q") is not None else "created_at")
    drop = {
        "name": {"min_size", "max_size", "created_after", "created_before"},
        "size": {"folder", "q", "created_after", "created_before"},
        "created_at": {"folder", "q", "min_size", "max_size"},
    }.get(sort, set())
    return {k: v for k, v in query.items() if k not in drop}


def beyond_the_schema(case) -> None:
    """What a positive case may not hold although the schema allows it: rules no JSON Schema can state.

    * a page ``cursor`` is an opaque token the server issued: a made-up one is rightly a 422;
    * ``expires_at`` must be in the future, a rule relative to the clock;
    * ``burn_after_read`` is for texts only, a rule on the file the link is for;
    * an upload's ``total_size / chunk_size`` is at most ``max_chunks``, a rule across two fields;
    * a chunk's ``sha256`` must be its bytes' digest, and its ``chunk_index`` less than ``total_chunks``:
      rules across two fields;
    * tus: ``Upload-Checksum`` must be the body's digest; a creation takes exactly one of ``Upload-Length``
      (at least the body's size) and ``Upload-Defer-Length``; ``Upload-Metadata`` values must be real
      base64 and ``Upload-Concat``'s URLs real partial uploads: rules across headers, or about other uploads;
    * ``GET /files`` combines only the filters one index serves (``one_index``): a rule across fields;
    * ``POST /upload_chunk`` reads its fields from the query string only with a raw body (a
      field there beside a JSON or form body is refused): OpenAPI cannot tie a parameter to a
      request media type.
    """
    if case.query:
        case.query = {k: v for k, v in case.query.items() if k != "cursor"}
    if case.path == "/files" and case.method.upper() == "GET" and case.query:
        case.query = one_index(case.query)
    if isinstance(case.body, dict):
        case.body = {k: v for k, v in case.body.items() if k not in ("expires_at", "burn_after_read")}
    if case.path == "/uploads" and isinstance(case.body, dict) and isinstance(case.body.get("total_size"), int | float):
        chunk = case.body.get("chunk_size")
        chunk = int(chunk) if isinstance(chunk, int | float) and 1 <= chunk < 2**53 else FILES_LIMITS["max_chunk_bytes"]
        case.body["total_size"] = min(case.body["total_size"], chunk * FILES_LIMITS["max_chunks"])
    if case.path == "/upload_chunk" and case.media_type != "application/octet-stream" and case.query:
        case.query = {}
    if case.path.startswith("/tus/") and case.headers:
        drop = {"upload-checksum", "upload-metadata", "upload-concat", "upload-defer-length"}
        case.headers = {k: v for k, v in case.headers.items() if k.lower() not in drop}
        if case.method.upper() == "POST":
            size = len(case.body) if isinstance(case.body, bytes) else 0
            declared = str(case.headers.get("Upload-Length", ""))
            case.headers["Upload-Length"] = str(max(int(declared) if declared.isdigit() else 0, size))
    if case.path == "/upload_chunk":
        case.query = {k: v for k, v in (case.query or {}).items() if k != "sha256"} or case.query
        for fields in (case.body, case.query):
            if isinstance(fields, dict):
                fields.pop("sha256", None)
                index, total = fields.get("chunk_index"), fields.get("total_chunks")
                if isinstance(index, int) and isinstance(total, int) and 0 < total <= index:
                    fields["chunk_index"] = total - 1


def run_operation(target: Target, operation, mode: GenerationMode, examples: int) -> None:
    known = {name: values for name, values in target.path_values.items() if f"{{{name}}}" in operation.path}
    strategy = operation.as_strategy(generation_mode=mode)  # draws every documented request media type
    picks = st.fixed_dictionaries({name: st.one_of(st.none(), st.sampled_from(values)) for name, values in known.items()})

    tweak = target.tweaks.get(operation.label) if mode.is_positive else None

    @hypothesis_settings(examples)
    @given(case=strategy, chosen=picks, data=st.data())
    def example(case, chosen, data):
        target.reset()
        if mode.is_positive:  # a negative case's path parameters may be the very thing it negates
            for name, value in chosen.items():
                if value is not None:
                    case.path_parameters[name] = value
        if tweak is not None and (operation.label in target.always or data.draw(st.booleans(), label="tweak")):
            tweak(case, data.draw)
        if mode.is_positive:
            beyond_the_schema(case)
        # the real credentials, unless the negative case is about them (then it gets the 401 it is after)
        if mode.is_positive or not negates_authorization(case):
            case.headers = {
                **{k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"},
                **target.headers_for(operation),
            }
        response = case.call()
        target.statuses[operation.label][response.status_code] += 1
        if case.media_type:
            target.media_types[operation.label].add(case.media_type)
            if response.status_code < 300:
                target.media_types[operation.label].add(f"{case.media_type} {response.status_code}")
        case.validate_response(response, checks=CHECKS if mode.is_negative else POSITIVE_CHECKS)

    # schemathesis's negative strategies also draw from the random module, which derandomize does not
    # reach: seeded per operation and mode, the run is the same whatever ran before it
    random.seed(f"{operation.label} {mode.name}")
    example()


def run_coverage(target: Target, operation) -> None:
    """schemathesis's coverage phase: boundary values, each parameter missing or of the wrong type, and
    every method the path does not document (a 405 with ``Allow``); ``OPTIONS`` must name exactly the
    documented methods.  Its cases are a fixed list, capped per operation."""
    schema = operation.schema
    cases = schema.iter_coverage_cases(
        operation,
        generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        generation_config=schema.config.generation_for(operation=operation),
    )
    known = {name: values for name, values in target.path_values.items() if f"{{{name}}}" in operation.path}
    failures = []
    for number, case in enumerate(cases):
        if number >= COVERAGE_CASES:
            break
        target.reset()
        positive = case.meta is not None and case.meta.generation.mode.is_positive
        negated = (getattr(case.meta.phase.data, "parameter", None) or "").lower() if case.meta is not None else ""
        if positive:
            for name, values in known.items():
                case.path_parameters[name] = values[number % len(values)]
            beyond_the_schema(case)
        elif negated not in BEYOND_THE_SCHEMA:  # what the case negates stays; the rest is made as a positive case is
            beyond_the_schema(case)
        if negated != "authorization":
            case.headers = {
                **{k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"},
                **target.headers_for(operation),
            }
        response = case.call()
        target.statuses[operation.label][response.status_code] += 1
        try:
            case.validate_response(response, checks=POSITIVE_CHECKS if positive else CHECKS)
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(exc)
    if failures:
        raise BaseExceptionGroup(f"{len(failures)} coverage case(s) failed", failures[:3])


def run_all(target: Target) -> None:
    """Every operation of the document, positive then negative; all failures reported together."""
    failures, operations = [], []
    for result in (result for schema in target.schemas for result in schema.get_all_operations()):
        operation = result.ok()
        operations.append(operation)
        media = request_media_types(operation)
        try:
            run_coverage(target, operation)
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label} [coverage]: {type(exc).__name__}: {exc!r}"[:3000])
        for mode, budget in ((GenerationMode.POSITIVE, POSITIVE_EXAMPLES), (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)):
            try:
                run_operation(target, operation, mode, budget * len(media))
            except Unsatisfiable:
                if mode.is_positive:
                    raise
                continue  # nothing in this operation can be made invalid
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} [{mode.value}]: {type(exc).__name__}: {exc}"[:3000])
    summary = "\n".join(f"  {label}: {dict(sorted(c.items()))}" for label, c in sorted(target.statuses.items()))
    print(f"statuses per operation:\n{summary}")
    assert not failures, "\n\n".join(failures)
    # every operation was sent, and every request media type of every operation
    for operation in operations:
        assert sum(target.statuses[operation.label].values()) > 0, operation.label
        wanted = {m for m in request_media_types(operation) if m}
        assert wanted <= target.media_types[operation.label], (operation.label, wanted, target.media_types[operation.label])


# Negative data must be refused with a 4xx, any 4xx: 413 (too large) and 416 are refusals too.
# An explicit config also keeps a stray schemathesis.toml from changing the run.
# Valid data may also be refused with a 413: a raw chunk's size limit is the deployment's, which no
# schema of an application/octet-stream body can state (schemathesis's defaults otherwise).
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["4xx"]

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "413", "429", "5xx"]

[checks.missing_required_header]
expected-statuses = ["400", "401", "403", "406", "412", "415", "422"]
"""
# (a missing Tus-Resumable is a 412 Precondition Failed: the tus 1.0.0 protocol's own answer)

# tus bodies are raw bytes, sent as an application/octet-stream body is
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")


def load(app, *paths: str) -> list:
    schemas = [schemathesis.openapi.from_wsgi(path, app, config=schemathesis.Config.from_str(CONFIG)) for path in paths]
    for schema in schemas:
        assert len(list(schema.get_all_operations())) > 0
    return schemas


# -- auth -----------------------------------------------------------------------------------
def test_auth_document(redis_url, redis_client):
    from redfile_auth import create_app

    app = create_app(**settings_overrides(redis_url, admin_users="admin", admin_password=ADMIN_PASSWORD, **CHEAP_ARGON2))
    settings_ = app.extensions["redfile"].settings
    client = app.test_client()
    svc = auth_header(service_token(settings_, "admin", "auth"))
    for name in ("alice", "bob"):
        assert (
            client.post("/internal/users", json={"username": name, "password": "password-123", "role": "user"}, headers=svc).status_code
            == 201
        )
    login = client.post("/auth/login", json={"username": "alice", "password": "password-123"}, environ_base={"REMOTE_ADDR": "192.0.2.1"})
    assert login.status_code == 200
    session = login.json  # a real session; restoring the snapshot before each example revives it after a logout
    assert session is not None
    state = snapshot(redis_client)

    def headers_for(operation):
        if security_of(operation) == "ServiceToken":
            return auth_header(service_token(settings_, "admin", "auth"))
        if security_of(operation) == "BearerAuth":
            return auth_header(session["access_token"])
        return {}

    def with_body(**fields):
        def tweak(case, draw):
            if isinstance(case.body, dict):
                case.body = {**case.body, **fields}

        return tweak

    tweaks = {  # the right credentials now and then, so the success paths run too
        "POST /auth/login": with_body(username="alice", password="password-123"),
        "POST /auth/refresh": with_body(refresh_token=session["refresh_token"]),
        "POST /auth/logout": with_body(refresh_token=session["refresh_token"]),
        "POST /auth/password": with_body(current_password="password-123"),
    }
    target = Target(
        load(app, "/auth/openapi.json", "/internal/openapi.json"),
        headers_for,
        {"username": ["alice", "bob", "admin", "nobody"]},
        lambda: restore(redis_client, state),
        tweaks,
    )
    run_all(target)
    for label in ("POST /auth/login", "POST /auth/refresh", "POST /auth/password"):
        assert target.statuses[label][200] > 0, (label, target.statuses[label])


# -- files ----------------------------------------------------------------------------------
def test_files_document(redis_url, redis_client, serve):
    from redfile_auth import create_app as create_auth
    from redfile_files import create_app

    auth = create_auth(**settings_overrides(redis_url, admin_users="admin", admin_password=ADMIN_PASSWORD, **CHEAP_ARGON2))
    app = create_app(**settings_overrides(redis_url, auth_url=serve(auth), **FILES_LIMITS))  # auth: who a recipient is
    settings_ = app.extensions["redfile"].settings
    client = app.test_client()
    uids = {name: user_account(redis_client, name) for name in ("alice", "bob")}
    alice = auth_header(user_token(settings_, redis_client, "alice", uid=uids["alice"]))
    bob = auth_header(user_token(settings_, redis_client, "bob", uid=uids["bob"]))

    def created(resp) -> dict:
        assert resp.status_code == 201, resp.get_data(as_text=True)
        return resp.json

    stored = created(
        client.post("/files", headers=alice, json={"name": "hello.txt", "mime_type": "text/plain", "data": b64(b"hello world")})
    )
    text = created(client.post("/texts", headers=alice, json={"name": "todo.txt", "content": "buy milk"}))
    upload = created(client.post("/uploads", headers=alice, json={"name": "up.bin", "total_size": 3, "chunk_size": 1}))
    link = created(client.post(f"/files/{stored['id']}/shares", headers=alice, json={}))
    theirs = created(client.post("/files", headers=bob, json={"name": "bob.txt", "data": b64(b"from bob")}))
    created(client.post(f"/files/{theirs['id']}/recipients", headers=bob, json={"username": "alice"}))
    seed = created(client.post("/upload_chunk", headers=alice, json={"chunk_index": 0, "total_chunks": 2, "chunk_data": b64(b"first")}))
    tus = client.post("/tus/", headers={**alice, "Tus-Resumable": "1.0.0", "Upload-Length": "3"})
    assert tus.status_code == 201, tus.get_data(as_text=True)
    tus_id = tus.headers["Location"].rsplit("/", 1)[1]
    state = snapshot(redis_client)

    def headers_for(operation):
        if security_of(operation) == "ServiceToken":
            return auth_header(service_token(settings_, "admin", "files"))
        if security_of(operation) == "BearerAuth":
            return auth_header(user_token(settings_, redis_client, "alice", uid=uids["alice"]))
        return {}

    known = {
        "file_id": [stored["id"], text["id"], theirs["id"]],
        "upload_id": [upload["id"], tus_id],
        "index": [0, 1, 2],
        "share_id": [link["id"]],
        "token": [link["token"]],
        "username": ["bob"],  # alice is the caller, and sharing with yourself is refused (a rule relative to the caller)
    }

    def upload_chunk(case, draw):  # a chunk of the seeded two-chunk upload, or the first of a new one
        fields = {"chunk_index": draw(st.integers(0, 1)), "total_chunks": 2}
        if draw(st.booleans()):
            fields["file_id"] = seed["file_id"]
        data = draw(st.binary(max_size=80))  # sometimes over the 64-byte chunk limit
        if case.media_type == "application/octet-stream":
            case.query = {**(case.query or {}), **{k: str(v) for k, v in fields.items()}}
            case.body = data
        elif isinstance(case.body, dict):
            chunk = b64(data) if case.media_type == "application/json" else data
            case.body = {k: v for k, v in case.body.items() if k not in ("sha256", "file_id")} | fields | {"chunk_data": chunk}

    def put_chunk(case, draw):  # the right size for the seeded session (1-byte chunks), checksums left out
        case.headers = {k: v for k, v in (case.headers or {}).items() if not k.lower().startswith("x-checksum")}
        case.path_parameters.update(upload_id=upload["id"], index=draw(st.integers(0, 2)))
        case.body = draw(st.binary(min_size=1, max_size=1))

    def tus_patch(case, draw):  # bytes at the right offset of the seeded 3-byte tus upload, no checksum
        case.path_parameters["upload_id"] = tus_id
        case.headers = {
            **{k: v for k, v in (case.headers or {}).items() if k.lower() not in ("upload-checksum", "upload-length")},
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": "0",
        }
        case.body = draw(st.binary(min_size=1, max_size=3))

    def complete(case, draw):
        if isinstance(case.body, dict):
            case.body["file_id"] = seed["file_id"]

    def zip_files(case, draw):
        if isinstance(case.body, dict):
            case.body["file_ids"] = draw(st.lists(st.sampled_from(known["file_id"]), min_size=1, max_size=3))

    tweaks = {
        "POST /upload_chunk": upload_chunk,
        "PUT /uploads/{upload_id}/chunks/{index}": put_chunk,
        "POST /upload_complete": complete,
        "POST /files/zip": zip_files,
        "PATCH /tus/{upload_id}": tus_patch,
    }
    always = frozenset({"POST /upload_chunk", "PUT /uploads/{upload_id}/chunks/{index}"})
    target = Target(
        load(app, "/files/openapi.json", "/internal/openapi.json"), headers_for, known, lambda: restore(redis_client, state), tweaks, always
    )
    run_all(target)
    # tus, documented too, created uploads and stored bytes through its documented operations
    assert target.statuses["POST /tus/"][201] > 0, dict(target.statuses["POST /tus/"])
    assert target.statuses["PATCH /tus/{upload_id}"][204] > 0, dict(target.statuses["PATCH /tus/{upload_id}"])
    # the byte-carrying operations stored something in every form they take
    for label, forms in (
        ("POST /upload_chunk", ("application/json", "multipart/form-data", "application/octet-stream")),
        ("POST /files", ("application/json", "multipart/form-data")),
        ("PUT /uploads/{upload_id}/chunks/{index}", ("application/octet-stream",)),
    ):
        for form in forms:
            assert any(m.startswith(f"{form} 20") for m in target.media_types[label]), (
                label,
                form,
                target.media_types[label],
                dict(target.statuses[label]),
            )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- admin (over the real auth and files apps, on loopback) ---------------------------------
class LateApp:
    """A WSGI app assigned after its server has a port (the apps need each other's URLs)."""

    app: Callable[..., Any] | None = None

    def __call__(self, environ, start_response):
        assert self.app is not None, "the app is set before the first request"
        return self.app(environ, start_response)


def test_admin_document(redis_url, redis_client, serve):
    from redfile_admin import create_app as create_admin
    from redfile_auth import create_app as create_auth
    from redfile_files import create_app as create_files

    auth_slot, files_slot = LateApp(), LateApp()
    urls = {"auth_url": serve(auth_slot), "files_url": serve(files_slot)}
    auth_slot.app = create_auth(**settings_overrides(redis_url, **urls, admin_users="admin", admin_password=ADMIN_PASSWORD, **CHEAP_ARGON2))
    files = files_slot.app = create_files(**settings_overrides(redis_url, **urls, **FILES_LIMITS))
    app = create_admin(**settings_overrides(redis_url, **urls))
    settings_ = app.extensions["redfile"].settings
    client = app.test_client()
    root = auth_header(user_token(settings_, redis_client, "admin", role="admin"))
    for name in ("alice", "bob"):
        resp = client.post("/admin/users", headers=root, json={"username": name, "password": "password-123", "role": "user"})
        assert resp.status_code == 201, resp.get_data(as_text=True)
    alice = auth_header(user_token(settings_, redis_client, "alice"))
    stored = files.test_client().post("/files", headers=alice, json={"name": "a.txt", "data": b64(b"alice's")})
    assert stored.status_code == 201
    state = snapshot(redis_client)

    def headers_for(operation):
        assert security_of(operation) == "BearerAuth", operation.label  # every admin operation
        return auth_header(user_token(settings_, redis_client, "admin", role="admin"))

    known = {"username": ["alice", "bob", "admin", "nobody"], "file_id": [stored.json["id"]]}
    target = Target(load(app, "/admin/openapi.json"), headers_for, known, lambda: restore(redis_client, state))
    run_all(target)
