// Users: list, create, edit roles / locations / source networks / hours, reset password,
// unlock, end sessions, reset MFA. Only shown to holders of manage_users.
import { Badge, Button, Drawer, Group, MultiSelect, PasswordInput, Select, Stack, Switch, Table, TagsInput, Text, TextInput, Title } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconPlus } from "@tabler/icons-react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useTranslation } from "react-i18next";

import { api, call } from "../../api/client";
import type { User } from "../../api/types";
import { ErrorNote, errorText } from "../../components/ErrorNote";
import { formatInZone } from "../../lib/time";
import { timeZones } from "../Devices";

export default function UsersPage() {
  const { t } = useTranslation();
  const users = useQuery({ queryKey: ["users"], queryFn: () => call(api.GET("/api/v1/users")) });
  const [editing, setEditing] = useState<User | "new" | null>(null);
  return (
    <Stack gap="xs">
      <Group justify="space-between">
        <Title order={4}>{t("nav.users")}</Title>
        <Button leftSection={<IconPlus size={14} />} onClick={() => setEditing("new")} data-testid="user-new">
          {t("users.new")}
        </Button>
      </Group>
      {users.error && <ErrorNote error={users.error} />}
      <Table.ScrollContainer minWidth={700}>
        <Table striped highlightOnHover data-testid="user-table">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>{t("users.username")}</Table.Th>
              <Table.Th>{t("users.displayName")}</Table.Th>
              <Table.Th>{t("users.roles")}</Table.Th>
              <Table.Th>{t("users.source")}</Table.Th>
              <Table.Th>MFA</Table.Th>
              <Table.Th>{t("users.lastLogin")}</Table.Th>
              <Table.Th>{t("users.state")}</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {(users.data ?? []).map((u) => (
              <Table.Tr key={u.id} onClick={() => setEditing(u)} style={{ cursor: "pointer" }}>
                <Table.Td>{u.username}</Table.Td>
                <Table.Td>{u.display_name}</Table.Td>
                <Table.Td>
                  <Group gap={2}>
                    {u.roles.map((r) => (
                      <Badge key={r} variant="light" tt="none">
                        {r}
                      </Badge>
                    ))}
                  </Group>
                </Table.Td>
                <Table.Td>{u.source}</Table.Td>
                <Table.Td>{u.mfa_enabled ? "✓" : "—"}</Table.Td>
                <Table.Td>{u.last_login_at ? formatInZone(u.last_login_at, u.timezone) : "—"}</Table.Td>
                <Table.Td>{u.active ? <Badge color="green">{t("users.active")}</Badge> : <Badge color="gray">{t("users.disabled")}</Badge>}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
      <Drawer opened={editing !== null} onClose={() => setEditing(null)} position="right" size="md" title={editing === "new" ? t("users.new") : editing?.username}>
        {editing !== null && <UserForm user={editing === "new" ? null : editing} onDone={() => setEditing(null)} />}
      </Drawer>
    </Stack>
  );
}

function UserForm({ user, onDone }: { user: User | null; onDone: () => void }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const roles = useQuery({ queryKey: ["roles"], queryFn: () => call(api.GET("/api/v1/roles")) });
  const locations = useQuery({ queryKey: ["locations"], queryFn: () => call(api.GET("/api/v1/locations")) });
  const [username, setUsername] = useState(user?.username ?? "");
  const [displayName, setDisplayName] = useState(user?.display_name ?? "");
  const [email, setEmail] = useState(user?.email ?? "");
  const [password, setPassword] = useState("");
  const [userRoles, setUserRoles] = useState<string[]>(user?.roles ?? ["viewer"]);
  const [userLocations, setUserLocations] = useState<string[]>(user?.locations ?? []);
  const [timezone, setTimezone] = useState<string | null>(user?.timezone ?? "Europe/Istanbul");
  const [networks, setNetworks] = useState<string[]>(user?.allowed_networks ?? []);
  const [active, setActive] = useState(user?.active ?? true);
  const done = (msg: string) => {
    notifications.show({ color: "green", message: msg });
    void qc.invalidateQueries({ queryKey: ["users"] });
  };
  const fail = (e: unknown) => notifications.show({ color: "red", message: errorText(e) });

  const save = useMutation({
    mutationFn: async () => {
      if (!user) {
        const created = await call(
          api.POST("/api/v1/users", {
            body: { username, password: password || null, source: password ? "local" : "ldap", roles: userRoles, display_name: displayName, email, timezone: timezone ?? "Europe/Istanbul" },
          }),
        );
        if (networks.length || userLocations.length) {
          await call(api.PATCH("/api/v1/users/{user_id}", { params: { path: { user_id: created.id } }, body: { allowed_networks: networks, locations: userLocations } }));
        }
        return;
      }
      await call(
        api.PATCH("/api/v1/users/{user_id}", {
          params: { path: { user_id: user.id } },
          body: { display_name: displayName, email, roles: userRoles, locations: userLocations, timezone, allowed_networks: networks, active },
        }),
      );
    },
    onSuccess: () => {
      done(t("common.saved"));
      onDone();
    },
    onError: fail,
  });
  const action = (fn: () => Promise<unknown>, msg: string) => () => fn().then(() => done(msg), fail);
  const id = user ? { params: { path: { user_id: user.id } } } : null;

  return (
    <Stack gap="xs">
      <TextInput label={t("users.username")} value={username} onChange={(e) => setUsername(e.currentTarget.value)} disabled={!!user} data-testid="user-username" />
      <TextInput label={t("users.displayName")} value={displayName} onChange={(e) => setDisplayName(e.currentTarget.value)} />
      <TextInput label={t("users.email")} value={email} onChange={(e) => setEmail(e.currentTarget.value)} />
      {!user && <PasswordInput label={t("auth.password")} value={password} onChange={(e) => setPassword(e.currentTarget.value)} data-testid="user-password" description={t("users.passwordHint")} />}
      <MultiSelect label={t("users.roles")} data={(roles.data ?? []).map((r) => r.name)} value={userRoles} onChange={setUserRoles} data-testid="user-roles" />
      <MultiSelect label={t("users.locations")} data={(locations.data ?? []).map((l) => l.name)} value={userLocations} onChange={setUserLocations} />
      <Select label={t("device.timezone")} searchable data={timeZones()} value={timezone} onChange={setTimezone} />
      <TagsInput label={t("users.networks")} description={t("users.networksHint")} value={networks} onChange={setNetworks} />
      {user && <Switch label={t("users.active")} checked={active} onChange={(e) => setActive(e.currentTarget.checked)} />}
      {user && user.allowed_windows.length > 0 && (
        <Text size="xs" c="dimmed">
          {t("users.windows")}: {user.allowed_windows.map((w) => `${w.days.join(",")} ${w.start}-${w.end}`).join("; ")}
        </Text>
      )}
      <Button onClick={() => save.mutate()} loading={save.isPending} data-testid="user-save">
        {t("common.save")}
      </Button>
      {user && id && (
        <Group gap={4} mt="md">
          <Button variant="default" onClick={action(() => call(api.POST("/api/v1/users/{user_id}/unlock", id)), t("users.unlocked"))}>
            {t("users.unlock")}
          </Button>
          <Button variant="default" onClick={action(() => call(api.POST("/api/v1/users/{user_id}/revoke-sessions", id)), t("users.revoked"))}>
            {t("users.revoke")}
          </Button>
          {user.mfa_enabled && (
            <Button variant="default" color="red" onClick={action(() => call(api.POST("/api/v1/users/{user_id}/mfa/reset", id)), t("users.mfaReset"))}>
              {t("users.resetMfa")}
            </Button>
          )}
        </Group>
      )}
    </Stack>
  );
}
