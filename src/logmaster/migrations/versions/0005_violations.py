"""Compliance violations and the alerts sent for them.

``violations``: one row per condition (kind + subject) from the time it was first seen to the
time it stopped holding; at most one open row per kind and subject (a partial unique index, on
SQLite and PostgreSQL alike). ``alert_deliveries``: one row per alert and channel, retried until
sent or given up.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "violations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("device", sa.String(64), nullable=True),
        sa.Column("day", sa.Date, nullable=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("message_tr", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        _ts("opened_at"),
        _ts("resolved_at", True),
        _ts("checked_at"),
        sa.CheckConstraint("severity IN ('warning', 'critical')", name="ck_violations_severity"),
    )
    op.create_index(
        "ux_violations_open",
        "violations",
        ["kind", "subject"],
        unique=True,
        sqlite_where=sa.text("resolved_at IS NULL"),
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    op.create_index("ix_violations_device", "violations", ["device"])
    op.create_index("ix_violations_opened_at", "violations", ["opened_at"])
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "violation_id",
            sa.Integer,
            sa.ForeignKey("violations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event", sa.String(8), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("state", sa.String(8), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        _ts("next_attempt_at"),
        _ts("sent_at", True),
        _ts("created_at"),
    )
    op.create_index("ix_alert_deliveries_due", "alert_deliveries", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("alert_deliveries")
    op.drop_table("violations")
