"""AdminActions over an in-memory Caller: the rules and the order of calls, no network."""

import pytest

from redfile_admin.service import AdminActions, refuse_self_harm, same_account
from redfile_admin.upstream import AuthUsers, FilesCatalogue, segment
from redfile_common.errors import ApiError

USER = {"username": "ann", "role": "user", "active": True, "created_at": "t", "updated_at": "t"}


class Then(list):
    """Successive answers to the same call."""


class ScriptedCaller:
    """Answers ``ServiceClient.call`` from a script: {(service, method, path): result, ApiError or Then(...)}."""

    def __init__(self, script=None):
        self.script = dict(script or {})
        self.calls = []

    def call(self, service, method, path, *, expect=(200,), **kwargs):
        self.calls.append((service, method, path, kwargs))
        result = self.script.get((service, method, path))
        if isinstance(result, Then):
            result = result.pop(0)
        if isinstance(result, Exception):
            raise result
        return result


class AuditLog:
    def __init__(self):
        self.events = []

    def info(self, event, **fields):
        self.events.append(("info", event, fields))

    def error(self, event, **fields):
        self.events.append(("error", event, fields))


def actions(caller, audit=None):
    return AdminActions(AuthUsers(caller), FilesCatalogue(caller), audit=audit or AuditLog())


def test_same_account_ignores_case_and_spaces():
    assert same_account("root", " Root ")
    assert not same_account("root", "root2")


@pytest.mark.parametrize(
    "kwargs, refused",
    [
        ({"delete": True}, True),
        ({"role": "user"}, True),
        ({"active": False}, True),
        ({"role": "admin"}, False),
        ({"active": True}, False),
        ({}, False),
    ],
)
def test_an_admin_may_not_delete_demote_or_disable_themselves(kwargs, refused):
    if refused:
        with pytest.raises(ApiError) as err:
            refuse_self_harm("root", "ROOT", **kwargs)
        assert err.value.status == 409 and err.value.code == "conflict"
    else:
        refuse_self_harm("root", "root", **kwargs)
    refuse_self_harm("root", "ann", delete=True, role="user", active=False)  # others: always allowed


def test_self_harm_is_refused_before_any_call():
    caller = ScriptedCaller()
    with pytest.raises(ApiError):
        actions(caller).delete_user("root", "root")
    with pytest.raises(ApiError):
        actions(caller).change_role("root", "root", "user")
    with pytest.raises(ApiError):
        actions(caller).update_user("root", "root", {"active": False, "password": "x"})
    assert caller.calls == []


def test_usernames_and_ids_are_one_path_segment():
    assert segment("a/b?c=d#e f") == "a%2Fb%3Fc%3Dd%23e%20f"
    caller = ScriptedCaller({("auth", "GET", "/internal/users/..%2Fx"): USER})
    actions(caller).get_user("../x")
    assert caller.calls[0][2] == "/internal/users/..%2Fx"


def test_delete_user_disables_the_account_removes_the_files_and_shares_then_the_account():
    caller = ScriptedCaller(
        {
            ("auth", "PATCH", "/internal/users/ann"): USER,
            ("files", "DELETE", "/internal/owners/ann/files"): Then(
                [{"deleted": 2, "shares_removed": 1}, {"deleted": 0, "shares_removed": 0}]
            ),
        }
    )
    audit = AuditLog()
    actions(caller, audit).delete_user("root", "ann")
    assert [(c[0], c[1], c[2]) for c in caller.calls] == [
        ("auth", "PATCH", "/internal/users/ann"),  # no login, no upload, the name stays taken while its data goes
        ("files", "DELETE", "/internal/owners/ann/files"),
        ("auth", "DELETE", "/internal/users/ann"),
        ("files", "DELETE", "/internal/owners/ann/files"),  # whatever a request in flight stored meanwhile
    ]
    assert caller.calls[0][3]["json"] == {"active": False}
    assert audit.events[-1] == ("info", "admin_user_deleted", {"actor": "root", "target": "ann", "files_deleted": 2, "shares_removed": 1})


def test_delete_user_keeps_the_disabled_account_when_the_files_are_left_and_a_retry_finishes():
    caller = ScriptedCaller(
        {
            ("auth", "PATCH", "/internal/users/ann"): USER,
            ("files", "DELETE", "/internal/owners/ann/files"): Then([ApiError("bad_gateway"), {"deleted": 3}, {"deleted": 0}]),
        }
    )
    with pytest.raises(ApiError) as err:
        actions(caller).delete_user("root", "ann")
    assert err.value.status == 502 and "repeat the request" in err.value.message
    assert ("auth", "DELETE", "/internal/users/ann") not in [(c[0], c[1], c[2]) for c in caller.calls]  # the name stays taken
    actions(caller).delete_user("root", "ann")
    assert [(c[1], c[0]) for c in caller.calls[2:]] == [("PATCH", "auth"), ("DELETE", "files"), ("DELETE", "auth"), ("DELETE", "files")]


