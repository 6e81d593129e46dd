"""The API's route modules, one per resource; each is registered here with one line."""

from fastapi import APIRouter

from logmaster.api.routes import (
    archive_days,
    attribution,
    audit,
    auth,
    compliance,
    device_groups,
    devices,
    events,
    exports,
    health,
    locations,
    permissions,
    retention,
    roles,
    seals,
    search,
    settings,
    tail,
    users,
)

ROUTERS: list[APIRouter] = [
    auth.router,
    users.router,
    roles.router,
    permissions.router,
    locations.router,
    device_groups.router,
    audit.router,
    devices.router,
    search.router,
    events.router,
    attribution.router,
    archive_days.router,
    health.router,
    tail.router,
    exports.router,
    retention.router,
    compliance.router,
    seals.router,
    settings.router,
]
