"""Property-based: any chunk order, any repeats, any sizes (and any ranges) give back the same bytes.

Against the real Redis, through the app; every result is compared byte for byte.
"""

from concurrent.futures import ThreadPoolExecutor

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import CHUNK

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def session_plans(draw):
    data = draw(st.binary(min_size=0, max_size=600))
    chunk = draw(st.integers(min_value=1, max_value=CHUNK))
    total = -(-len(data) // chunk)
    order = draw(st.permutations(range(total)))
    repeats = draw(st.lists(st.integers(min_value=0, max_value=max(0, total - 1)), max_size=5)) if total else []
    return data, chunk, list(order) + repeats


@st.composite
def seed_plans(draw):
    """Chunks of varying sizes (the seed API lets a client choose them), sent in any order with repeats."""
    sizes = draw(st.lists(st.integers(min_value=0, max_value=CHUNK), min_size=1, max_size=12))
    data = draw(st.binary(min_size=sum(sizes), max_size=sum(sizes)))
    order = draw(st.permutations(range(len(sizes))))
    repeats = draw(st.lists(st.sampled_from(range(len(sizes))), max_size=4))
    return data, sizes, list(order) + repeats


@SETTINGS
@given(plan=session_plans(), ranges=st.lists(st.tuples(st.integers(0, 700), st.integers(0, 700)), max_size=3))
def test_sessions_round_trip_whatever_the_order_repeats_and_sizes(api, client, alice, plan, ranges):
    data, chunk, sends = plan
    up = api.create(alice, len(data), chunk_size=chunk).json
    for index in sends:
        resp = api.put(alice, up["id"], index, data[index * chunk : (index + 1) * chunk])
        assert resp.status_code in (200, 201), resp.json
    meta = client.post(f"/uploads/{up['id']}/complete", headers=alice).json
    assert meta["size"] == len(data)
    assert client.get(f"/files/{meta['id']}", headers=alice).data == data
    for a, b in ranges:
        lo, hi = min(a, b), max(a, b)
        resp = client.get(f"/files/{meta['id']}", headers={**alice, "Range": f"bytes={lo}-{hi}"})
        if lo >= len(data):
            assert resp.status_code == 416
        else:
            assert resp.status_code == 206 and resp.data == data[lo : hi + 1]


@SETTINGS
@given(plan=seed_plans(), start=st.integers(0, 800))
def test_seed_uploads_round_trip_whatever_the_order_repeats_and_sizes(api, client, alice, plan, start):
    data, sizes, sends = plan
    offsets = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
    file_id = None
    for index in sends:
        resp = api.chunk(alice, index, len(sizes), data[offsets[index] : offsets[index + 1]], file_id)
        assert resp.status_code in (200, 201), resp.json
        file_id = resp.json["file_id"]
    meta = api.complete(alice, file_id, len(data)).json
    assert client.get(f"/files/{meta['id']}", headers=alice).data == data
    if start < len(data):
        assert client.get(f"/files/{meta['id']}", headers={**alice, "Range": f"bytes={start}-"}).data == data[start:]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=session_plans())
def test_parallel_chunks_give_the_same_bytes(app, alice, plan):
    data, chunk, sends = plan
    client = app.test_client()
    up = client.post("/uploads", headers=alice, json={"name": "p", "total_size": len(data), "chunk_size": chunk}).json

    def send(index):
        resp = app.test_client().put(f"/uploads/{up['id']}/chunks/{index}", headers=alice, data=data[index * chunk : (index + 1) * chunk])
        return resp.status_code

    with ThreadPoolExecutor(6) as pool:
        assert set(pool.map(send, sends)) <= {200, 201}
    meta = client.post(f"/uploads/{up['id']}/complete", headers=alice).json
    assert client.get(f"/files/{meta['id']}", headers=alice).data == data