def test_delete_user_resumes_when_the_account_went_but_files_are_left():
    caller = ScriptedCaller(
        {
            ("auth", "PATCH", "/internal/users/ann"): ApiError("user_not_found"),
            ("files", "DELETE", "/internal/owners/ann/files"): {"deleted": 0, "shares_removed": 2},
        }
    )
    actions(caller).delete_user("root", "ann")  # auth: gone already; files: its shares removed now
    assert len(caller.calls) == 2


def test_delete_of_an_unknown_user_without_files_is_404():
    caller = ScriptedCaller(
        {
            ("auth", "PATCH", "/internal/users/nobody"): ApiError("user_not_found"),
            ("files", "DELETE", "/internal/owners/nobody/files"): {"deleted": 0, "shares_removed": 0},
        }
    )
    with pytest.raises(ApiError) as err:
        actions(caller).delete_user("root", "nobody")
    assert err.value.code == "user_not_found"


@pytest.mark.parametrize("body", [None, [], "ok"])
def test_a_success_without_the_promised_object_is_a_bad_gateway(body):
    caller = ScriptedCaller({("auth", "GET", "/internal/users/ann"): body})
    with pytest.raises(ApiError) as err:
        actions(caller).get_user("ann")
    assert err.value.status == 502


def test_other_4xx_pass_through():
    caller = ScriptedCaller({("auth", "POST", "/internal/users"): ApiError("user_exists")})
    with pytest.raises(ApiError) as err:
        actions(caller).create_user("root", "ann", "pw", "user")
    assert err.value.code == "user_exists" and err.value.status == 409


def test_list_passes_only_the_given_parameters():
    caller = ScriptedCaller({("files", "GET", "/internal/files"): {"items": [], "next_cursor": None}})
    actions(caller).list_files(owner="ann")
    actions(caller).list_files(limit=5, cursor="c")
    assert caller.calls[0][3]["params"] == {"owner": "ann"}
    assert caller.calls[1][3]["params"] == {"limit": 5, "cursor": "c"}


def test_every_change_is_an_audit_event_with_actor_and_target_and_no_password():
    caller = ScriptedCaller(
        {
            ("auth", "POST", "/internal/users"): USER,
            ("auth", "PATCH", "/internal/users/ann"): USER,
            ("files", "DELETE", "/internal/owners/ann/files"): Then([{"deleted": 1}, {"deleted": 0}]),
        }
    )
    audit = AuditLog()
    acts = actions(caller, audit)
    acts.create_user("root", "ann", "pw-create-secret", "user")
    acts.change_role("root", "ann", "admin")
    acts.update_user("root", "ann", {"password": "pw-reset-secret", "active": False})
    acts.delete_file("root", "f1")
    acts.delete_user("root", "ann")
    assert [(level, event) for level, event, _ in audit.events] == [
        ("info", "admin_user_created"),
        ("info", "admin_role_changed"),
        ("info", "admin_user_updated"),
        ("info", "admin_file_deleted"),
        ("info", "admin_user_deleted"),
    ]
    for _, _, fields in audit.events:
        assert fields["actor"] == "root" and fields["target"] in ("ann", "f1")
        assert "secret" not in repr(fields)
    assert audit.events[2][2] == {"actor": "root", "target": "ann", "fields": ["active", "password"], "active": False}
    assert audit.events[4][2]["files_deleted"] == 1


QUOTA = {
    "username": "ann",
    "quota_bytes": 1000,
    "max_file_bytes": 500,
    "used_bytes": 0,
    "reserved_bytes": 0,
    "available_bytes": 1000,
    "quota_is_default": False,
    "max_file_is_default": False,
}


def test_set_quota_checks_the_account_then_asks_files_and_is_audited():
    caller = ScriptedCaller({("auth", "GET", "/internal/users/ann"): USER, ("files", "PUT", "/internal/owners/ann/quota"): QUOTA})
    audit = AuditLog()
    assert actions(caller, audit).set_quota("root", "ann", 1000, 500) == QUOTA
    assert [(c[0], c[1], c[2]) for c in caller.calls] == [
        ("auth", "GET", "/internal/users/ann"),
        ("files", "PUT", "/internal/owners/ann/quota"),
    ]
    assert caller.calls[1][3]["json"] == {"quota_bytes": 1000, "max_file_bytes": 500}
    assert audit.events == [("info", "admin_quota_set", {"actor": "root", "target": "ann", "quota_bytes": 1000, "max_file_bytes": 500})]


def test_quota_of_an_unknown_user_is_404_and_files_is_never_asked():
    caller = ScriptedCaller({("auth", "GET", "/internal/users/nobody"): ApiError("user_not_found")})
    for call in (lambda a: a.get_quota("nobody"), lambda a: a.set_quota("root", "nobody", None, None)):
        with pytest.raises(ApiError) as err:
            call(actions(caller))
        assert err.value.code == "user_not_found"
    assert {c[0] for c in caller.calls} == {"auth"}
