"""A generation number that moves whenever anything a permission depends on changes.

``permission_state`` holds one row, ``generation``. Triggers (SQLite and PostgreSQL alike) add
one to it in the same transaction as every insert, update or delete of users' roles, roles and
their actions, grants, device groups and their members, locations, location managers' locations,
users (their ``active`` flag), and devices (added, removed, or moved to another location). The
API keeps each user's roles and device scope in memory for one generation
(``api/permcache.py``): a change made by any process - another API process, the CLI, the
collector adding a device - is seen on the next request, as before, without reading every grant
on every request.

The triggers are in the database, not in the application, so no code path that changes a grant
can forget to move the generation.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# table -> the columns whose update matters (None: any update).
WATCHED: dict[str, tuple[str, ...] | None] = {
    "users": ("active",),
    "user_roles": None,
    "roles": None,
    "role_actions": None,
    "grants": None,
    "device_groups": None,
    "device_group_members": None,
    "locations": ("name",),
    "user_locations": None,
    # Not last_seen_at, which the collector writes all the time.
    "devices": ("slug", "location", "location_id"),
}
BUMP = "UPDATE permission_state SET generation = generation + 1 WHERE id = 1"
PG_FUNCTION = "logmaster_permission_bump"


def upgrade() -> None:
    op.create_table(
        "permission_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("generation", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO permission_state (id, generation) VALUES (1, 1)")
    sqlite = op.get_bind().dialect.name == "sqlite"
    if not sqlite:
        op.execute(
            f"CREATE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {BUMP}; RETURN NULL; END $$"
        )
    for table, columns in WATCHED.items():
        update = "UPDATE" + (f" OF {', '.join(columns)}" if columns else "")
        if sqlite:
            # SQLite triggers are per row and per event.
            for event in ("INSERT", "DELETE", update):
                name = f"permission_{table}_{event.split()[0].lower()}"
                op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN {BUMP}; END")
        else:
            op.execute(
                f"CREATE TRIGGER permission_{table} AFTER INSERT OR DELETE OR {update} "
                f"OR TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {PG_FUNCTION}()"
            )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in WATCHED:
        if sqlite:
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS permission_{table}_{event}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS permission_{table} ON {table}")
    if not sqlite:
        op.execute(f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()")
    op.drop_table("permission_state")
