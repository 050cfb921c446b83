"""The tus endpoint, served by the real files app connected as its own Redis ACL user.

Every tus script runs here (appends with chunks written in place and staged
chunks renamed into place, a length set later, a final upload linked to an
unfinished partial and copied, a file annotated, a termination): a command the
files user lacks would be a 5xx and an entry in Redis's ACL LOG.
"""

from __future__ import annotations

import base64
import hashlib
import os

import requests

from .test_apps_as_acl_users import ROOT_PASSWORD, acl_violations, bearer, login, system  # noqa: F401 - system is a fixture

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {"Content-Type": "application/offset+octet-stream"}


def test_tus_uploads_as_the_files_user(system, ops):  # noqa: F811
    files = system["files"]
    h = {**bearer(login(system, "root", ROOT_PASSWORD)["access_token"]), **TUS}

    def create(**headers) -> str:
        resp = requests.post(f"{files}/tus/", headers={**h, **headers}, timeout=10)
        assert resp.status_code == 201, resp.text
        return resp.headers["Location"]

    def patch(url, offset, data, **headers):
        resp = requests.patch(f"{files}{url}", headers={**h, **OCTET, "Upload-Offset": str(offset), **headers}, data=data, timeout=30)
        assert resp.status_code == 204, resp.text
        return resp

    a, b = os.urandom(100_000), os.urandom(50_000)
    pa = create(**{"Upload-Length": str(len(a)), "Upload-Concat": "partial"})
    patch(pa, 0, a[:60_000], **{"Upload-Checksum": "sha1 " + base64.b64encode(hashlib.sha1(a[:60_000]).digest()).decode()})
    patch(pa, 60_000, a[60_000:])
    pb = create(**{"Upload-Defer-Length": "1", "Upload-Concat": "partial"})
    patch(pb, 0, b[:10])
    name = base64.b64encode(b"acl.bin").decode()
    final = create(**{"Upload-Concat": f"final;{pa} {pb}", "Upload-Metadata": f"filename {name}"})
    patch(pb, 10, b[10:], **{"Upload-Length": str(len(b))})  # the last byte makes the final
    head = requests.head(f"{files}{final}", headers=h, timeout=10)
    assert head.status_code == 200 and head.headers["Upload-Offset"] == str(len(a) + len(b))
    assert requests.get(f"{files}{final}", headers=h, timeout=30).content == a + b
    gone = create(**{"Upload-Length": "10"})
    patch(gone, 0, b"12345")
    assert requests.delete(f"{files}{gone}", headers=h, timeout=10).status_code == 204
    assert acl_violations(ops) == []
