"""The published OpenAPI documents promise what the servers enforce (the mismatches schemathesis found).

Each test names one mismatch: the rules of the validators in the documents (usernames,
passwords, file names, required bodies), integers as JSON Schema counts them (``1106.0``),
one status for one bad cursor on every list, no body on a 304, a GET with a body on a
POST-only route answering 405, ``OPTIONS /files/zip`` naming its own methods, and the
``/internal/...`` operations in internal documents of their own.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from redfile_common.fields import PASSWORD_MIN, USERNAME_MAX, USERNAME_MIN
from redfile_dev.testing import auth_header, service_token, settings_overrides, user_token
from redfile_files.validation import name_pattern

CHEAP_ARGON2 = {"argon2_memory_kib": 1024, "argon2_time_cost": 1, "argon2_parallelism": 1}


@pytest.fixture
def apps(redis_url, serve):
    from redfile_admin import create_app as create_admin
    from redfile_auth import create_app as create_auth
    from redfile_files import create_app as create_files

    class Late:
        app: Any = None

        def __call__(self, environ, start_response):
            return self.app(environ, start_response)

    auth_slot, files_slot = Late(), Late()
    urls = {"auth_url": serve(auth_slot), "files_url": serve(files_slot)}
    auth_slot.app = create_auth(
        **settings_overrides(redis_url, **urls, admin_users="admin", admin_password="admin-password-1", **CHEAP_ARGON2)
    )
    files_slot.app = create_files(**settings_overrides(redis_url, **urls))
    admin = create_admin(**settings_overrides(redis_url, **urls))
    return {"auth": auth_slot.app, "files": files_slot.app, "admin": admin}


def documents(apps) -> dict[str, dict]:
    return {name: app.test_client().get(f"/{name}/openapi.json").json for name, app in apps.items()}


def operations(doc: dict):
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method != "parameters":  # the path's own parameters, not an operation
                yield path, method, op


def test_internal_operations_are_in_internal_documents_only(apps):
    public = documents(apps)
    for name, doc in public.items():
        assert not [p for p in doc["paths"] if p.startswith("/internal")], name
    internal = {name: app.test_client().get("/internal/openapi.json").json for name, app in apps.items()}
    found = sorted(f"{name} {method.upper()} {path}" for name, doc in internal.items() for path, method, _ in operations(doc))
    assert all(" /internal/" in op for op in found)
    assert len(found) == 13, found  # every one the services route (auth 6, files 7)
    routed = sorted(
        f"{name} {method} {rule.rule}"
        for name, app in apps.items()
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/internal/") and rule.rule != "/internal/openapi.json"
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    )
    assert len(routed) == len(found), routed


@pytest.mark.parametrize(
    ("service", "method", "path"),
    [
        ("files", "post", "/texts"),
        ("files", "post", "/files/zip"),
        ("files", "post", "/files/{file_id}/rename"),
        ("admin", "post", "/admin/roles"),
        ("admin", "put", "/admin/users/{username}/quota"),
        ("admin", "patch", "/admin/users/{username}"),
        ("auth", "post", "/auth/login"),
        ("auth", "post", "/auth/refresh"),
    ],
)
def test_a_body_refused_when_empty_is_documented_as_required(apps, service, method, path):
    doc = documents(apps)[service]
    assert doc["paths"][path][method]["requestBody"].get("required") is True
    client = apps[service].test_client()
    token = user_token(apps[service].extensions["redfile"].settings, apps[service].extensions["redfile"].redis, "admin", role="admin")
    concrete = path.replace("{file_id}", "0" * 32).replace("{username}", "alice")
    resp = client.open(concrete, method=method.upper(), headers={**auth_header(token), "Content-Type": "application/json"})
    assert 400 <= resp.status_code < 500 and resp.status_code != 401, (resp.status_code, resp.get_data(as_text=True))


def schema_of(doc: dict, path: str, method: str) -> dict:
    schema = doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    ref = schema.get("$ref", "")
    return doc["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def test_account_rules_are_documented_as_enforced(apps):
    docs = documents(apps)
    for service, path, method, fields in (
        ("auth", "/auth/login", "post", ("username", "password")),
        ("auth", "/auth/password", "post", ("new_password", "current_password")),
        ("admin", "/admin/users", "post", ("username", "password")),
        ("admin", "/admin/roles", "post", ("username",)),
        ("files", "/files/{file_id}/recipients", "post", ("username",)),
    ):
        props = schema_of(docs[service], path, method)["properties"]
        for field in fields:
            if "password" in field:
                assert props[field]["minLength"] == PASSWORD_MIN, (service, path, field)
            else:
                assert (props[field]["minLength"], props[field]["maxLength"]) == (USERNAME_MIN, USERNAME_MAX), (service, path)
                assert re.fullmatch(props[field]["pattern"], "Alice.Smith") and not re.fullmatch(props[field]["pattern"], "a")
    recipient = schema_of(docs["files"], "/files/{file_id}/recipients", "post")["properties"]["username"]["description"]
    assert "not yourself" in recipient


def test_file_names_are_documented_with_the_validators_rule(apps):
    doc = documents(apps)["files"]
    for path, method, field in (
        ("/texts", "post", "name"),
        ("/files/{file_id}/rename", "post", "new_name"),
        ("/uploads", "post", "name"),
        ("/upload_complete", "post", "name"),
        ("/files/zip", "post", "name"),
        ("/files", "post", "name"),
    ):
        prop = schema_of(doc, path, method)["properties"][field]
        assert prop["pattern"] == name_pattern() and prop["minLength"] == 1, (path, field)
        for bad in ("", " x", "a/b", "\u200b", "..", "x\n"):
            assert not re.fullmatch(prop["pattern"], bad), (path, bad)


def test_integers_written_with_a_fraction_of_zero_are_integers(apps):
    files, admin = apps["files"], apps["admin"]
    rf = files.extensions["redfile"]
    alice = auth_header(user_token(rf.settings, rf.redis, "alice"))
    client = files.test_client()
    upload = client.post("/uploads", headers=alice, json={"name": "a.bin", "total_size": 1106.0, "chunk_size": 553.0})
    assert upload.status_code == 201, upload.get_data(as_text=True)
    assert upload.json["total_size"] == 1106
    chunk = client.post("/upload_chunk", headers=alice, json={"chunk_index": 0.0, "total_chunks": 2.0, "chunk_data": "eHl6"})
    assert chunk.status_code == 201, chunk.get_data(as_text=True)
    stored = client.post("/files", headers=alice, json={"name": "b.txt", "data": base64.b64encode(b"hi").decode()})
    link = client.post(f"/files/{stored.json['id']}/shares", headers=alice, json={"max_downloads": 3.0, "expires_in": 60.0})
    assert link.status_code == 201, link.get_data(as_text=True)
    assert client.post("/uploads", headers=alice, json={"name": "c.bin", "total_size": 1106.5}).status_code == 422
    root = auth_header(user_token(admin.extensions["redfile"].settings, rf.redis, "admin", role="admin"))
    made = admin.test_client().post("/admin/users", headers=root, json={"username": "alice", "password": "password-123"})
    assert made.status_code == 201, made.get_data(as_text=True)
    quota = admin.test_client().put("/admin/users/alice/quota", headers=root, json={"quota_bytes": 1_000_000.0})
    assert quota.status_code == 200, quota.get_data(as_text=True)


def test_one_bad_cursor_is_one_status_on_every_list(apps):
    rf = apps["files"].extensions["redfile"]
    alice = auth_header(user_token(rf.settings, rf.redis, "alice"))
    root = auth_header(user_token(rf.settings, rf.redis, "admin", role="admin"))
    svc = auth_header(service_token(apps["auth"].extensions["redfile"].settings, "admin", "auth"))
    answers = {
        "files /files": apps["files"].test_client().get("/files?cursor=AAAA", headers=alice),
        "auth /internal/users": apps["auth"].test_client().get("/internal/users?cursor=AAAA", headers=svc),
        "admin /admin/users": apps["admin"].test_client().get("/admin/users?cursor=AAAA", headers=root),
        "admin /admin/files": apps["admin"].test_client().get("/admin/files?cursor=AAAA", headers=root),
        "admin /admin/audit": apps["admin"].test_client().get("/admin/audit?cursor=AAAA", headers=root),
    }
    got = {label: (resp.status_code, (resp.json or {}).get("error", {}).get("code")) for label, resp in answers.items()}
    assert set(got.values()) == {(422, "validation_error")}, got


def test_no_answer_without_a_body_documents_one(apps):
    for name, doc in documents(apps).items():
        for path, method, op in operations(doc):
            for status in ("204", "304"):
                if status in op.get("responses", {}):
                    assert "content" not in op["responses"][status], (name, method, path, status)


@pytest.mark.parametrize(("service", "path", "allow"), [("files", "/files/zip", {"POST"}), ("auth", "/auth/login", {"POST"})])
def test_a_get_with_a_body_on_a_post_only_route_is_a_405(apps, service, path, allow):
    client = apps[service].test_client()
    resp = client.get(path, json={"file_ids": ["x"]})
    assert resp.status_code == 405, resp.get_data(as_text=True)
    assert set(resp.headers["Allow"].replace(" ", "").split(",")) - {"OPTIONS"} == allow
    assert resp.json["error"]["code"] == "method_not_allowed"


def test_options_on_files_zip_names_its_own_methods(apps):
    client = apps["files"].test_client()
    assert set(client.options("/files/zip").headers["Allow"].replace(" ", "").split(",")) == {"OPTIONS", "POST"}
    assert client.get("/files/zip").status_code == 405


def test_upload_chunk_fields_in_the_query_with_a_json_body_are_refused(apps):
    rf = apps["files"].extensions["redfile"]
    alice = auth_header(user_token(rf.settings, rf.redis, "alice"))
    client = apps["files"].test_client()
    body = {"chunk_index": 0, "total_chunks": 2, "chunk_data": "eHl6"}
    resp = client.post("/upload_chunk?chunk_index=1&total_chunks=5", headers=alice, json=body)
    assert resp.status_code == 422, resp.get_data(as_text=True)
    assert set(resp.json["error"]["details"]["query"]) == {"chunk_index", "total_chunks"}
    assert not rf.redis.keys("*upload*")  # nothing was started
    form = client.post("/upload_chunk?file_id=x", headers=alice, data={"chunk_index": "0", "total_chunks": "2", "chunk_data": "eHl6"})
    assert form.status_code == 422 and set(form.json["error"]["details"]["query"]) == {"file_id"}
    raw = client.post("/upload_chunk?chunk_index=0&total_chunks=2", headers=alice, data=b"xyz", content_type="application/octet-stream")
    assert raw.status_code == 201, raw.get_data(as_text=True)


def test_checksum_headers_are_documented_with_their_formats(apps):
    from redfile_files.checksums import CRC32C_HEADER_PATTERN, SHA256_HEADER_PATTERN

    put = documents(apps)["files"]["paths"]["/uploads/{upload_id}/chunks/{index}"]["put"]
    headers = {p["name"]: p["schema"] for p in put["parameters"] if p["in"] == "header"}
    assert headers["X-Checksum-SHA256"]["pattern"] == SHA256_HEADER_PATTERN
    assert headers["X-Checksum-CRC32C"]["pattern"] == CRC32C_HEADER_PATTERN


def test_tus_is_documented(apps):
    paths = documents(apps)["files"]["paths"]
    assert set(paths["/tus/"]) == {"options", "post"}
    assert set(paths["/tus/{upload_id}"]) - {"parameters"} == {"head", "patch", "get", "delete"}
    patch = paths["/tus/{upload_id}"]["patch"]
    assert set(patch["requestBody"]["content"]) == {"application/offset+octet-stream"}
    headers = {p["name"]: p for p in patch["parameters"]}
    assert headers["Tus-Resumable"]["required"] and headers["Upload-Offset"]["required"]
    assert {"Upload-Checksum", "Upload-Length"} <= set(headers)


def test_a_method_a_tus_url_never_takes_is_a_405_whatever_the_version(apps):
    rf = apps["files"].extensions["redfile"]
    alice = auth_header(user_token(rf.settings, rf.redis, "alice"))
    resp = apps["files"].test_client().delete("/tus/", headers=alice)  # no Tus-Resumable either
    assert resp.status_code == 405, resp.get_data(as_text=True)
    assert resp.headers["Allow"] == "OPTIONS, POST"


def test_admin_quota_bounds_are_files_bounds(apps):
    props = schema_of(documents(apps)["admin"], "/admin/users/{username}/quota", "put")["properties"]
    internal = apps["files"].test_client().get("/internal/openapi.json").json
    theirs = schema_of(internal, "/internal/owners/{username}/quota", "put")["properties"]
    for field in ("quota_bytes", "max_file_bytes"):
        assert (props[field]["minimum"], props[field]["maximum"]) == (theirs[field]["minimum"], theirs[field]["maximum"]), field
