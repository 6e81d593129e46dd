"""Settings API: the effective settings without secrets, the LDAP test against a real slapd
(slapd_support.py), the TSA test against the built-in TSA (in process and over HTTP); admin only,
audited."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography import x509
from sqlalchemy.orm import Session

from conftest import ApiServer, SignedIn
from logmaster.api.models import AuditEntry
from logmaster.archive.tsa_server import BUILTIN_POLICY, BuiltinTsa, make_server
from slapd_support import GROUPS, PEOPLE, ROOT_DN, ROOT_PW, Slapd, running_slapd
from support import free_port

ROLES = {f"cn=netops,{GROUPS}": "network_manager", "analysts": "security_analyst"}


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with running_slapd(tmp_path_factory.mktemp("slapd")) as directory:
        yield directory


def _audit(api: ApiServer, action: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    with Session(api.engine) as s:
        rows = s.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)).all()
        return [(r.actor or "", r.target, r.result, json.loads(r.details)) for r in rows]


@pytest.fixture
def search_api(start_api: Callable[..., ApiServer], slapd: Slapd, tmp_path: Path) -> ApiServer:
    """LDAP in search mode (service account = the directory's root DN, password in a file)."""
    secret = tmp_path / "ldap.pw"
    secret.write_text(ROOT_PW + "\n")
    secret.chmod(0o600)
    return start_api(
        ldap={
            "url": slapd.url,
            "search_bind_dn": ROOT_DN,
            "search_bind_password_file": str(secret),
            "user_base": PEOPLE,
            "group_base": GROUPS,
            "group_roles": ROLES,
        }
    )


def _admin(api: ApiServer, signin: Callable[..., SignedIn]) -> SignedIn:
    return signin("admin", api.admin_password, server=api)


def test_settings_show_the_effective_values_without_secrets(
    start_api: Callable[..., ApiServer], signin: Callable[..., SignedIn], tmp_path: Path
) -> None:
    """Every shown field is the loaded one; passwords and secret file names never appear."""
    ldap_secret = tmp_path / "very-secret-ldap.pw"
    ldap_secret.write_text("S3rvice-Passw0rd\n")
    kamu_secret = tmp_path / "very-secret-kamusm"
    kamu_secret.write_text("123456:Kamu-Parola\n")
    kamu_secret.chmod(0o600)
    srv = start_api(
        ldap={
            "url": "ldap://127.0.0.1:9",
            "search_bind_dn": ROOT_DN,
            "search_bind_password_file": str(ldap_secret),
            "group_roles": {"netops": "network_manager"},
        },
        tsa={
            "servers": [
                {"name": "kamu", "kind": "kamusm", "url": "http://127.0.0.1:9/",
                 "credentials_file": str(kamu_secret)},
                {"name": "other", "url": "https://tsa.example/", "accredited": False},
            ]
        },
        retention={"default_days": 800, "auto_purge": False},
    )  # fmt: skip
    admin = _admin(srv, signin)
    r = admin.get("/settings")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ldap"]["enabled"] and body["ldap"]["mode"] == "search"
    assert body["ldap"]["search_bind_dn"] == ROOT_DN
    assert body["ldap"]["search_bind_password_set"] is True
    assert body["ldap"]["group_roles"] == {"netops": "network_manager"}
    servers = {s["name"]: s for s in body["tsa"]["servers"]}
    assert servers["kamu"]["credentials"] == "file" and servers["other"]["credentials"] is None
    assert servers["other"]["accredited"] is False and not body["tsa"]["builtin_in_use"]
    assert body["retention"] == {
        "default_days": 800, "auto_purge": False, "seal_delay_s": 900, "compression": "zstd",
    }  # fmt: skip
    for secret in ("S3rvice-Passw0rd", "Kamu-Parola", "123456", "very-secret"):
        assert secret not in r.text, secret
    assert [(a, t, res) for a, t, res, _ in _audit(srv, "settings.view")] == [("admin", "*", "ok")]


def test_settings_are_for_admins_only(
    api: ApiServer, admin: SignedIn, as_role: Callable[..., SignedIn]
) -> None:
    """Every other role gets a 403 problem on every settings route, and nothing is tested."""
    for role in ("viewer", "network_manager", "security_analyst", "location_manager"):
        client = as_role(role)
        for method, path in (("GET", "/settings"), ("POST", "/settings/ldap/test"),
                             ("POST", "/settings/tsa/test")):  # fmt: skip
            r = client.request(method, path, json={} if method == "POST" else None)
            assert r.status_code == 403, (role, path, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["detail_tr"]
    assert _audit(api, "settings.tsa_test") == []
    # Without LDAP configured the test cannot run: a 409 saying where to configure it.
    r = admin.post("/settings/ldap/test", json={})
    assert r.status_code == 409 and "[ldap] url" in r.json()["detail"]


def test_ldap_test_binds_and_maps_groups(
    search_api: ApiServer, signin: Callable[..., SignedIn]
) -> None:
    """The service account binds; alice is found with her groups, mapped to network_manager;
    carol maps to no role (refused at sign-in); an unknown user is named."""
    admin = _admin(search_api, signin)
    r = admin.post("/settings/ldap/test", json={})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] and body["mode"] == "search"
    assert [s["name"] for s in body["steps"]] == ["connect", "bind"]
    alice = admin.post("/settings/ldap/test", json={"username": "alice"}).json()
    assert alice["ok"], alice
    assert alice["user"]["dn"] == f"uid=alice,{PEOPLE}"
    assert alice["user"]["display_name"] == "Alice Test"
    assert f"cn=netops,{GROUPS}" in alice["user"]["groups"]
    assert alice["user"]["roles"] == ["network_manager"]
    carol = admin.post("/settings/ldap/test", json={"username": "carol"}).json()
    assert not carol["ok"] and carol["user"]["roles"] == []
    assert "refused at sign-in" in carol["steps"][-1]["message"]
    nobody = admin.post("/settings/ldap/test", json={"username": "nobody*)("}).json()
    assert not nobody["ok"] and nobody["user"] is None
    assert nobody["steps"][-1]["name"] == "user" and "no entry" in nobody["steps"][-1]["message"]
    audited = _audit(search_api, "settings.ldap_test")
    assert [(t, res) for _a, t, res, _d in audited] == [
        ("*", "ok"), ("alice", "ok"), ("carol", "failed"), ("nobody*)(", "failed"),
    ]  # fmt: skip
    assert audited[1][3]["roles"] == ["network_manager"]


def test_ldap_test_names_the_failing_step(
    start_api: Callable[..., ApiServer],
    signin: Callable[..., SignedIn],
    slapd: Slapd,
    tmp_path: Path,
) -> None:
    """A wrong service password fails at bind; a directory that is down fails at connect;
    template mode checks the connection only and says why."""
    wrong = tmp_path / "wrong.pw"
    wrong.write_text("not-the-password")
    bad_bind = start_api(
        ldap={"url": slapd.url, "search_bind_dn": ROOT_DN, "search_bind_password_file": str(wrong)}
    )
    body = _admin(bad_bind, signin).post("/settings/ldap/test", json={"username": "x"}).json()
    assert not body["ok"] and body["steps"][-1]["name"] == "bind", body
    down = start_api(ldap={"url": f"ldap://127.0.0.1:{free_port()}", "timeout_s": 2})
    body = _admin(down, signin).post("/settings/ldap/test", json={}).json()
    assert not body["ok"] and [s["name"] for s in body["steps"]] == ["connect"], body
    template = start_api(
        ldap={"url": slapd.url, "start_tls": True, "tls_ca_file": str(slapd.ca_file),
              "bind_dn_template": f"uid={{username}},{PEOPLE}"}
    )  # fmt: skip
    body = _admin(template, signin).post("/settings/ldap/test", json={"username": "bob"}).json()
    assert body["ok"] and body["mode"] == "template", body
    assert "StartTLS" in body["steps"][0]["message"]
    assert f"uid=bob,{PEOPLE}" in body["steps"][1]["message"] and body["user"] is None


def test_tsa_test_with_the_builtin_tsa(api: ApiServer, admin: SignedIn) -> None:
    """No TSA configured: the built-in TSA stamps in process; its certificate says it is not
    accredited, and the chain is the one in the data directory."""
    r = admin.post("/settings/tsa/test", json={})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] and len(body["results"]) == 1
    res = body["results"][0]
    assert (res["name"], res["kind"], res["accredited"], res["ok"]) == (
        "builtin", "builtin", False, True,
    )  # fmt: skip
    assert "not accredited" in res["subject"] and res["policy"] == BUILTIN_POLICY
    ca = x509.load_pem_x509_certificate(
        (api.settings.data_dir / "tsa" / "ca-cert.pem").read_bytes()
    )
    assert res["issuer"] == ca.subject.rfc4514_string()
    assert res["latency_ms"] >= 0 and res["gen_time"] and int(res["serial"]) > 0
    assert _audit(api, "settings.tsa_test") == [("admin", "*", "ok", {"builtin": "ok"})]
    other = admin.post("/settings/tsa/test", json={"name": "kamu"})
    assert other.status_code == 409 and "configured: builtin" in other.json()["detail"]


