// Devices: every visible device with its status and rate, and the pending ones waiting for an
// operator's approval (name, location, timezone, groups set while approving).
import { Badge, Button, Card, Group, MultiSelect, Select, SimpleGrid, Stack, Table, Tabs, Text, TextInput, Title } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconCheck, IconX } from "@tabler/icons-react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router-dom";

import { api, call } from "../api/client";
import type { Device } from "../api/types";
import { ErrorNote, errorText } from "../components/ErrorNote";
import { formatRate, formatStamp, offsetOf } from "../lib/time";

export function deviceState(d: Device): "receiving" | "silent" | "pending" | "rejected" | "retired" {
  if (d.status === "pending" || d.status === "rejected" || d.status === "retired") return d.status;
  return d.silent ? "silent" : "receiving";
}

const STATE_COLOR = { receiving: "green", silent: "orange", pending: "blue", rejected: "gray", retired: "gray" } as const;

export function DeviceStateBadge({ device }: { device: Device }) {
  const { t } = useTranslation();
  const s = deviceState(device);
  return (
    <Badge color={STATE_COLOR[s]} variant="light" data-testid="device-state">
      {t(`device.state.${s}`)}
    </Badge>
  );
}

export function useDevices() {
  return useQuery({
    queryKey: ["devices"],
    queryFn: () => call(api.GET("/api/v1/devices")),
    refetchInterval: 10_000,
  });
}

