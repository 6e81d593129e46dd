"""Retention per device and legal holds.

``retention_policies``: one row per device whose retention differs from
``retention.default_days``; ``allow_short_retention`` must be true for fewer than 730 days (set
explicitly, audited, shown in reports). ``legal_holds``: a device (or every device, ``device``
NULL) and a day range that no purge may touch until the hold is released; rows are never
deleted (a release sets ``released_at``), so the history of holds stays.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retention_policies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("device", sa.String(64), nullable=False, unique=True),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("allow_short_retention", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("set_by", sa.String(64), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("days >= 1", name="ck_retention_days_positive"),
        sa.CheckConstraint(
            "days >= 730 OR allow_short_retention", name="ck_retention_short_explicit"
        ),
    )
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("device", sa.String(64), nullable=True, index=True),
        sa.Column("first_day", sa.Date, nullable=False),
        sa.Column("last_day", sa.Date, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("case_ref", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_by", sa.String(64), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("release_reason", sa.Text, nullable=True),
        sa.CheckConstraint("first_day <= last_day", name="ck_legal_hold_range"),
    )


def downgrade() -> None:
    op.drop_table("legal_holds")
    op.drop_table("retention_policies")
