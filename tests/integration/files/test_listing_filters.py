"""GET /files: folder (and recursive), q, sort, order, min_size/max_size, with cursors that hold while files come and go."""

import pytest


def listing(client, headers, **query):
    resp = client.get("/files", headers=headers, query_string=query)
    assert resp.status_code == 200, resp.json
    return resp.json


def names_of(page) -> list[str]:
    return [f["name"] for f in page["items"]]


def everything(client, headers, cursor=None, **query) -> list[str]:
    """Every page from ``cursor`` on, following the cursors (bounded)."""
    out = []
    for _ in range(100):
        page = listing(client, headers, **query, **({"cursor": cursor} if cursor else {}))
        out += names_of(page)
        cursor = page["next_cursor"]
        if not cursor:
            return out
    raise AssertionError("the cursors never ended")


@pytest.fixture
def tree(api, alice):
    made = {}
    for folder, name, size in [
        ("/a", "b.txt", 3),
        ("/a", "Straße.txt", 1),
        ("/a", "C.txt", 7),
        ("/a/sub", "deep.txt", 5),
        ("/ab", "beside.txt", 2),
        ("/", "Résumé.pdf", 9),
    ]:
        made[name] = api.session(alice, b"x" * size, name=name, folder=folder)
    return made


def test_a_folder_lists_its_own_files_by_name(client, alice, tree):
    assert names_of(listing(client, alice, folder="/a")) == ["b.txt", "C.txt", "Straße.txt"]
    assert names_of(listing(client, alice, folder="/a", order="desc")) == ["Straße.txt", "C.txt", "b.txt"]
    assert names_of(listing(client, alice, folder="/")) == ["Résumé.pdf"]
    assert names_of(listing(client, alice, folder="/nothing")) == []


def test_recursive_takes_the_subtree_and_not_a_sibling_with_a_longer_name(client, alice, tree):
    assert names_of(listing(client, alice, folder="/a", recursive="true")) == ["b.txt", "C.txt", "Straße.txt", "deep.txt"]
    assert len(listing(client, alice, folder="/", recursive="true")["items"]) == 6


def test_q_is_a_case_insensitive_unicode_substring_of_the_name(client, alice, tree):
    assert names_of(listing(client, alice, q="STRASSE")) == ["Straße.txt"]
    assert names_of(listing(client, alice, q="résumé")) == ["Résumé.pdf"]
    assert names_of(listing(client, alice, q=".TXT", folder="/a")) == ["b.txt", "C.txt", "Straße.txt"]
    assert names_of(listing(client, alice, q="zzz")) == []


def test_sort_by_size_with_bounds(client, alice, tree):
    ascending = ["Straße.txt", "beside.txt", "b.txt", "deep.txt", "C.txt", "Résumé.pdf"]
    assert names_of(listing(client, alice, sort="size", order="asc")) == ascending
    assert names_of(listing(client, alice, sort="size")) == list(reversed(ascending))  # largest first unless asked
    assert names_of(listing(client, alice, sort="size", limit=2)) == ["Résumé.pdf", "C.txt"]
    assert names_of(listing(client, alice, sort="size", order="asc", min_size=3, max_size=7)) == ["b.txt", "deep.txt", "C.txt"]


def test_the_default_is_still_newest_first(client, alice, tree):
    assert names_of(listing(client, alice)) == list(reversed(list(tree)))


