// Overview: messages/s now and over 24 h, devices by status, server health, and (when the
// compliance API lands) seals, timestamps and open violations of the last days.
import { Badge, Group, Paper, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { useMemo } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router-dom";

import { useAuth } from "../api/auth";
import { api, call } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { Histogram } from "../components/Histogram";
import { formatCount, formatRate, localZone } from "../lib/time";
import { deviceState, useDevices } from "./Devices";

export default function Overview() {
  const { t, i18n } = useTranslation();
  const { can, me } = useAuth();
  const devices = useDevices();
  const health = useQuery({ queryKey: ["health"], queryFn: () => call(api.GET("/api/v1/health")), refetchInterval: 15_000 });
  const day = useQuery({
    queryKey: ["overview-24h"],
    enabled: can("view"),
    refetchInterval: 60_000,
    queryFn: () => call(api.GET("/api/v1/search/histogram", { params: { query: { from: "-24h", buckets: 96, tz: localZone() } } })),
  });
  const list = devices.data?.devices ?? [];
  const rate = list.reduce((n, d) => n + d.messages_per_s, 0);
  const byState = useMemo(() => {
    const out: Record<string, number> = { receiving: 0, silent: 0, pending: 0 };
    for (const d of list) {
      const s = deviceState(d);
      out[s] = (out[s] ?? 0) + 1;
    }
    return out;
  }, [list]);
  const times = useMemo(() => day.data?.buckets.map((b) => Date.parse(b.start)) ?? [], [day.data]);
  const counts = useMemo(() => day.data?.buckets.map((b) => b.count) ?? [], [day.data]);
  const h = health.data;

  return (
    <Stack gap="xs">
      <Title order={4}>
        {t("overview.welcome", { name: me?.display_name || me?.username })}
      </Title>
      <SimpleGrid cols={{ base: 2, md: 4 }} spacing="xs">
        <Stat label={t("overview.rateNow")} value={formatRate(rate, i18n.language)} testid="stat-rate" />
        <Stat label={t("device.state.receiving")} value={String(byState.receiving)} color="green" to="/devices" />
        <Stat label={t("device.state.silent")} value={String(byState.silent)} color={byState.silent ? "orange" : undefined} to="/devices" />
        <Stat label={t("device.state.pending")} value={String(byState.pending)} color={byState.pending ? "blue" : undefined} to="/devices" />
      </SimpleGrid>
      {devices.error && <ErrorNote error={devices.error} />}
      {can("view") && (
        <Paper withBorder p="xs">
          <Group justify="space-between">
            <Text size="sm" fw={600}>
              {t("overview.last24h")}
            </Text>
            <Text size="xs" c="dimmed">
              {day.data ? t("logs.total", { count: day.data.total, formatted: formatCount(day.data.total, i18n.language) }) : ""}
            </Text>
          </Group>
          <Histogram times={times} counts={counts} bucketMs={(day.data?.bucket_seconds ?? 900) * 1000} height={140} />
        </Paper>
      )}
      <SimpleGrid cols={{ base: 1, md: 2 }} spacing="xs">
        <Paper withBorder p="xs">
          <Text size="sm" fw={600} mb={4}>
            {t("overview.health")}
          </Text>
          {h ? (
            <Stack gap={2} data-testid="health">
              <Group gap="xs">
                <Badge color={h.status === "ok" ? "green" : h.status === "degraded" ? "orange" : "red"}>{t(`overview.status.${h.status}`)}</Badge>
              </Group>
              <Text size="xs">
                {t("overview.archive")}: {h.archive.writable ? t("overview.writable") : t("overview.notWritable")} · {t("overview.free", { gb: (h.archive.free_bytes / 1e9).toFixed(1) })}
              </Text>
              <Text size="xs">
                {t("overview.index")}: {t("overview.lag", { s: h.index.lag_seconds.toFixed(1) })}
              </Text>
              <Text size="xs">
                {t("overview.database")}: {h.database.ok ? "✓" : "✗"}
              </Text>
            </Stack>
          ) : health.error ? (
            <ErrorNote error={health.error} />
          ) : null}
        </Paper>
        {can("view_compliance") && <ComplianceSummary />}
      </SimpleGrid>
    </Stack>
  );
}

function Stat({ label, value, color, to, testid }: { label: string; value: string; color?: string; to?: string; testid?: string }) {
  const body = (
    <Paper withBorder p="xs" data-testid={testid}>
      <Text size="xs" c="dimmed">
        {label}
      </Text>
      <Text size="xl" fw={700} c={color}>
        {value}
      </Text>
    </Paper>
  );
  return to ? (
    <Link to={to} style={{ textDecoration: "none", color: "inherit" }}>
      {body}
    </Link>
  ) : (
    body
  );
}

/** Seals and timestamps of the last 7 days, and the open violations. */
function ComplianceSummary() {
  const { t } = useTranslation();
  const to = new Date();
  const from = new Date(to.getTime() - 6 * 86400e3);
  const status = useQuery({
    queryKey: ["compliance-status", from.toISOString().slice(0, 10), to.toISOString().slice(0, 10)],
    queryFn: () =>
      call(api.GET("/api/v1/compliance/status", { params: { query: { from: from.toISOString().slice(0, 10), to: to.toISOString().slice(0, 10) } } })),
  });
  const violations = useQuery({
    queryKey: ["violations", true],
    queryFn: () => call(api.GET("/api/v1/compliance/violations", { params: { query: { open: true } } })),
  });
  const count: Record<string, number> = {};
  for (const d of status.data?.devices ?? []) for (const c of d.days) count[c.state] = (count[c.state] ?? 0) + 1;
  return (
    <Paper withBorder p="xs" data-testid="compliance-summary">
      <Text size="sm" fw={600} mb={4}>
        {t("overview.seals")}
      </Text>
      {status.error ? (
        <ErrorNote error={status.error} />
      ) : (
        <SimpleGrid cols={2} spacing={4}>
          <Text size="xs">{t("compliance.sealedDays")}: {count.sealed ?? 0}</Text>
          <Text size="xs">{t("compliance.pendingDays")}: {count.stamp_pending ?? 0}</Text>
          <Text size="xs" c={count.silence ? "red" : undefined}>
            {t("compliance.silenceDays")}: {count.silence ?? 0}
          </Text>
          <Text size="xs" c={violations.data?.length ? "red" : undefined}>
            <Link to="/compliance">{t("compliance.openViolations")}</Link>: {violations.data?.length ?? "…"}
          </Text>
        </SimpleGrid>
      )}
    </Paper>
  );
}
