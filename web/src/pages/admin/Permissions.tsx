// Permissions: the grants (user or role → device, group or location, with actions), the matrix
// of one user's effective permissions per device, and "why can this user see this device".
import { ActionIcon, Badge, Button, Checkbox, Group, List, Paper, Select, SimpleGrid, Stack, Table, Text, Title, Tooltip } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconCheck, IconTrash, IconX } from "@tabler/icons-react";
import { useMutation, useQueries, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useTranslation } from "react-i18next";

import { api, call } from "../../api/client";
import { ErrorNote, errorText } from "../../components/ErrorNote";

export const DEVICE_ACTIONS = ["view", "tail", "export", "attribute", "manage"] as const;
const MATRIX_MAX_DEVICES = 60;

export default function PermissionsPage() {
  const { t } = useTranslation();
  const users = useQuery({ queryKey: ["users"], queryFn: () => call(api.GET("/api/v1/users")) });
  const devices = useQuery({ queryKey: ["devices"], queryFn: () => call(api.GET("/api/v1/devices")) });
  const [user, setUser] = useState<string | null>(null);
  const [device, setDevice] = useState<string | null>(null);
  const userNames = (users.data ?? []).map((u) => u.username);
  const slugs = (devices.data?.devices ?? []).map((d) => d.slug);
  return (
    <Stack gap="sm">
      <Title order={4}>{t("nav.permissions")}</Title>
      <Paper withBorder p="xs">
        <Text fw={600} size="sm" mb={4}>
          {t("perm.why")}
        </Text>
        <Group gap="xs" align="flex-end">
          <Select label={t("perm.user")} data={userNames} value={user} onChange={setUser} searchable data-testid="perm-user" />
          <Select label={t("perm.device")} data={slugs} value={device} onChange={setDevice} searchable data-testid="perm-device" />
        </Group>
        {user && device && <Explain user={user} device={device} />}
      </Paper>
      {user && <Matrix user={user} slugs={slugs.slice(0, MATRIX_MAX_DEVICES)} onPick={setDevice} />}
      <Grants users={userNames} slugs={slugs} />
    </Stack>
  );
}

function Explain({ user, device }: { user: string; device: string }) {
  const { t, i18n } = useTranslation();
  const q = useQuery({
    queryKey: ["explain", user, device],
    queryFn: () => call(api.GET("/api/v1/permissions/explain", { params: { query: { user, device } } })),
  });
  if (q.error) return <ErrorNote error={q.error} />;
  if (!q.data) return null;
  return (
    <SimpleGrid cols={{ base: 1, md: 2 }} mt="xs" data-testid="perm-explain">
      {Object.entries(q.data.actions).map(([action, v]) => (
        <Paper key={action} withBorder p={6}>
          <Group gap={4}>
            {v.allowed ? <IconCheck size={14} color="green" /> : <IconX size={14} color="red" />}
            <Text size="sm" fw={600}>
              {t(`action.${action}`)}
            </Text>
          </Group>
          <List size="xs">
            {(i18n.language === "tr" ? v.reasons_tr : v.reasons).map((r, i) => (
              <List.Item key={i}>{r}</List.Item>
            ))}
          </List>
        </Paper>
      ))}
    </SimpleGrid>
  );
}

