"""`helm test`: log in, upload a small file in two chunks, download it, compare, delete, log out.

Standard library only (it runs in the Redfile image).  Talks to the auth and files Services
directly (AUTH_URL, FILES_URL), as the bootstrap admin (SMOKE_USERNAME, SMOKE_PASSWORD).
Exits non-zero with one line saying which step failed.
"""

import base64
import json
import os
import sys
import urllib.error
import urllib.request

AUTH = os.environ["AUTH_URL"].rstrip("/")
FILES = os.environ["FILES_URL"].rstrip("/")


def call(method, url, body=None, token=None, expect=(200,)):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, payload = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, payload = err.code, err.read()
    if status not in expect:
        sys.exit(f"smoke: {method} {url} answered {status}: {payload[:300]!r}")
    return payload


def main():
    login = json.loads(
        call("POST", f"{AUTH}/auth/login", {"username": os.environ["SMOKE_USERNAME"], "password": os.environ["SMOKE_PASSWORD"]})
    )
    token = login["access_token"]
    data = os.urandom(96 * 1024)
    halves = [data[: len(data) // 2], data[len(data) // 2 :]]

    def chunk(index, file_id=None):
        body = {"chunk_index": index, "total_chunks": 2, "chunk_data": base64.b64encode(halves[index]).decode()}
        if file_id:
            body["file_id"] = file_id
        return json.loads(call("POST", f"{FILES}/upload_chunk", body, token, expect=(200, 201)))

    file_id = chunk(1)["file_id"]  # out of order, as clients may
    chunk(0, file_id)
    meta = json.loads(
        call(
            "POST",
            f"{FILES}/upload_complete",
            {"file_id": file_id, "name": "helm-test.bin", "mime_type": "application/octet-stream", "total_size": len(data)},
            token,
            expect=(201,),
        )
    )
    if meta["size"] != len(data) or meta["total_chunks"] != 2:
        sys.exit("smoke: the stored file's size or chunk count differs from the upload")
    if call("GET", f"{FILES}/files/{file_id}", token=token) != data:
        sys.exit("smoke: the downloaded bytes differ from the uploaded ones")
    call("DELETE", f"{FILES}/files/{file_id}", token=token, expect=(204,))
    call("POST", f"{AUTH}/auth/logout", {"refresh_token": login["refresh_token"]}, token, expect=(204,))
    print(f"smoke: ok ({len(data)} bytes uploaded in 2 chunks, downloaded identical, deleted)")


if __name__ == "__main__":
    main()
