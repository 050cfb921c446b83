"""Named shares stored before account ids (a username -> created_at row) after the upgrade.

Old-format rows are written raw into the real Redis, as those releases wrote them; auth runs for
real on loopback and says who each name is now.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from redfile_dev.testing import test_env as service_env
from redfile_dev.testing import user_account
from redfile_files.maintenance.upgrade_shares import ShareUpgrade

from .share_helpers import files_keys


def stored_by_name(r, file_id: str, owner: str, name: str, created: str = "2025-01-31T12:00:00Z") -> None:
    """A share as releases before account ids stored it: the name typed -> when, and the typed name's inbox."""
    r.hset(f"files:{{{file_id}}}:recipients", name, created)
    r.hset(f"files:{{u:{name}}}:inbox", file_id, owner)


def rows(r, file_id: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in r.hgetall(f"files:{{{file_id}}}:recipients").items()}


def upgrade(domain, r, **options):
    return ShareUpgrade(domain.sharing.store, domain.sharing.directory).run(**options)


def test_the_upgrade_converts_shares_stored_by_name_and_drops_and_reports_unknown_names(api, client, alice, bob, domain, redis_client):
    f = api.upload(alice, b"for bob", name="f.txt")
    g = api.upload(alice, b"for Bob as typed", name="g.txt")
    stored_by_name(redis_client, f["id"], "alice", "bob")
    stored_by_name(redis_client, g["id"], "alice", "Bob", created="1700000000.25")
    stored_by_name(redis_client, f["id"], "alice", "ghost")  # nobody has the name now
    bob_id = user_account(redis_client, "bob")

    report = upgrade(domain, redis_client)
    assert (report.scanned, report.name_rows, report.converted, report.dropped, report.complete) == (2, 3, 2, 1, True)
    assert report.dropped_shares == [{"file_id": f["id"], "username": "ghost"}]
    assert rows(redis_client, f["id"]) == {bob_id: "bob"} and rows(redis_client, g["id"]) == {bob_id: "bob"}
    assert not redis_client.exists("files:{u:ghost}:inbox") and not redis_client.exists("files:{u:Bob}:inbox")
    assert domain.consistency_checker().check(deep=False, strict=True, max_seconds=30)["ok"]

    listed = {item["id"] for item in client.get("/shared-with-me", headers=bob).json["items"]}
    assert listed == {f["id"], g["id"]}
    assert client.get(f"/shared-with-me/{g['id']}", headers=bob).status_code == 200
    assert client.get(f"/files/{f['id']}/recipients", headers=alice).json == {"recipients": ["bob"]}
    assert client.delete(f"/files/{g['id']}/recipients/bob", headers=alice).status_code == 204
    assert client.get(f"/shared-with-me/{g['id']}", headers=bob).status_code == 404

    before = files_keys(redis_client)
    again = upgrade(domain, redis_client)
    assert (again.name_rows, again.converted, again.dropped) == (0, 0, 0) and files_keys(redis_client) == before


def test_a_dry_run_reports_and_writes_nothing(api, alice, bob, domain, redis_client):
    f = api.upload(alice, b"x")
    stored_by_name(redis_client, f["id"], "alice", "bob")
    stored_by_name(redis_client, f["id"], "alice", "ghost")
    before = files_keys(redis_client)
    report = upgrade(domain, redis_client, dry_run=True)
    assert (report.converted, report.dropped, report.dry_run) == (1, 1, True) and files_keys(redis_client) == before


def test_before_the_upgrade_a_share_stored_by_name_is_read_and_unshared_as_the_names_account(api, client, alice, bob, redis_client):
    f = api.upload(alice, b"for bob")
    stored_by_name(redis_client, f["id"], "alice", "bob")
    assert [item["id"] for item in client.get("/shared-with-me", headers=bob).json["items"]] == [f["id"]]
    assert client.get(f"/shared-with-me/{f['id']}", headers=bob).status_code == 200
    assert client.get(f"/files/{f['id']}/recipients", headers=alice).json == {"recipients": ["bob"]}  # the name, not the timestamp
    assert client.delete(f"/files/{f['id']}/recipients/bob", headers=alice).status_code == 204
    assert client.get(f"/shared-with-me/{f['id']}", headers=bob).status_code == 404
    assert rows(redis_client, f["id"]) == {} and not redis_client.hexists("files:{u:bob}:inbox", f["id"])


def test_sharing_again_with_a_name_stored_the_old_way_leaves_one_account_row(api, client, alice, bob, redis_client):
    f = api.upload(alice, b"for bob")
    stored_by_name(redis_client, f["id"], "alice", "bob")
    assert client.post(f"/files/{f['id']}/recipients", headers=alice, json={"username": "bob"}).status_code == 201
    assert rows(redis_client, f["id"]) == {user_account(redis_client, "bob"): "bob"}


def test_deleting_a_file_shared_by_name_empties_the_recipients_inbox(api, client, alice, bob, redis_client):
    f = api.upload(alice, b"for Bob")
    stored_by_name(redis_client, f["id"], "alice", "Bob")
    assert client.delete(f"/files/{f['id']}", headers=alice).status_code == 204
    assert not redis_client.exists("files:{u:Bob}:inbox") and not redis_client.exists(f"files:{{{f['id']}}}:recipients")


def test_the_console_script_reports_as_json_and_exits_0_when_nothing_is_left(api, alice, bob, redis_url, auth_url, redis_client):
    """``redfile-upgrade-shares`` as an operator runs it, with the files service's environment."""
    f = api.upload(alice, b"x")
    stored_by_name(redis_client, f["id"], "alice", "bob")
    stored_by_name(redis_client, f["id"], "alice", "ghost")
    env = {**os.environ, **service_env(redis_url, SERVICE_NAME="files", AUTH_URL=auth_url)}
    command = [str(Path(sys.executable).with_name("redfile-upgrade-shares")), "--quiet"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 0, done.stderr
    assert (summary["converted"], summary["dropped"], summary["complete"]) == (1, 1, True)
    assert summary["dropped_shares"] == [{"file_id": f["id"], "username": "ghost"}]
    assert rows(redis_client, f["id"]) == {user_account(redis_client, "bob"): "bob"}
