"""Several nodes on one database: the node that holds each device's archive, and the nodes.

``devices.node``: the node whose collector archives the device (set when its collector creates
or first receives it; NULL for devices no collector has received yet). ``nodes``: each node's
name, the URL of its API (for forwarding requests that need its archive) and a fingerprint of
its API signing key (so that a node with a different key is named in the log).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("node", sa.String(64), nullable=True))
        batch.create_index("ix_devices_node", ["node"])
    op.create_table(
        "nodes",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("api_url", sa.String(500), nullable=True),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("nodes")
    with op.batch_alter_table("devices") as batch:
        batch.drop_index("ix_devices_node")
        batch.drop_column("node")
