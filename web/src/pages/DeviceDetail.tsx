// One device: its facts, a calendar of its archive days, and its most recent lines.
import { Badge, Group, Paper, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useParams } from "react-router-dom";

import { useAuth } from "../api/auth";
import { api, call } from "../api/client";
import type { EventOut } from "../api/types";
import { chainDayState, DayCalendar } from "../components/DayCalendar";
import type { DayInfo } from "../components/DayCalendar";
import { ErrorNote } from "../components/ErrorNote";
import { formatCount, formatRate, formatStamp, zoneLabel } from "../lib/time";
import { COLUMNS } from "./logs/columns";
import { ResultsTable } from "./logs/ResultsTable";
import { DeviceStateBadge } from "./Devices";

const RECENT_COLUMNS = COLUMNS.filter((c) => ["time", "severity", "message"].includes(c.id));

function todayIn(zone: string): string {
  try {
    return new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date());
  } catch {
    return new Date().toISOString().slice(0, 10);
  }
}

export default function DeviceDetail() {
  const { t, i18n } = useTranslation();
  const { slug = "" } = useParams();
  const { can } = useAuth();
  const [selected, setSelected] = useState<EventOut | null>(null);
  const device = useQuery({
    queryKey: ["device", slug],
    queryFn: () => call(api.GET("/api/v1/devices/{slug}", { params: { path: { slug } } })),
  });
  const zone = device.data?.timezone ?? "Europe/Istanbul";
  const today = todayIn(zone);
  const from = useMemo(() => {
    const d = new Date(`${today}T00:00:00Z`);
    d.setUTCMonth(d.getUTCMonth() - 2, 1);
    return d.toISOString().slice(0, 10);
  }, [today]);
  const days = useQuery({
    queryKey: ["archive-days", slug, from, today],
    enabled: can("view") && !!device.data,
    queryFn: () => call(api.GET("/api/v1/devices/{slug}/archive-days", { params: { path: { slug }, query: { from, to: today } } })),
  });
  const recent = useQuery({
    queryKey: ["recent", slug],
    enabled: can("view") && !!device.data,
    refetchInterval: 15_000,
    queryFn: () =>
      call(api.GET("/api/v1/search/events", { params: { query: { device: [slug], from: "-7d", limit: 100, tz: zone } } })),
  });
  // Seal and timestamp states when the user may see compliance; else the archive chain state.
  const sealed = useQuery({
    queryKey: ["compliance-status", slug, from, today],
    enabled: can("view_compliance") && !!device.data,
    queryFn: () => call(api.GET("/api/v1/compliance/status", { params: { query: { device: slug, from, to: today } } })),
  });
  const calendar = useMemo(() => {
    const out: Record<string, DayInfo> = {};
    for (const d of days.data?.days ?? []) {
      out[String(d.day)] = { state: chainDayState(d.chain), detail: `${formatCount(d.lines, i18n.language)} ${t("calendar.lines")}, ${d.chain}` };
    }
    for (const c of sealed.data?.devices.find((x) => x.device === slug)?.days ?? []) {
      if (c.state === "no_data" && !out[String(c.day)]) continue;
      const state = c.state === "sealed" ? (c.tsa ? "stamped" : "sealed") : c.state === "stamp_pending" ? "sealed" : c.state === "silence" ? "gap" : c.state === "open" ? "open" : null;
      if (state) {
        const label = t(`compliance.state.${c.state}`, { defaultValue: c.state });
        out[String(c.day)] = { state, detail: `${formatCount(c.lines, i18n.language)} ${t("calendar.lines")}, ${label}${c.tsa ? ` · TSA ${c.tsa}` : ""}${c.verified ? ` · ${c.verified}` : ""}` };
      }
    }
    return out;
  }, [days.data, sealed.data, slug, i18n.language, t]);

  if (device.error) return <ErrorNote error={device.error} />;
  const d = device.data;
  return (
    <Stack gap="xs">
      <Group gap="xs">
        <Link to="/devices">{t("nav.devices")}</Link>
        <Text c="dimmed">/</Text>
        <Title order={4}>{d?.name || slug}</Title>
        {d && <DeviceStateBadge device={d} />}
      </Group>
      {d && (
        <Paper withBorder p="xs">
          <SimpleGrid cols={{ base: 2, sm: 4 }} spacing="xs">
            <Fact label={t("device.slug")} value={d.slug} />
            <Fact label={t("device.timezone")} value={zoneLabel(d.timezone)} />
            <Fact label={t("device.location")} value={d.location || "—"} />
            <Fact label={t("device.groups")} value={d.groups.map((g) => g.name).join(", ") || "—"} />
            <Fact label={t("device.sources")} value={d.sources.join(", ") || "—"} />
            <Fact label={t("device.rate")} value={formatRate(d.messages_per_s, i18n.language)} />
            <Fact label={t("device.lastSeen")} value={d.last_seen ? formatStamp(d.last_seen) : "—"} />
            <Fact label={t("device.format")} value={d.format ?? t("device.formatAuto")} />
          </SimpleGrid>
        </Paper>
      )}
      {can("view") && (
        <>
          <Paper withBorder p="xs">
            <Group justify="space-between" mb={4}>
              <Text fw={600} size="sm">
                {t("device.days")}
              </Text>
              <Badge variant="outline">{zone}</Badge>
            </Group>
            {days.error ? <ErrorNote error={days.error} /> : <DayCalendar days={calendar} today={today} />}
          </Paper>
          <Text fw={600} size="sm">
            {t("device.recent")}
          </Text>
          {recent.error && <ErrorNote error={recent.error} />}
          <ResultsTable rows={recent.data?.events ?? []} columns={RECENT_COLUMNS} selected={selected?.id ?? null} onSelect={setSelected} height={320} />
          {selected && (
            <Text size="xs" c="dimmed">
              <Link to={`/logs?q=${encodeURIComponent(`device:${slug}`)}&from=-24h`}>{t("device.openInLogs")}</Link>
            </Text>
          )}
        </>
      )}
    </Stack>
  );
}

function Fact({ label, value }: { label: string; value: string }) {
  return (
    <div>
      <Text size="xs" c="dimmed">
        {label}
      </Text>
      <Text size="sm" style={{ wordBreak: "break-all" }}>
        {value}
      </Text>
    </div>
  );
}