@pytest.mark.parametrize(("query"), [{"folder": "/a", "recursive": "true"}, {"sort": "size", "order": "asc"}, {"sort": "name"}])
def test_cursors_page_through_everything_once_while_files_come_and_go(api, client, alice, tree, query):
    first = listing(client, alice, limit=2, **query)
    # a file added before the cursor's position and one after it; one deleted
    api.session(alice, b"", name="0-first.txt", folder="/a")
    api.session(alice, b"x" * 100, name="zz-last.txt", folder="/a")
    rest = everything(client, alice, limit=2, cursor=first["next_cursor"], **query)
    seen = names_of(first) + rest
    assert len(seen) == len(set(seen))  # nothing twice
    assert "zz-last.txt" in seen and "0-first.txt" not in seen


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({"folder": "a"}, 400, "invalid_folder"),
        ({"folder": "/a//b"}, 400, "invalid_folder"),
        ({"sort": "colour"}, 422, "validation_error"),
        ({"order": "up"}, 422, "validation_error"),
        ({"min_size": "-1"}, 422, "validation_error"),
        ({"sort": "size", "cursor": "bm90IGEgY3Vyc29y"}, 422, "validation_error"),
        ({"q": "x" * 256}, 422, "validation_error"),
        ({"folder": "/a", "sort": "created_at"}, 400, "unsupported_query"),
        ({"q": "a", "sort": "size"}, 400, "unsupported_query"),
    ],
)
def test_bad_values_are_refused(client, alice, tree, query, status, code):
    resp = client.get("/files", headers=alice, query_string=query)
    assert (resp.status_code, resp.json["error"]["code"]) == (status, code), resp.json


def test_a_cursor_of_one_sort_is_no_cursor_of_another(client, alice, tree):
    cursor = listing(client, alice, sort="size", limit=1)["next_cursor"]
    resp = client.get("/files", headers=alice, query_string={"sort": "name", "cursor": cursor})
    assert (resp.status_code, resp.json["error"]["code"]) == (422, "validation_error")


def test_created_bounds_and_the_oldest_first(client, alice, tree):
    everyone = listing(client, alice, order="asc")["items"]
    assert [f["name"] for f in everyone] == list(tree)
    after = everyone[2]["created_at"]
    later = names_of(listing(client, alice, order="asc", created_after=after))
    assert later[: len(later)] == [n for n in list(tree) if tree[n]["created_at"] >= after]


def test_type_is_a_mime_prefix_in_any_order(api, client, alice, tree):
    api.session(alice, b"png", name="pic.png", folder="/a", mime_type="image/png")
    api.session(alice, b"jpeg!", name="pic.jpg", folder="/b", mime_type="image/jpeg")
    assert names_of(listing(client, alice, type="image")) == ["pic.jpg", "pic.png"]
    assert names_of(listing(client, alice, type="image/")) == ["pic.jpg", "pic.png"]
    assert names_of(listing(client, alice, type="IMAGE/PNG")) == ["pic.png"]
    assert names_of(listing(client, alice, type="image", sort="size", order="asc")) == ["pic.png", "pic.jpg"]
    assert names_of(listing(client, alice, type="image", folder="/a")) == ["pic.png"]
    assert names_of(listing(client, alice, type="application/pdf")) == ["Résumé.pdf"]
    assert names_of(listing(client, alice, type="video")) == []
    assert names_of(listing(client, alice, type="imag")) == []  # a type, not any prefix of one


def test_a_selective_type_gives_short_pages_whose_cursors_reach_every_match(api, client, alice):
    for i in range(12):
        api.session(alice, b"x", name=f"t{i:02}.txt", mime_type="text/plain")
    api.session(alice, b"x", name="only.png", mime_type="image/png")
    for i in range(12, 20):
        api.session(alice, b"x", name=f"t{i:02}.txt", mime_type="text/plain")
    assert everything(client, alice, type="image", limit=1, sort="name") == ["only.png"]
    first = listing(client, alice, type="image", limit=2)  # newest first: 4 rounds of 2 read, the image not among them
    assert first["items"] == [] and first["next_cursor"]
    assert everything(client, alice, type="image", limit=2) == ["only.png"]


@pytest.mark.parametrize("bad", ["", "/png", "image//png", "ima ge", "image/png/x", "é"])
def test_a_bad_type_is_refused(client, alice, bad):
    resp = client.get("/files", headers=alice, query_string={"type": bad})
    assert (resp.status_code, resp.json["error"]["code"]) == (422, "validation_error"), resp.json
