import pytest
from marshmallow import ValidationError

from redfile_admin.schemas import FileListQuery, PageQuery, RoleChangeIn, UserCreateIn, UserOut, UserPatchIn


def test_create_defaults_to_the_user_role():
    assert UserCreateIn().load({"username": "ann", "password": "pw"}) == {"username": "ann", "password": "pw", "role": "user"}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"password": "pw"}, "username"),
        ({"username": "ann"}, "password"),
        ({"username": "ann", "password": "pw", "role": "root"}, "role"),
        ({"username": 5, "password": "pw"}, "username"),
        ({"username": "ann", "password": ["pw"]}, "password"),
        ({"username": "", "password": "pw"}, "username"),
        ({"username": "a" * 129, "password": "pw"}, "username"),
        ({"username": "ann", "password": "pw", "admin": True}, "admin"),
        ({"username": None, "password": "pw"}, "username"),
    ],
)
def test_create_refuses_bad_input(body, field):
    with pytest.raises(ValidationError) as err:
        UserCreateIn().load(body)
    assert field in err.value.messages


def test_role_change_needs_both_fields_and_a_known_role():
    assert RoleChangeIn().load({"username": "ann", "role": "admin"}) == {"username": "ann", "role": "admin"}
    for body in ({"username": "ann"}, {"role": "user"}, {"username": "ann", "role": "Admin"}):
        with pytest.raises(ValidationError):
            RoleChangeIn().load(body)


def test_patch_needs_at_least_one_change():
    with pytest.raises(ValidationError) as err:
        UserPatchIn().load({})
    assert "_schema" in err.value.messages
    assert UserPatchIn().load({"active": False}) == {"active": False}
    assert UserPatchIn().load({"password": "new", "role": "user"}) == {"password": "new", "role": "user"}


@pytest.mark.parametrize("value", ["false", "no", 0, 1, None, "true"])
def test_patch_active_is_a_json_boolean_only(value):
    with pytest.raises(ValidationError) as err:
        UserPatchIn().load({"active": value})
    assert "active" in err.value.messages


@pytest.mark.parametrize("limit", ["0", "201", "-1", "ten"])
def test_page_limit_is_1_to_200(limit):
    with pytest.raises(ValidationError):
        PageQuery().load({"limit": limit})


def test_page_query_parses_and_passes_owner():
    assert PageQuery().load({"limit": "200", "cursor": "abc"}) == {"limit": 200, "cursor": "abc"}
    assert FileListQuery().load({"owner": "ann"}) == {"owner": "ann"}
    assert PageQuery().load({}) == {}


def test_user_output_keeps_only_the_contract_fields():
    raw = {"username": "ann", "role": "user", "active": True, "created_at": "t", "updated_at": "t", "password_hash": "x"}
    assert UserOut().dump(raw) == {k: v for k, v in raw.items() if k != "password_hash"}
