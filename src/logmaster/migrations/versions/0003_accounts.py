"""Accounts, roles, grants, locations, device groups, sessions, MFA, throttling, audit trail.

The free-text ``devices.location`` stays (the collector CLI still writes it); every distinct
non-empty value becomes a row of ``locations`` and the device points at it with ``location_id``.
Permissions read ``location_id`` first and fall back to the location of the same name, so a
device added later with ``logmaster device add --location X`` belongs to location X.

The audit table refuses UPDATE and DELETE with triggers (SQLite and PostgreSQL alike), and
TRUNCATE on PostgreSQL: no code path, admin included, can remove an entry.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BUILTIN_ROLES = {
    "admin": (
        "Everything, on every device.",
        (
            "manage_users",
            "manage_devices",
            "view",
            "tail",
            "export",
            "attribute",
            "view_compliance",
            "view_audit",
        ),
    ),
    "network_manager": (
        "Manages, views, tails and attributes on granted devices.",
        ("manage_devices", "view", "tail", "attribute"),
    ),
    "security_analyst": (
        "Views, tails, exports and attributes on granted devices; sees compliance.",
        ("view", "tail", "export", "attribute", "view_compliance"),
    ),
    "location_manager": (
        "Views, tails, attributes and manages the devices of their locations.",
        ("manage_devices", "view", "tail", "attribute", "view_compliance"),
    ),
    "viewer": ("Views the logs of granted devices.", ("view",)),
}


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    import hashlib

    op.create_table(
        "roles",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("description", sa.String(500), nullable=False, server_default=""),
        sa.Column("builtin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("mfa_required", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "role_actions",
        sa.Column(
            "role_id", sa.Integer, sa.ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("action", sa.String(32), primary_key=True),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("email", sa.String(200), nullable=False, server_default=""),
        sa.Column("source", sa.String(8), nullable=False, server_default="local"),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="Europe/Istanbul"),
        sa.Column("allowed_networks", sa.JSON, nullable=False),
        sa.Column("allowed_windows", sa.JSON, nullable=False),
        sa.Column("must_change_password", sa.Boolean, nullable=False, server_default=sa.false()),
        _ts("password_changed_at", True),
        _ts("last_login_at", True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint("source IN ('local', 'ldap')", name="ck_users_source"),
    )
    op.create_table(
        "user_roles",
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "role_id", sa.Integer, sa.ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
        ),
    )
    op.create_index("ix_user_roles_role_id", "user_roles", ["role_id"])
    op.create_table(
        "locations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("description", sa.String(500), nullable=False, server_default=""),
        _ts("created_at"),
    )
    op.create_table(
        "user_locations",
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "location_id",
            sa.Integer,
            sa.ForeignKey("locations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_index("ix_user_locations_location_id", "user_locations", ["location_id"])
    op.create_table(
        "device_groups",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("description", sa.String(500), nullable=False, server_default=""),
        _ts("created_at"),
    )
    op.create_table(
        "device_group_members",
        sa.Column(
            "group_id",
            sa.Integer,
            sa.ForeignKey("device_groups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "device_id",
            sa.Integer,
            sa.ForeignKey("devices.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_index("ix_device_group_members_device_id", "device_group_members", ["device_id"])
    # A plain ADD COLUMN (SQLite keeps the inline REFERENCES): no table rebuild of devices.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE devices ADD COLUMN location_id INTEGER "
            "REFERENCES locations (id) ON DELETE SET NULL"
        )
    else:
        op.add_column("devices", sa.Column("location_id", sa.Integer, nullable=True))
        op.create_foreign_key(
            "fk_devices_location_id",
            "devices",
            "locations",
            ["location_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_index("ix_devices_location_id", "devices", ["location_id"])
    op.create_table(
        "grants",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE")),
        sa.Column("role_id", sa.Integer, sa.ForeignKey("roles.id", ondelete="CASCADE")),
        sa.Column("device_id", sa.Integer, sa.ForeignKey("devices.id", ondelete="CASCADE")),
        sa.Column(
            "device_group_id", sa.Integer, sa.ForeignKey("device_groups.id", ondelete="CASCADE")
        ),
        sa.Column("location_id", sa.Integer, sa.ForeignKey("locations.id", ondelete="CASCADE")),
        sa.Column("actions", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False, server_default=""),
        _ts("created_at"),
        sa.CheckConstraint("(user_id IS NULL) <> (role_id IS NULL)", name="ck_grants_one_subject"),
        sa.CheckConstraint(
            "(CASE WHEN device_id IS NULL THEN 0 ELSE 1 END"
            " + CASE WHEN device_group_id IS NULL THEN 0 ELSE 1 END"
            " + CASE WHEN location_id IS NULL THEN 0 ELSE 1 END) = 1",
            name="ck_grants_one_target",
        ),
    )
    op.create_index("ix_grants_user_id", "grants", ["user_id"])
    op.create_index("ix_grants_role_id", "grants", ["role_id"])
    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.String(43), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _ts("created_at"),
        _ts("last_seen_at"),
        _ts("expires_at"),
        _ts("revoked_at", True),
        sa.Column("revoked_reason", sa.String(64), nullable=True),
        sa.Column("source_ip", sa.String(64), nullable=False, server_default=""),
        sa.Column("user_agent", sa.String(300), nullable=False, server_default=""),
        sa.Column("method", sa.String(16), nullable=False, server_default="password"),
    )
    op.create_index("ix_auth_sessions_user_id", "auth_sessions", ["user_id"])
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "session_id",
            sa.String(43),
            sa.ForeignKey("auth_sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        _ts("created_at"),
        _ts("used_at", True),
    )
    op.create_index("ix_refresh_tokens_session_id", "refresh_tokens", ["session_id"])
    op.create_table(
        "mfa_secrets",
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("secret_encrypted", sa.Text, nullable=False),
        _ts("confirmed_at", True),
        sa.Column("last_step", sa.Integer, nullable=False, server_default="0"),
        _ts("created_at"),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("code_hash", sa.String(255), nullable=False),
        _ts("used_at", True),
    )
    op.create_index("ix_recovery_codes_user_id", "recovery_codes", ["user_id"])
    op.create_table(
        "throttle",
        sa.Column("key", sa.String(160), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        _ts("window_start"),
        _ts("locked_until", True),
    )
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        _ts("at"),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.Column("source_ip", sa.String(64), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("result", sa.String(32), nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_entries_at", "audit_entries", ["at"])
    op.create_index("ix_audit_entries_actor", "audit_entries", ["actor"])
    op.create_index("ix_audit_entries_action", "audit_entries", ["action"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    genesis = hashlib.sha256(b"logmaster-audit-v1\n").hexdigest()
    op.execute(
        sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :h)").bindparams(h=genesis)
    )
    _append_only_triggers()
    _seed_roles()
    _migrate_locations()


def _append_only_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_entries_no_{verb.lower()} BEFORE {verb} ON audit_entries "
                "BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END"
            )
        op.execute(
            "CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head "
            "BEGIN SELECT RAISE(ABORT, 'the audit head cannot be deleted'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head "
            "WHEN NEW.seq < OLD.seq "
            "BEGIN SELECT RAISE(ABORT, 'the audit head only moves forward'); END"
        )
        return
    op.execute(
        "CREATE FUNCTION logmaster_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'audit entries are append-only'; END $$"
    )
    op.execute(
        "CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries "
        "FOR EACH ROW EXECUTE FUNCTION logmaster_audit_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries "
        "FOR EACH STATEMENT EXECUTE FUNCTION logmaster_audit_append_only()"
    )
    op.execute(
        "CREATE FUNCTION logmaster_audit_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF TG_OP = 'DELETE' OR NEW.seq < OLD.seq THEN "
        "RAISE EXCEPTION 'the audit head only moves forward'; END IF; RETURN NEW; END $$"
    )
    op.execute(
        "CREATE TRIGGER audit_head_forward BEFORE UPDATE OR DELETE ON audit_head "
        "FOR EACH ROW EXECUTE FUNCTION logmaster_audit_head_forward()"
    )


def _seed_roles() -> None:
    bind = op.get_bind()
    for name, (description, actions) in BUILTIN_ROLES.items():
        bind.execute(
            sa.text(
                "INSERT INTO roles (name, description, builtin, mfa_required) "
                "VALUES (:n, :d, :b, :m)"
            ),
            {"n": name, "d": description, "b": True, "m": False},
        )
        role_id = bind.execute(
            sa.text("SELECT id FROM roles WHERE name = :n"), {"n": name}
        ).scalar()
        for action in actions:
            bind.execute(
                sa.text("INSERT INTO role_actions (role_id, action) VALUES (:r, :a)"),
                {"r": role_id, "a": action},
            )


def _migrate_locations() -> None:
    import datetime as dt

    bind = op.get_bind()
    now = dt.datetime.now(dt.UTC)
    names = bind.execute(
        sa.text("SELECT DISTINCT location FROM devices WHERE location <> '' ORDER BY location")
    ).scalars()
    for name in list(names):
        bind.execute(
            sa.text("INSERT INTO locations (name, description, created_at) VALUES (:n, '', :t)"),
            {"n": name, "t": now},
        )
    bind.execute(
        sa.text(
            "UPDATE devices SET location_id = "
            "(SELECT id FROM locations WHERE locations.name = devices.location) "
            "WHERE location <> ''"
        )
    )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries")
        op.execute("DROP TRIGGER IF EXISTS audit_entries_no_truncate ON audit_entries")
        op.execute("DROP TRIGGER IF EXISTS audit_head_forward ON audit_head")
        op.execute("DROP FUNCTION IF EXISTS logmaster_audit_append_only()")
        op.execute("DROP FUNCTION IF EXISTS logmaster_audit_head_forward()")
    op.drop_index("ix_devices_location_id", "devices")
    if bind.dialect.name != "sqlite":
        op.drop_constraint("fk_devices_location_id", "devices", type_="foreignkey")
    op.drop_column("devices", "location_id")
    for table in (
        "audit_head",
        "audit_entries",
        "throttle",
        "recovery_codes",
        "mfa_secrets",
        "refresh_tokens",
        "auth_sessions",
        "grants",
        "device_group_members",
        "device_groups",
        "user_locations",
        "locations",
        "user_roles",
        "users",
        "role_actions",
        "roles",
    ):
        op.drop_table(table)
