"""The evaluator: one pass keeps the ``violations`` table in step with the conditions that hold.

:class:`Evaluator` makes one pass (``run_once``; ``run`` loops every ``interval_s``, for the
sealer or the supervisor): it computes the conditions that hold now
(:mod:`logmaster.compliance.checks`), opens a violation for each new one, resolves open ones
that no longer hold (:mod:`logmaster.compliance.violations`), queues an alert for each change
(:mod:`logmaster.compliance.alerts`; delivery happens in the dispatcher's own thread, so a dead
mail server never slows a pass) and verifies newly sealed days within ``verify_budget_s``.
Apart from the checks so that this module is only the loop, the storage transaction and the
verification budget.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from logmaster.compliance.checks import (
    Condition,
    day_condition,
    device_conditions,
    device_rows,
    disk_conditions,
    learned_threshold,
    retention_conditions,
    unsealed,
)
from logmaster.compliance.status import DayStatus, StatusCache
from logmaster.compliance.violations import KINDS, Violation

if TYPE_CHECKING:
    from logmaster.compliance.alerts import Dispatcher
    from logmaster.config import Settings

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    opened: list[dict[str, Any]] = field(default_factory=list)
    resolved: list[dict[str, Any]] = field(default_factory=list)
    open_now: int = 0
    verified: int = 0
    error: str | None = None


class Evaluator:
    """Computes the conditions that hold and keeps the violations table in step with them."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine | None = None,
        *,
        cache: StatusCache | None = None,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        from logmaster.db import make_engine

        self.settings = settings
        self._own_engine = engine is None
        self.engine = engine or make_engine(settings.db_url)
        self.cache = cache or StatusCache(settings)
        self.dispatcher = dispatcher
        self._learned: dict[tuple[str, dt.date], tuple[int, str]] = {}
        self.passes = 0
        self.failures = 0
        # Device-days due for sealing (local day over + seal.delay_s) without a manifest, as
        # of the last pass that computed the conditions; None before the first.
        self.overdue_days: int | None = None

    def close(self) -> None:
        self.cache.close()
        if self._own_engine:
            self.engine.dispose()

    # -- conditions ------------------------------------------------------------------------

    def conditions(self, now: dt.datetime) -> tuple[list[Condition], set[str]]:
        """(conditions holding at ``now``, kinds fully evaluated)."""
        from logmaster.archive.seal import archive_devices, day_end

        c = self.settings.compliance
        devices = device_rows(self.engine, self.settings.devices.default_timezone)
        default_zone = ZoneInfo(self.settings.devices.default_timezone)
        slugs = sorted(
            {d for d in archive_devices(self.settings.archive_dir)}
            | {s for s, r in devices.items() if r.status == "approved"}
        )
        slugs = [s for s in slugs if devices.get(s) is None or devices[s].status != "rejected"]
        today = now.astimezone(default_zone).date()
        first = today - dt.timedelta(days=c.window_days)
        out: list[Condition] = []
        by_device: dict[str, list[DayStatus]] = {}
        for st in self.cache.statuses(first, today, slugs, fill=True):
            by_device.setdefault(st.device, []).append(st)
        deadline = dt.timedelta(hours=c.seal_deadline_h)
        due = dt.timedelta(seconds=self.settings.seal.delay_s)
        overdue = 0
        for slug, statuses in by_device.items():
            row = devices.get(slug)
            zone = row.zone if row else default_zone
            for st in statuses:
                cond = day_condition(self.settings, st, row, zone, now, deadline, day_end)
                if cond is not None:
                    out.append(cond)
                end = day_end(st.day, zone)
                overdue += now >= end + due and unsealed(st, row, end)
            out.extend(device_conditions(self.settings, slug, row, statuses, now, self.threshold))
        self.overdue_days = overdue
        out.extend(disk_conditions(self.settings))
        out.extend(
            retention_conditions(self.settings, self.engine, devices, slugs, today, first, now)
        )
        return out, set(KINDS)

    def threshold(self, slug: str, statuses: list[DayStatus], today: dt.date) -> tuple[int, str]:
        configured = self.settings.compliance.silence_thresholds.get(slug)
        if configured is not None:
            return configured, "configured"
        key = (slug, today)
        if key not in self._learned:
            self._learned = {k: v for k, v in self._learned.items() if k[1] == today}
            self._learned[key] = learned_threshold(
                self.settings, [s for s in statuses if s.day < today]
            )
        return self._learned[key]

    # -- keeping the table in step -------------------------------------------------------------

    def run_once(self, now: dt.datetime | None = None) -> Outcome:
        """One pass: open, update and resolve violations; queue alerts; verify a little."""
        now = now or dt.datetime.now(dt.UTC)
        outcome = Outcome()
        self.passes += 1
        try:
            holding, kinds = self.conditions(now)
            holding.extend(self._rechecks(now, holding))
            outcome = self.apply(holding, kinds, now)
        except (OSError, SQLAlchemyError, ValueError) as exc:
            self.failures += 1
            log.error("Compliance evaluation failed; next pass.", extra={"error": str(exc)})
            return Outcome(error=str(exc))
        if self.settings.compliance.verify_budget_s > 0:
            outcome.verified = self.verify_some(now)
        if self.dispatcher is not None:
            self.dispatcher.wake()
        return outcome

    def _rechecks(self, now: dt.datetime, holding: list[Condition]) -> list[Condition]:
        """Open day violations older than the window: still true?"""
        from logmaster.archive.seal import day_end

        c = self.settings.compliance
        default_zone = ZoneInfo(self.settings.devices.default_timezone)
        first = now.astimezone(default_zone).date() - dt.timedelta(days=c.window_days)
        seen = {(h.kind, h.subject) for h in holding}
        with Session(self.engine) as s:
            old = s.execute(
                sa.select(Violation.kind, Violation.device, Violation.day).where(
                    Violation.resolved_at.is_(None),
                    Violation.kind.in_(("seal_overdue", "stamp_pending")),
                    Violation.day < first,
                )
            ).all()
        if not old:
            return []
        devices = device_rows(self.engine, self.settings.devices.default_timezone)
        out = []
        for _kind, slug, day in old:
            if slug is None or day is None:
                continue
            st = self.cache.day(slug, day)
            row = devices.get(slug)
            zone = row.zone if row else default_zone
            cond = day_condition(
                self.settings, st, row, zone, now, dt.timedelta(hours=c.seal_deadline_h), day_end
            )
            if cond is not None and (cond.kind, cond.subject) not in seen:
                out.append(cond)
        return out

    def apply(self, holding: list[Condition], kinds: set[str], now: dt.datetime) -> Outcome:
        outcome = Outcome()
        wanted = {(c.kind, c.subject): c for c in holding}
        with Session(self.engine) as s:
            open_rows = {
                (v.kind, v.subject): v
                for v in s.scalars(sa.select(Violation).where(Violation.resolved_at.is_(None)))
            }
            changed: list[tuple[Violation, str]] = []
            for key, cond in wanted.items():
                row = open_rows.get(key)
                if row is None:
                    row = Violation(
                        kind=cond.kind,
                        subject=cond.subject,
                        device=cond.device,
                        day=cond.day,
                        severity=cond.severity,
                        message=cond.message,
                        message_tr=cond.message_tr,
                        details=cond.details,
                        opened_at=now,
                        checked_at=now,
                    )
                    s.add(row)
                    changed.append((row, "opened"))
                else:
                    row.severity, row.message, row.message_tr = (
                        cond.severity,
                        cond.message,
                        cond.message_tr,
                    )
                    row.details, row.checked_at = cond.details, now
            for key, row in open_rows.items():
                if key not in wanted and row.kind in kinds:
                    row.resolved_at = now
                    row.checked_at = now
                    changed.append((row, "resolved"))
            try:
                s.flush()
                if self.dispatcher is not None:
                    for row, event in changed:
                        self.dispatcher.enqueue(s, row, event, now)
                s.commit()
            except IntegrityError as exc:
                # Another evaluator (a second node) opened the same violation first.
                s.rollback()
                raise ValueError(f"concurrent evaluation: {exc.orig}") from exc
            for row, event in changed:
                (outcome.opened if event == "opened" else outcome.resolved).append(row.to_json())
                log.log(
                    logging.WARNING if event == "opened" else logging.INFO,
                    f"Violation {event}.",
                    extra={"kind": row.kind, "subject": row.subject, "severity": row.severity},
                )
            outcome.open_now = (
                s.scalar(
                    sa.select(sa.func.count(Violation.id)).where(Violation.resolved_at.is_(None))
                )
                or 0
            )
        return outcome

    # -- verification within a budget ---------------------------------------------------------

    def verify_some(self, now: dt.datetime) -> int:
        """Verify sealed days that have no verdict yet, newest first, for at most the budget."""
        from logmaster.archive.verdict import trust_from, verify_device

        budget = self.settings.compliance.verify_budget_s
        today = now.date()
        todo = self.cache.unverified(today - dt.timedelta(days=7), today)
        if not todo:
            return 0
        trust = trust_from(self.settings)
        start = time.monotonic()
        done = 0
        for device, day in sorted(todo, key=lambda t: t[1], reverse=True):
            if time.monotonic() - start > budget:
                break
            verdicts = verify_device(self.settings.archive_dir, device, day, day, trust)
            done += self.cache.record_verdicts(verdicts)
        return done

    def run(self, stop: threading.Event) -> None:
        """Pass every ``interval_s`` until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # the loop must survive anything one pass meets
                self.failures += 1
                log.exception("Compliance pass failed; next pass.", extra={"error": str(exc)})
            stop.wait(self.settings.compliance.interval_s)