def test_tsa_test_without_any_tsa_is_a_conflict(
    start_api: Callable[..., ApiServer], signin: Callable[..., SignedIn]
) -> None:
    """No server and the built-in TSA off: nothing to test, and the problem says what to set."""
    srv = start_api(tsa={"builtin": False})
    r = _admin(srv, signin).post("/settings/tsa/test", json={})
    assert r.status_code == 409 and "tsa.builtin" in r.json()["detail"], r.text
    assert r.json()["detail_tr"]


@pytest.fixture
def tsa_http(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The built-in TSA behind real HTTP (as ``logmaster tsa serve``): its URL and CA file."""
    builtin = BuiltinTsa(tmp_path / "remote-tsa")
    server = make_server(builtin, "127.0.0.1", free_port())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ca = tmp_path / "remote-ca.pem"
    ca.write_bytes(builtin.chain_pem)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", ca
    finally:
        server.shutdown()
        server.server_close()


def test_tsa_test_of_configured_servers(
    start_api: Callable[..., ApiServer],
    signin: Callable[..., SignedIn],
    tsa_http: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each configured TSA is asked over HTTP: a working one, one that is down, a Kamu SM one
    without credentials (no stamp, no balance, both explained); one TSA can be tested alone."""
    url, ca = tsa_http
    monkeypatch.delenv("LOGMASTER_KAMUSM_CUSTOMER_ID", raising=False)
    monkeypatch.delenv("LOGMASTER_KAMUSM_PASSWORD", raising=False)
    dead = f"http://127.0.0.1:{free_port()}/"
    srv = start_api(
        tsa={
            "servers": [
                {"name": "local", "url": url, "ca_file": str(ca), "accredited": False},
                {"name": "down", "url": dead, "timeout_s": 2},
                {"name": "kamu", "kind": "kamusm", "url": dead, "timeout_s": 2},
            ]
        }
    )
    admin = _admin(srv, signin)
    body = admin.post("/settings/tsa/test", json={}).json()
    assert not body["ok"]
    results = {r["name"]: r for r in body["results"]}
    assert list(results) == ["local", "down", "kamu"]
    local = results["local"]
    assert local["ok"] and local["url"] == url and "not accredited" in local["subject"], local
    assert results["down"]["reason"] == "connection" and not results["down"]["ok"]
    kamu = results["kamu"]
    assert kamu["reason"] == "credentials" and "LOGMASTER_KAMUSM_PASSWORD" in kamu["message"]
    assert kamu["balance"] is None and "LOGMASTER_KAMUSM_PASSWORD" in kamu["balance_error"]
    shown = admin.get("/settings").json()["tsa"]
    assert [s["credentials"] for s in shown["servers"]] == [None, None, "missing"]
    one = admin.post("/settings/tsa/test", json={"name": "local"}).json()
    assert one["ok"] and [r["name"] for r in one["results"]] == ["local"]
    assert admin.post("/settings/tsa/test", json={"name": "nope"}).status_code == 409
    audited = _audit(srv, "settings.tsa_test")
    assert [(t, res, d) for _a, t, res, d in audited] == [
        ("*", "failed", {"local": "ok", "down": "connection", "kamu": "credentials"}),
        ("local", "ok", {"local": "ok"}),
    ]
