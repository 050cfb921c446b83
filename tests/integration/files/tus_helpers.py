"""A tiny tus client over the Flask test client, for the tus tests (imported, not a conftest)."""

from __future__ import annotations

import base64
import io
import threading
from types import SimpleNamespace

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = "application/offset+octet-stream"


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


class Tus:
    def __init__(self, client) -> None:
        self.client = client

    def create(self, auth, length=None, *, defer=False, meta=None, concat=None, data=None, headers=None):
        h = {**auth, **TUS}
        if length is not None:
            h["Upload-Length"] = str(length)
        if defer:
            h["Upload-Defer-Length"] = "1"
        if meta is not None:
            h["Upload-Metadata"] = meta
        if concat is not None:
            h["Upload-Concat"] = concat
        h.update(headers or {})
        if data is not None:
            return self.client.post("/tus/", headers=h, data=data, content_type=OCTET)
        return self.client.post("/tus/", headers=h)

    def new(self, auth, length=None, **kw) -> str:
        resp = self.create(auth, length, **kw)
        assert resp.status_code == 201, (resp.status_code, resp.get_json())
        return resp.headers["Location"]

    def patch(self, auth, url, offset, data: bytes, headers=None, content_type=OCTET, **kw):
        h = {**auth, **TUS, "Upload-Offset": str(offset), **(headers or {})}
        return self.client.patch(url, headers=h, data=data, content_type=content_type, **kw)

    def head(self, auth, url, headers=None):
        return self.client.head(url, headers={**auth, **TUS, **(headers or {})})

    def delete(self, auth, url):
        return self.client.delete(url, headers={**auth, **TUS})

    def offset(self, auth, url) -> int:
        resp = self.head(auth, url)
        assert resp.status_code == 200, resp.status_code
        return int(resp.headers["Upload-Offset"])

    def upload(self, auth, data: bytes, *, steps=(), name="file.bin", **kw) -> str:
        """Create and send ``data`` in PATCHes that end at each offset in ``steps`` (then the rest); the upload's URL."""
        url = self.new(auth, len(data), meta=metadata(filename=name), **kw)
        offset = 0
        for end in [*steps, len(data)]:
            if end <= offset and offset == len(data):
                break
            resp = self.patch(auth, url, offset, data[offset:end])
            assert resp.status_code == 204, (resp.status_code, resp.get_json())
            offset = int(resp.headers["Upload-Offset"])
            assert offset == end
        return url


def upload_id(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


class ShortBody(io.BytesIO):
    """A body that ends (the client went away) before the Content-Length it announced."""


def cut_body(data: bytes, announced: int) -> dict:
    """Test-client kwargs for a body of ``data`` that announced ``announced`` bytes."""
    return {"input_stream": ShortBody(data), "environ_overrides": {"CONTENT_LENGTH": str(announced)}}


class GunicornLikeBody(io.BytesIO):
    """A chunked body as gunicorn hands it over: its trailers on ``reader.req.trailers`` once read."""

    def __init__(self, data: bytes, trailers: list[tuple[str, str]]) -> None:
        super().__init__(data)
        self.reader = SimpleNamespace(req=SimpleNamespace(trailers=trailers))


def chunked_with_trailers(data: bytes, trailers: list[tuple[str, str]]) -> dict:
    return {"input_stream": GunicornLikeBody(data, trailers), "environ_overrides": {"wsgi.input_terminated": True, "CONTENT_LENGTH": ""}}


class GatedBody(io.BytesIO):
    """A body whose first read waits until every request sharing ``gate`` is reading its body."""

    def __init__(self, data: bytes, gate: threading.Barrier) -> None:
        super().__init__(data)
        self.gate = gate
        self.waited = False

    def read(self, size=-1):
        if not self.waited:
            self.waited = True
            self.gate.wait(timeout=10)
        return super().read(size)