function Matrix({ user, slugs, onPick }: { user: string; slugs: string[]; onPick: (slug: string) => void }) {
  const { t } = useTranslation();
  const results = useQueries({
    queries: slugs.map((slug) => ({
      queryKey: ["explain", user, slug],
      queryFn: () => call(api.GET("/api/v1/permissions/explain", { params: { query: { user, device: slug } } })),
    })),
  });
  return (
    <Paper withBorder p="xs">
      <Text fw={600} size="sm" mb={4}>
        {t("perm.matrix", { user })}
      </Text>
      <Table.ScrollContainer minWidth={500}>
        <Table data-testid="perm-matrix">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>{t("perm.device")}</Table.Th>
              {DEVICE_ACTIONS.map((a) => (
                <Table.Th key={a} ta="center">
                  {t(`action.${a}`)}
                </Table.Th>
              ))}
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {slugs.map((slug, i) => (
              <Table.Tr key={slug}>
                <Table.Td>
                  <Text size="xs" style={{ cursor: "pointer" }} td="underline" onClick={() => onPick(slug)}>
                    {slug}
                  </Text>
                </Table.Td>
                {DEVICE_ACTIONS.map((a) => {
                  const v = results[i].data?.actions[a];
                  return (
                    <Table.Td key={a} ta="center">
                      {v && (
                        <Tooltip label={v.reasons.join("; ")} withinPortal multiline w={300}>
                          {v.allowed ? <IconCheck size={14} color="green" /> : <IconX size={14} color="var(--mantine-color-gray-5)" />}
                        </Tooltip>
                      )}
                    </Table.Td>
                  );
                })}
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
    </Paper>
  );
}

function Grants({ users, slugs }: { users: string[]; slugs: string[] }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const grants = useQuery({ queryKey: ["grants"], queryFn: () => call(api.GET("/api/v1/grants")) });
  const roles = useQuery({ queryKey: ["roles"], queryFn: () => call(api.GET("/api/v1/roles")) });
  const groups = useQuery({ queryKey: ["device-groups"], queryFn: () => call(api.GET("/api/v1/device-groups")) });
  const locations = useQuery({ queryKey: ["locations"], queryFn: () => call(api.GET("/api/v1/locations")) });
  const [who, setWho] = useState<string | null>(null);
  const [what, setWhat] = useState<string | null>(null);
  const [actions, setActions] = useState<string[]>(["view"]);
  const refresh = () => {
    void qc.invalidateQueries({ queryKey: ["grants"] });
    void qc.invalidateQueries({ queryKey: ["explain"] });
  };
  const add = useMutation({
    mutationFn: () => {
      const [wk, wv] = (who ?? ":").split(":", 2);
      const [tk, tv] = (what ?? ":").split(":", 2);
      return call(api.POST("/api/v1/grants", { body: { [wk]: wv, [tk]: tv, actions } }));
    },
    onSuccess: refresh,
    onError: (e) => notifications.show({ color: "red", message: errorText(e) }),
  });
  const remove = useMutation({
    mutationFn: (id: number) => call(api.DELETE("/api/v1/grants/{grant_id}", { params: { path: { grant_id: id } } })),
    onSuccess: refresh,
    onError: (e) => notifications.show({ color: "red", message: errorText(e) }),
  });
  const whoData = [
    { group: t("perm.users"), items: users.map((u) => ({ value: `user:${u}`, label: u })) },
    { group: t("nav.roles"), items: (roles.data ?? []).map((r) => ({ value: `role:${r.name}`, label: r.name })) },
  ];
  const whatData = [
    { group: t("perm.devices"), items: slugs.map((s) => ({ value: `device:${s}`, label: s })) },
    { group: t("perm.groups"), items: (groups.data ?? []).map((g) => ({ value: `device_group:${g.name}`, label: g.name })) },
    { group: t("perm.locations"), items: (locations.data ?? []).map((l) => ({ value: `location:${l.name}`, label: l.name })) },
  ];
  const target = (g: { device?: string | null; device_group?: string | null; location?: string | null }) =>
    g.device ? `${t("perm.deviceShort")}: ${g.device}` : g.device_group ? `${t("perm.groupShort")}: ${g.device_group}` : `${t("perm.locationShort")}: ${g.location}`;
  return (
    <Paper withBorder p="xs">
      <Text fw={600} size="sm" mb={4}>
        {t("perm.grants")}
      </Text>
      <Group gap="xs" align="flex-end" mb="xs">
        <Select label={t("perm.who")} data={whoData} value={who} onChange={setWho} searchable data-testid="grant-who" />
        <Select label={t("perm.what")} data={whatData} value={what} onChange={setWhat} searchable data-testid="grant-what" />
        <Checkbox.Group value={actions} onChange={setActions} label={t("perm.actions")}>
          <Group gap={6} mt={4}>
            {DEVICE_ACTIONS.map((a) => (
              <Checkbox key={a} value={a} label={t(`action.${a}`)} size="xs" />
            ))}
          </Group>
        </Checkbox.Group>
        <Button disabled={!who || !what || !actions.length} loading={add.isPending} onClick={() => add.mutate()} data-testid="grant-add">
          {t("perm.grant")}
        </Button>
      </Group>
      {grants.error && <ErrorNote error={grants.error} />}
      <Table striped data-testid="grant-table">
        <Table.Tbody>
          {(grants.data ?? []).map((g) => (
            <Table.Tr key={g.id}>
              <Table.Td>{g.user ? `${t("perm.userShort")}: ${g.user}` : `${t("perm.roleShort")}: ${g.role}`}</Table.Td>
              <Table.Td>{target(g)}</Table.Td>
              <Table.Td>
                <Group gap={2}>
                  {g.actions.map((a) => (
                    <Badge key={a} variant="light" tt="none">
                      {t(`action.${a}`)}
                    </Badge>
                  ))}
                </Group>
              </Table.Td>
              <Table.Td>
                <Text size="xs" c="dimmed">
                  {g.created_by}
                </Text>
              </Table.Td>
              <Table.Td w={30}>
                <ActionIcon variant="subtle" color="red" onClick={() => remove.mutate(g.id)} aria-label={t("common.delete")}>
                  <IconTrash size={14} />
                </ActionIcon>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Paper>
  );
}
