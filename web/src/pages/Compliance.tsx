// Compliance: a calendar heatmap of every visible device's days (sealed, stamp pending, open,
// silence, no data), the violations, the monthly reports (PDF / JSON, signed and stamped) and
// evidence bundle export with progress.
import { Alert, Badge, Box, Button, Group, Paper, Progress, ScrollArea, Select, Stack, Switch, Table, Tabs, Text, TextInput, Title, Tooltip } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconDownload, IconFileExport } from "@tabler/icons-react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router-dom";

import { Can, useAuth } from "../api/auth";
import { api, call, download } from "../api/client";
import { DAY_COLOR } from "../components/DayCalendar";
import type { DayState } from "../components/DayCalendar";
import { ErrorNote, errorText } from "../components/ErrorNote";
import { formatDay, formatInZone } from "../lib/time";
import { useDevices } from "./Devices";

const DAYS = 30;

/** The calendar colour of a compliance day state (api/routes/compliance.py DayCell.state). */
export function complianceState(state: string): DayState {
  switch (state) {
    case "sealed":
      return "sealed";
    case "stamp_pending":
      return "chained";
    case "open":
      return "open";
    case "silence":
      return "gap";
    default:
      return "missing";
  }
}

/** The local calendar day of ``d`` as YYYY-MM-DD (not the UTC day: before 03:00 in Istanbul
 * that would still be yesterday). */
