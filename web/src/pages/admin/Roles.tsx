// Roles: each a set of actions; built-in roles keep their names, MFA can be required per role.
import { Badge, Checkbox, Switch, Table, Text, Title, Stack } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";

import { api, call } from "../../api/client";
import type { Role } from "../../api/types";
import { ErrorNote, errorText } from "../../components/ErrorNote";

export const ACTIONS = ["manage_users", "manage_devices", "view", "tail", "export", "attribute", "view_compliance", "view_audit"] as const;

export default function RolesPage() {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const roles = useQuery({ queryKey: ["roles"], queryFn: () => call(api.GET("/api/v1/roles")) });
  const update = useMutation({
    mutationFn: ({ role, actions, mfa }: { role: Role; actions?: string[]; mfa?: boolean }) =>
      call(api.PATCH("/api/v1/roles/{name}", { params: { path: { name: role.name } }, body: { ...(actions ? { actions } : {}), ...(mfa !== undefined ? { mfa_required: mfa } : {}) } })),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["roles"] }),
    onError: (e) => notifications.show({ color: "red", message: errorText(e) }),
  });
  return (
    <Stack gap="xs">
      <Title order={4}>{t("nav.roles")}</Title>
      {roles.error && <ErrorNote error={roles.error} />}
      <Table.ScrollContainer minWidth={800}>
        <Table striped data-testid="role-table">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>{t("roles.name")}</Table.Th>
              {ACTIONS.map((a) => (
                <Table.Th key={a} ta="center">
                  {t(`action.${a}`)}
                </Table.Th>
              ))}
              <Table.Th>{t("roles.mfa")}</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {(roles.data ?? []).map((r) => (
              <Table.Tr key={r.name}>
                <Table.Td>
                  <Text size="sm" fw={600}>
                    {r.name} {r.builtin && <Badge size="xs" variant="outline">{t("roles.builtin")}</Badge>}
                  </Text>
                  <Text size="xs" c="dimmed">
                    {r.description}
                  </Text>
                </Table.Td>
                {ACTIONS.map((a) => (
                  <Table.Td key={a} ta="center">
                    <Checkbox
                      size="xs"
                      style={{ display: "inline-block" }}
                      checked={r.actions.includes(a)}
                      disabled={r.name === "admin"}
                      onChange={(e) =>
                        update.mutate({ role: r, actions: e.currentTarget.checked ? [...r.actions, a] : r.actions.filter((x) => x !== a) })
                      }
                    />
                  </Table.Td>
                ))}
                <Table.Td>
                  <Switch size="xs" checked={r.mfa_required} onChange={(e) => update.mutate({ role: r, mfa: e.currentTarget.checked })} />
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
    </Stack>
  );
}