export default function DevicesPage() {
  const { t, i18n } = useTranslation();
  const devices = useDevices();
  const list = devices.data?.devices ?? [];
  const pending = list.filter((d) => d.status === "pending");
  const [tab, setTab] = useState<string | null>("all");

  return (
    <Stack gap="xs">
      <Title order={4}>{t("nav.devices")}</Title>
      {devices.error && <ErrorNote error={devices.error} />}
      <Tabs value={tab} onChange={setTab}>
        <Tabs.List>
          <Tabs.Tab value="all">{t("device.all", { count: list.length })}</Tabs.Tab>
          <Tabs.Tab value="pending" data-testid="tab-pending">
            {t("device.pending", { count: pending.length })}
          </Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="all" pt="xs">
          <Table.ScrollContainer minWidth={640}>
            <Table striped highlightOnHover data-testid="device-table">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{t("device.name")}</Table.Th>
                  <Table.Th>{t("device.status")}</Table.Th>
                  <Table.Th>{t("device.rate")}</Table.Th>
                  <Table.Th>{t("device.lastSeen")}</Table.Th>
                  <Table.Th>{t("device.location")}</Table.Th>
                  <Table.Th>{t("device.groups")}</Table.Th>
                  <Table.Th>{t("device.timezone")}</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {list.map((d) => (
                  <Table.Tr key={d.slug}>
                    <Table.Td>
                      <Link to={`/devices/${encodeURIComponent(d.slug)}`}>{d.name || d.slug}</Link>
                      {d.name && d.name !== d.slug && (
                        <Text span size="xs" c="dimmed">
                          {" "}
                          {d.slug}
                        </Text>
                      )}
                    </Table.Td>
                    <Table.Td>
                      <DeviceStateBadge device={d} />
                    </Table.Td>
                    <Table.Td>{formatRate(d.messages_per_s, i18n.language)}</Table.Td>
                    <Table.Td>
                      {d.last_seen ? `${formatStamp(d.last_seen, false)} ${offsetOf(d.last_seen)}` : "—"}
                      {d.silent && d.silent_since && (
                        <Text size="xs" c="orange">
                          {t("device.silentSince", { time: formatStamp(d.silent_since, false) })}
                        </Text>
                      )}
                    </Table.Td>
                    <Table.Td>{d.location || "—"}</Table.Td>
                    <Table.Td>{d.groups.map((g) => g.name).join(", ") || "—"}</Table.Td>
                    <Table.Td>{d.timezone}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        </Tabs.Panel>
        <Tabs.Panel value="pending" pt="xs">
          {pending.length === 0 && <Text c="dimmed">{t("device.noPending")}</Text>}
          <SimpleGrid cols={{ base: 1, md: 2, xl: 3 }}>
            {pending.map((d) => (
              <PendingCard key={d.slug} device={d} />
            ))}
          </SimpleGrid>
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}

function PendingCard({ device }: { device: Device }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const [name, setName] = useState(device.name || device.slug);
  const [timezone, setTimezone] = useState<string | null>(device.timezone);
  const [location, setLocation] = useState<string | null>(device.location_id ? String(device.location_id) : null);
  const [groups, setGroups] = useState<string[]>(device.groups.map((g) => String(g.id)));
  const locations = useQuery({
    queryKey: ["locations"],
    queryFn: () => call(api.GET("/api/v1/locations")),
    enabled: device.can_manage,
    retry: false,
  });
  const deviceGroups = useQuery({
    queryKey: ["device-groups"],
    queryFn: () => call(api.GET("/api/v1/device-groups")),
    enabled: device.can_manage,
    retry: false,
  });
  const slug = { params: { path: { slug: device.slug } } };
  const approve = useMutation({
    mutationFn: async () => {
      await call(
        api.PATCH("/api/v1/devices/{slug}", {
          ...slug,
          body: {
            name,
            timezone: timezone ?? undefined,
            location_id: location ? Number(location) : null,
            group_ids: groups.map(Number),
          },
        }),
      );
      return call(api.POST("/api/v1/devices/{slug}/approve", slug));
    },
    onSuccess: () => {
      notifications.show({ color: "green", message: t("device.approved", { name }) });
      void qc.invalidateQueries({ queryKey: ["devices"] });
    },
    onError: (e) => notifications.show({ color: "red", message: errorText(e) }),
  });
  const reject = useMutation({
    mutationFn: () => call(api.POST("/api/v1/devices/{slug}/reject", slug)),
    onSuccess: () => {
      notifications.show({ message: t("device.rejected", { name: device.slug }) });
      void qc.invalidateQueries({ queryKey: ["devices"] });
    },
    onError: (e) => notifications.show({ color: "red", message: errorText(e) }),
  });

  return (
    <Card withBorder padding="sm" data-testid={`pending-${device.slug}`}>
      <Group justify="space-between" mb={4}>
        <Text fw={600}>{device.slug}</Text>
        <DeviceStateBadge device={device} />
      </Group>
      <Text size="xs" c="dimmed">
        {t("device.sources")}: {device.sources.join(", ") || "—"}
        {device.hostname ? ` · ${device.hostname}` : ""}
      </Text>
      <Text size="xs" c="dimmed" mb="xs">
        {t("device.lastSeen")}: {device.last_seen ? formatStamp(device.last_seen, false) : "—"}
      </Text>
      {device.can_manage ? (
        <Stack gap={6}>
          <TextInput label={t("device.name")} value={name} onChange={(e) => setName(e.currentTarget.value)} data-testid="approve-name" />
          <Select
            label={t("device.location")}
            clearable
            searchable
            data={(locations.data ?? []).map((l) => ({ value: String(l.id), label: l.name }))}
            value={location}
            onChange={setLocation}
          />
          <Select label={t("device.timezone")} searchable data={timeZones()} value={timezone} onChange={setTimezone} />
          <MultiSelect
            label={t("device.groups")}
            data={(deviceGroups.data ?? []).map((g) => ({ value: String(g.id), label: g.name }))}
            value={groups}
            onChange={setGroups}
            searchable
          />
          <Group justify="flex-end" mt={4}>
            <Button color="red" variant="light" leftSection={<IconX size={14} />} loading={reject.isPending} onClick={() => reject.mutate()} data-testid="reject">
              {t("device.reject")}
            </Button>
            <Button color="green" leftSection={<IconCheck size={14} />} loading={approve.isPending} onClick={() => approve.mutate()} data-testid="approve">
              {t("device.approve")}
            </Button>
          </Group>
        </Stack>
      ) : (
        <Text size="xs" c="dimmed">
          {t("device.noManage")}
        </Text>
      )}
    </Card>
  );
}

let zones: string[] | null = null;
export function timeZones(): string[] {
  if (!zones) {
    try {
      zones = Intl.supportedValuesOf("timeZone");
    } catch {
      zones = ["Europe/Istanbul", "UTC"];
    }
    if (!zones.includes("UTC")) zones = [...zones, "UTC"];
  }
  return zones;
}