function isoDay(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Every day from ``first`` to ``last`` (YYYY-MM-DD, inclusive). */
export function daysBetween(first: string, last: string): string[] {
  const out: string[] = [];
  const end = Date.parse(`${last}T00:00:00Z`);
  for (let t = Date.parse(`${first}T00:00:00Z`); t <= end && out.length < 1000; t += 86400e3) {
    out.push(new Date(t).toISOString().slice(0, 10));
  }
  return out;
}

type Cell = { day: string; state: string; lines: number; tsa?: string | null; verified?: string | null };

export default function CompliancePage() {
  const { t } = useTranslation();
  return (
    <Stack gap="xs">
      <Title order={4}>{t("nav.compliance")}</Title>
      <Tabs defaultValue="calendar" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="calendar">{t("compliance.calendar")}</Tabs.Tab>
          <Tabs.Tab value="violations" data-testid="tab-violations">{t("compliance.violations")}</Tabs.Tab>
          <Tabs.Tab value="reports" data-testid="tab-reports">{t("compliance.reports")}</Tabs.Tab>
          <Tabs.Tab value="bundles" data-testid="tab-bundles">{t("compliance.bundles")}</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="calendar" pt="xs">
          <Heatmap />
        </Tabs.Panel>
        <Tabs.Panel value="violations" pt="xs">
          <Violations />
        </Tabs.Panel>
        <Tabs.Panel value="reports" pt="xs">
          <Reports />
        </Tabs.Panel>
        <Tabs.Panel value="bundles" pt="xs">
          <Bundles />
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}

function Heatmap() {
  const { t } = useTranslation();
  const to = new Date();
  const from = new Date(to.getTime() - (DAYS - 1) * 86400e3);
  const status = useQuery({
    queryKey: ["compliance-status", isoDay(from), isoDay(to)],
    queryFn: () => call(api.GET("/api/v1/compliance/status", { params: { query: { from: isoDay(from), to: isoDay(to) } } })),
  });
  if (status.error) return <ErrorNote error={status.error} />;
  const devices = status.data?.devices ?? [];
  // The API lists only days with files: every device gets one column per day of the range, a day
  // it does not list being no_data, so that the columns line up across devices.
  const days = status.data ? daysBetween(String(status.data.from), String(status.data.to)) : [];
  return (
    <Paper withBorder p="xs">
      <ScrollArea>
        <Box data-testid="compliance-heatmap" style={{ display: "grid", gridTemplateColumns: `160px repeat(${days.length || 1}, 16px)`, gap: 2, alignItems: "center" }}>
          <Box />
          {days.map((d) => (
            <Text key={d} size="8px" c="dimmed" ta="center">
              {d.slice(8)}
            </Text>
          ))}
          {devices.map((dev) => [
            <Text key={`${dev.device}-name`} size="xs" truncate>
              <Link to={`/devices/${encodeURIComponent(dev.device)}`}>{dev.device}</Link>
            </Text>,
            ...((byDay) => days.map((day): Cell => byDay.get(day) ?? { day, state: "no_data", lines: 0 }))(
              new Map<string, Cell>(dev.days.map((c) => [String(c.day), { ...c, day: String(c.day) }])),
            ).map((c) => {
              const state = complianceState(c.state);
              const tip = `${dev.device} ${formatDay(String(c.day))}: ${t(`compliance.state.${c.state}`, { defaultValue: c.state })} · ${c.lines} ${t("calendar.lines")}${c.tsa ? ` · TSA ${c.tsa}` : ""}${c.verified ? ` · ${c.verified}` : ""}`;
              return (
                <Tooltip key={`${dev.device}-${c.day}`} label={tip} withinPortal>
                  <Box h={16} data-testid="heat-cell" data-device={dev.device} data-day={String(c.day)} data-state={c.state} style={{ background: DAY_COLOR[state], borderRadius: 2 }} />
                </Tooltip>
              );
            }),
          ])}
        </Box>
      </ScrollArea>
      <Group gap="sm" mt="xs">
        {(["sealed", "stamp_pending", "open", "silence", "no_data"] as const).map((s) => (
          <Group key={s} gap={4}>
            <Box w={10} h={10} style={{ background: DAY_COLOR[complianceState(s)], borderRadius: 2 }} />
            <Text size="xs">{t(`compliance.state.${s}`)}</Text>
          </Group>
        ))}
      </Group>
    </Paper>
  );
}

type Row = Record<string, unknown>;
const str = (v: unknown) => (v === null || v === undefined ? "" : String(v));

function Violations() {
  const { t, i18n } = useTranslation();
  const [openOnly, setOpenOnly] = useState(true);
  const list = useQuery({
    queryKey: ["violations", openOnly],
    queryFn: () => call(api.GET("/api/v1/compliance/violations", { params: { query: { open: openOnly } } })),
  });
  const tr = i18n.language === "tr";
  return (
    <Stack gap="xs">
      <Switch label={t("compliance.openOnly")} checked={openOnly} onChange={(e) => setOpenOnly(e.currentTarget.checked)} />
      {list.error && <ErrorNote error={list.error} />}
      <Table.ScrollContainer minWidth={700}>
        <Table striped data-testid="violations-table">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>{t("compliance.opened")}</Table.Th>
              <Table.Th>{t("compliance.kind")}</Table.Th>
              <Table.Th>{t("col.device")}</Table.Th>
              <Table.Th>{t("compliance.what")}</Table.Th>
              <Table.Th>{t("compliance.resolved")}</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {(list.data ?? []).map((v: Row) => (
              <Table.Tr key={str(v.id)} data-testid="violation-row" data-kind={str(v.kind)}>
                <Table.Td style={{ whiteSpace: "nowrap" }}>{v.opened_at ? formatInZone(str(v.opened_at)) : ""}</Table.Td>
                <Table.Td>
                  <Badge color={v.severity === "critical" ? "red" : "orange"} variant="light" tt="none">
                    {str(v.kind)}
                  </Badge>
                </Table.Td>
                <Table.Td>{str(v.device) || "—"}</Table.Td>
                <Table.Td>{str(tr ? v.message_tr || v.title_tr : v.message || v.title)}</Table.Td>
                <Table.Td>{v.resolved_at ? formatInZone(str(v.resolved_at)) : "—"}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
      {list.data?.length === 0 && <Text c="dimmed">{t("compliance.noViolations")}</Text>}
    </Stack>
  );
}

function Reports() {
  const { t } = useTranslation();
  const { me } = useAuth();
  const qc = useQueryClient();
  const [month, setMonth] = useState(() => isoDay(new Date()).slice(0, 7));
  const list = useQuery({ queryKey: ["reports"], queryFn: () => call(api.GET("/api/v1/compliance/reports")) });
  const create = useMutation({
    mutationFn: () => call(api.POST("/api/v1/compliance/reports", { body: { month } })),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["reports"] }),
    onError: (e) => notifications.show({ color: "red", message: errorText(e) }),
  });
  const get = (name: string) => () =>
    download(`/api/v1/compliance/reports/${encodeURIComponent(name)}`, { method: "GET" }, name).catch((e) =>
      notifications.show({ color: "red", message: errorText(e) }),
    );
  return (
    <Stack gap="xs">
      {(me?.roles ?? []).includes("admin") && (
        <Group gap="xs" align="flex-end">
          <TextInput label={t("compliance.month")} value={month} onChange={(e) => setMonth(e.currentTarget.value)} w={120} placeholder="2026-11" />
          <Button onClick={() => create.mutate()} loading={create.isPending} data-testid="report-create">
            {t("compliance.makeReport")}
          </Button>
        </Group>
      )}
      {list.error && <ErrorNote error={list.error} />}
      <Table striped data-testid="reports-table">
        <Table.Tbody>
          {(list.data ?? []).map((r: Row) => (
            <Table.Tr key={str(r.name)} data-testid="report-row" data-month={str(r.month)}>
              <Table.Td>{str(r.month)}</Table.Td>
              <Table.Td>{str(r.location) || t("compliance.allLocations")}</Table.Td>
              <Table.Td>{r.stamped ? <Badge color="teal">{t("calendar.stamped")}</Badge> : null}</Table.Td>
              <Table.Td>
                <Group gap={4}>
                  {((r.files as string[] | undefined) ?? []).map((f) => (
                    <Button key={f} size="compact-xs" variant="default" leftSection={<IconDownload size={12} />} onClick={get(f)} data-testid={`report-file-${f.split(".").slice(1).join(".")}`}>
                      {f.split(".").slice(1).join(".")}
                    </Button>
                  ))}
                </Group>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {list.data?.length === 0 && <Text c="dimmed">{t("compliance.noReports")}</Text>}
    </Stack>
  );
}

function Bundles() {
  const { t } = useTranslation();
  const devices = useDevices();
  const today = isoDay(new Date());
  const [device, setDevice] = useState<string | null>(null);
  const [from, setFrom] = useState(today);
  const [to, setTo] = useState(today);
  const [job, setJob] = useState<string | null>(null);
  const start = useMutation({
    mutationFn: () => call(api.POST("/api/v1/exports/jobs", { body: { device: device!, from, to } })),
    onSuccess: (j) => setJob(j.id),
    onError: (e) => notifications.show({ color: "red", message: errorText(e) }),
  });
  const progress = useQuery({
    queryKey: ["export-job", job],
    enabled: !!job,
    queryFn: () => call(api.GET("/api/v1/exports/jobs/{job}", { params: { path: { job: job! } } })),
    refetchInterval: (q) => (q.state.data?.state === "running" ? 500 : false),
  });
  const p = progress.data;
  const pct = p && p.bytes_total ? Math.round((100 * p.bytes_done) / p.bytes_total) : p?.state === "done" ? 100 : 0;
  return (
    <Can action="export">
      <Stack gap="xs">
        <Group gap="xs" align="flex-end">
          <Select label={t("col.device")} data={(devices.data?.devices ?? []).map((d) => d.slug)} value={device} onChange={setDevice} searchable data-testid="bundle-device" />
          <TextInput label={t("range.from")} value={from} onChange={(e) => setFrom(e.currentTarget.value)} w={120} description="YYYY-MM-DD" />
          <TextInput label={t("range.to")} value={to} onChange={(e) => setTo(e.currentTarget.value)} w={120} description="YYYY-MM-DD" />
          <Button leftSection={<IconFileExport size={14} />} disabled={!device} loading={start.isPending || p?.state === "running"} onClick={() => start.mutate()} data-testid="bundle-start">
            {t("compliance.export")}
          </Button>
        </Group>
        {p && (
          <Paper withBorder p="xs" data-testid="bundle-progress" data-state={p.state} data-pct={pct}>
            <Group justify="space-between">
              <Text size="sm">
                {p.device}: {t(`compliance.job.${p.state}`)}
              </Text>
              {p.state === "done" && (
                <Button size="compact-xs" leftSection={<IconDownload size={12} />} onClick={() => void download(`/api/v1/exports/jobs/${encodeURIComponent(p.id)}/bundle`, { method: "GET" }, `${p.id}.zip`)} data-testid="bundle-download">
                  {t("compliance.download")}
                </Button>
              )}
            </Group>
            <Progress value={pct} mt={4} color={p.state === "failed" ? "red" : undefined} />
            {p.state === "failed" && <Alert color="red" mt={4}>{p.error_tr || p.error}</Alert>}
          </Paper>
        )}
      </Stack>
    </Can>
  );
}
