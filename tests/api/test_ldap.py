"""LDAP sign-in against a real OpenLDAP slapd started here with its own temporary configuration.

The directory (dc=example,dc=org): alice in group netops (-> network_manager), bob in analysts
(-> security_analyst), carol in no mapped group. Both ways of finding the user are tested: a
DN template bound directly, and a search with a service account.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ApiServer
from logmaster.tlscert import self_signed
from slapd_support import GROUPS, PEOPLE, ROOT_DN, ROOT_PW, USERS, Slapd, running_slapd
from support import free_port


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with running_slapd(tmp_path_factory.mktemp("slapd")) as directory:
        yield directory


ROLES = {f"cn=netops,{GROUPS}": "network_manager", "analysts": "security_analyst"}


@pytest.fixture
def template_api(start_api: Callable[..., ApiServer], slapd: Slapd) -> ApiServer:
    return start_api(
        ldap={
            "url": slapd.url,
            "bind_dn_template": f"uid={{username}},{PEOPLE}",
            "group_base": GROUPS,
            "group_roles": ROLES,
        }
    )


def _login(api: ApiServer, username: str, password: str) -> httpx.Response:
    return api.client().post("/auth/login", json={"username": username, "password": password})


def _me(api: ApiServer, r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    me: dict[str, Any] = (
        api.client().get("/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
    )
    return me


def test_ldap_bind_maps_groups_to_roles(template_api: ApiServer) -> None:
    """alice binds, her group netops (by DN) maps to network_manager; bob's (by cn) to analyst."""
    alice = _me(template_api, _login(template_api, "alice", USERS["alice"]))
    assert alice["roles"] == ["network_manager"] and alice["display_name"] == "Alice Test"
    bob = _me(template_api, _login(template_api, "bob", USERS["bob"]))
    assert bob["roles"] == ["security_analyst"]
    # Local accounts keep working beside LDAP.
    assert _login(template_api, "admin", template_api.admin_password).status_code == 200


def test_ldap_refusals(template_api: ApiServer) -> None:
    """Wrong password and unknown user: 401; no mapped group: 403 naming the fix."""
    wrong = _login(template_api, "alice", "not-her-password")
    assert wrong.status_code == 401 and wrong.json()["type"].endswith("/invalid-credentials")
    assert _login(template_api, "nobody", "whatever").status_code == 401
    carol = _login(template_api, "carol", USERS["carol"])
    assert carol.status_code == 403 and carol.json()["type"].endswith("/ldap-no-role")
    assert "group_roles" in carol.json()["detail"]
    # Filter/DN metacharacters are escaped, not interpreted.
    for name in ("alice)(uid=*", "*", "alice,ou=people"):
        assert _login(template_api, name, USERS["alice"]).status_code in (401, 422), name


def test_ldap_group_change_applies_at_next_sign_in(template_api: ApiServer, slapd: Slapd) -> None:
    """Moving a user to another group changes their role at the next sign-in."""
    assert _me(template_api, _login(template_api, "bob", USERS["bob"]))["roles"] == [
        "security_analyst"
    ]
    slapd.modify(
        f"dn: cn=analysts,{GROUPS}\nchangetype: modify\ndelete: member\n"
        f"member: uid=bob,{PEOPLE}\n\n"
        f"dn: cn=netops,{GROUPS}\nchangetype: modify\nadd: member\n"
        f"member: uid=bob,{PEOPLE}\n"
    )
    try:
        assert _me(template_api, _login(template_api, "bob", USERS["bob"]))["roles"] == [
            "network_manager"
        ]
    finally:
        slapd.modify(
            f"dn: cn=netops,{GROUPS}\nchangetype: modify\ndelete: member\n"
            f"member: uid=bob,{PEOPLE}\n\n"
            f"dn: cn=analysts,{GROUPS}\nchangetype: modify\nadd: member\n"
            f"member: uid=bob,{PEOPLE}\n"
        )


def test_ldap_search_mode(
    start_api: Callable[..., ApiServer], slapd: Slapd, tmp_path: Path
) -> None:
    """A service account finds the user's DN by uid; then the user's own bind decides."""
    secret = tmp_path / "ldap.pw"
    secret.write_text(ROOT_PW + "\n")
    secret.chmod(0o600)
    srv = start_api(
        ldap={
            "url": slapd.url,
            "search_bind_dn": ROOT_DN,
            "search_bind_password_file": str(secret),
            "user_base": PEOPLE,
            "group_base": GROUPS,
            "group_roles": ROLES,
        }
    )
    assert _me(srv, _login(srv, "bob", USERS["bob"]))["roles"] == ["security_analyst"]
    assert _login(srv, "bob", USERS["alice"]).status_code == 401


def test_ldap_unreachable_is_503(start_api: Callable[..., ApiServer]) -> None:
    """A directory that cannot be reached is a 503 problem, not a wrong password."""
    srv = start_api(
        ldap={
            "url": f"ldap://127.0.0.1:{free_port()}",
            "timeout_s": 2,
            "bind_dn_template": f"uid={{username}},{PEOPLE}",
        }
    )
    r = _login(srv, "alice", USERS["alice"])
    assert r.status_code == 503 and r.json()["type"].endswith("/ldap-unavailable")
    assert "LDAP" in r.json()["detail_tr"]


def test_ldap_over_tls(start_api: Callable[..., ApiServer], slapd: Slapd, tmp_path: Path) -> None:
    """StartTLS and ldaps:// with the directory's CA work; an unknown CA is refused (503)."""
    template = f"uid={{username}},{PEOPLE}"
    common = {"bind_dn_template": template, "group_base": GROUPS, "group_roles": ROLES}
    starttls = start_api(
        ldap={"url": slapd.url, "start_tls": True, "tls_ca_file": str(slapd.ca_file), **common}
    )
    assert _me(starttls, _login(starttls, "alice", USERS["alice"]))["roles"] == ["network_manager"]
    ldaps = start_api(ldap={"url": slapd.ldaps_url, "tls_ca_file": str(slapd.ca_file), **common})
    assert _me(ldaps, _login(ldaps, "bob", USERS["bob"]))["roles"] == ["security_analyst"]
    self_signed(tmp_path / "other.pem", tmp_path / "other.key")
    stranger = start_api(
        ldap={
            "url": slapd.ldaps_url,
            "tls_ca_file": str(tmp_path / "other.pem"),
            "timeout_s": 3,
            **common,
        }
    )
    r = _login(stranger, "alice", USERS["alice"])
    assert r.status_code == 503, r.text
