"""The permissions cache (api/permcache.py) and the generation triggers of migration 0007.

Roles and device scopes are remembered per ``permission_state.generation``; these tests change
permissions the way the API does and behind its back (plain SQL, as the CLI, another API
process or a collector would) and check that the very next request sees the change, on SQLite
and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from conftest import ApiServer, SignedIn
from logmaster.api.permcache import PermissionCache


def generation(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT generation FROM permission_state")).scalar_one())


def searchable(user: SignedIn, device: str) -> bool:
    """Whether ``device`` is in the user's view scope: the search route 404s outside it."""
    r = user.get("/search/events", params={"q": "", "device": device})
    assert r.status_code in (200, 404), r.text
    return r.status_code == 200


def sql(engine: Engine, statement: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def _walk(
    srv: ApiServer,
    admin: SignedIn,
    viewer: SignedIn,
    add_device: Callable[..., int],
) -> None:
    engine = srv.engine
    cache: PermissionCache = srv.app.state.permissions
    add_device("c1", server=srv)
    add_device("c2", location="Izmir", server=srv)
    assert not searchable(viewer, "c1")
    r = admin.post("/grants", json={"user": viewer.username, "device": "c1", "actions": ["view"]})
    assert r.status_code == 201, r.text
    grant_id = r.json()["id"]
    assert searchable(viewer, "c1")
    hits = cache.hits
    assert searchable(viewer, "c1")
    assert cache.hits > hits  # the second request was answered from the cache

    # Behind the API's back: the grant goes, the next request knows.
    sql(engine, "DELETE FROM grants WHERE id = :id", id=grant_id)
    assert not searchable(viewer, "c1")

    # A role grant on a location; a device moved there by plain SQL is covered at once.
    assert admin.post("/locations", json={"name": "Ankara"}).status_code == 201
    r = admin.post("/grants", json={"role": "viewer", "location": "Ankara", "actions": ["view"]})
    assert r.status_code == 201, r.text
    assert not searchable(viewer, "c2")
    sql(engine, "UPDATE devices SET location = 'Ankara' WHERE slug = 'c2'")
    assert searchable(viewer, "c2")

    # The role loses its action: the cached role actions are dropped too.
    sql(
        engine,
        "DELETE FROM role_actions WHERE action = 'view' AND role_id = "
        "(SELECT id FROM roles WHERE name = 'viewer')",
    )
    r = viewer.get("/search/events", params={"q": ""})
    assert r.status_code == 403, r.text

    # What the collector writes all the time does not empty the cache.
    before = generation(engine)
    sql(engine, "UPDATE devices SET last_seen_at = CURRENT_TIMESTAMP")
    sql(engine, "UPDATE users SET last_login_at = CURRENT_TIMESTAMP")
    assert generation(engine) == before


def test_changes_anywhere_reach_the_next_request(
    api: ApiServer,
    admin: SignedIn,
    as_role: Callable[..., SignedIn],
    add_device: Callable[..., int],
) -> None:
    """SQLite: API changes and plain-SQL changes are both seen on the next request."""
    _walk(api, admin, as_role("viewer"), add_device)


@pytest.mark.postgres
def test_changes_anywhere_reach_the_next_request_postgres(
    pg_api: ApiServer,
    make_user: Callable[..., tuple[str, str]],
    signin: Callable[..., SignedIn],
    add_device: Callable[..., int],
) -> None:
    """The same on PostgreSQL (statement-level triggers)."""
    admin = signin("admin", pg_api.admin_password, server=pg_api)
    _walk(pg_api, admin, signin(*make_user("viewer", server=pg_api), server=pg_api), add_device)


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO locations (name, description, created_at) VALUES ('X', '', CURRENT_TIMESTAMP)",
        "UPDATE users SET active = active",
        "INSERT INTO device_groups (name, description, created_at) VALUES ('g', '', "
        "CURRENT_TIMESTAMP)",
        "DELETE FROM user_roles",
        "UPDATE roles SET description = 'x'",
        "UPDATE devices SET slug = slug",
    ],
)
def test_each_watched_table_moves_the_generation(
    api: ApiServer, add_device: Callable[..., int], statement: str
) -> None:
    """Inserts, deletes and the relevant updates of permission tables move the generation."""
    add_device("w1")  # SQLite's triggers are per row: the update needs a row
    before = generation(api.engine)
    sql(api.engine, statement)
    assert generation(api.engine) > before


def test_an_older_generation_is_not_stored() -> None:
    """A request that read an older generation than the cache holds computes, never stores."""
    cache = PermissionCache()
    assert cache.get(5, "k", lambda: "new") == "new"
    assert cache.get(4, "k", lambda: "old") == "old"
    assert cache.get(5, "k", lambda: "other") == "new"
    assert cache.get(6, "k", lambda: "newer") == "newer"
    assert cache.get(None, "k", lambda: "uncached") == "uncached"
