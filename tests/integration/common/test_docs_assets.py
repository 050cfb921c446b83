"""Each service's API docs page loads everything it needs from the service itself, under its own prefix."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from redfile_common import docs_assets
from redfile_dev.testing import settings_overrides

URL = re.compile(r"""https?://[^\s"'<>)]+""")
CONTENT_TYPES = {".js": {"text/javascript", "application/javascript"}, ".css": {"text/css"}, ".png": {"image/png"}}


class References(HTMLParser):
    """The URLs a page makes the browser load: <script src>, <link href>, <img src>."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        self.found += [value for name, value in attrs if name == wanted and value]


def references(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    return parser.found


def make_app(service: str, redis_url: str):
    from redfile_admin import create_app as admin
    from redfile_auth import create_app as auth
    from redfile_files import create_app as files

    factory = {"auth": auth, "files": files, "admin": admin}[service]
    # auth creates its first admin when it starts: a cheap hash, as its own tests make one
    extra = {"admin_password": "docs-admin-password-1", "argon2_memory_kib": 1024, "argon2_time_cost": 1} if service == "auth" else {}
    return factory(**settings_overrides(redis_url, **extra))


@pytest.mark.parametrize("service", ["auth", "files", "admin"])
def test_the_docs_page_loads_only_the_services_own_files(service, redis_url):
    client = make_app(service, redis_url).test_client()
    page = client.get(f"/{service}/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    code = "\n".join(line for line in html.splitlines() if not line.strip().startswith("//"))  # not the template's JS comments
    assert URL.findall(code) == [], "the docs page loads from another site"

    refs = references(html)
    assert sorted(refs) == sorted(f"{docs_assets.assets_path(service)}/{file}" for file in docs_assets.ASSETS.values())
    for ref in refs:
        assert ref.startswith(f"/{service}/"), f"{ref} is outside /{service}/, where the front door would not send it to {service}"
        resp = client.get(ref)
        assert resp.status_code == 200, ref
        assert resp.mimetype in CONTENT_TYPES[ref[ref.rindex(".") :]], f"{ref}: {resp.mimetype}"
        assert resp.get_data() == (docs_assets.SWAGGER_UI_DIST / ref.rsplit("/", 1)[1]).read_bytes(), ref
        resp.close()

    spec = re.search(r'url: "([^"]+)"', html)
    assert spec and spec.group(1) == f"/{service}/openapi.json"
    assert client.get(spec.group(1)).status_code == 200


def test_the_shipped_swagger_ui_renders_the_openapi_version_the_services_write(redis_url):
    """Swagger UI renders an OpenAPI 3.1 document from version 5 on; 4.x shows an error instead of the operations."""
    openapi = make_app("auth", redis_url).test_client().get("/auth/openapi.json").get_json()["openapi"]
    ui = (docs_assets.SWAGGER_UI_DIST / "VERSION").read_text().strip()
    major = int(ui.lstrip("v").split(".")[0])
    assert openapi.startswith("3.0") or major >= 5, f"Swagger UI {ui} cannot render OpenAPI {openapi}"


def test_a_missing_asset_is_a_json_404(redis_url):
    resp = make_app("auth", redis_url).test_client().get("/auth/docs-assets/nothing.js")
    assert resp.status_code == 404
    assert resp.get_json()["error"]["code"] == "not_found"
