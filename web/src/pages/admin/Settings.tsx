// LDAP, TSA and retention settings, read-only: logmaster.toml stays the authority (changed on the
// server as root, applied by a restart), so this screen shows what the running server loaded
// (GET /settings: no secret, only whether one is set) and tests it against the real services:
// "Test LDAP connection" and "Test TSA". Per-device retention and legal holds come from /retention.
import { Alert, Badge, Button, Code, Group, Paper, SimpleGrid, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { IconCheck, IconInfoCircle, IconPlugConnected, IconStopwatch, IconX } from "@tabler/icons-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import type { ReactNode } from "react";
import { useState } from "react";
import { useTranslation } from "react-i18next";

import { api, call } from "../../api/client";
import type { components } from "../../api/schema.gen";
import { ErrorNote } from "../../components/ErrorNote";
import { formatDay, formatInZone } from "../../lib/time";

type Effective = components["schemas"]["SettingsOut"];
type LdapResult = components["schemas"]["LdapTestOut"];
type TsaResult = components["schemas"]["TsaTestOut"];

function Ok({ ok }: { ok: boolean }) {
  const { t } = useTranslation();
  return (
    <Badge color={ok ? "green" : "red"} variant="light" leftSection={ok ? <IconCheck size={12} /> : <IconX size={12} />} tt="none">
      {ok ? t("settings.ok") : t("settings.failed")}
    </Badge>
  );
}

/** Rows of name -> value; empty values show a dash. */
function Fields({ rows }: { rows: [string, ReactNode][] }) {
  return (
    <Table withRowBorders={false} verticalSpacing={2}>
      <Table.Tbody>
        {rows.map(([k, v]) => (
          <Table.Tr key={k}>
            <Table.Td w="40%" ff="monospace" fz="xs" c="dimmed" style={{ verticalAlign: "top" }}>
              {k}
            </Table.Td>
            <Table.Td fz="sm" style={{ overflowWrap: "anywhere" }}>
              {v === null || v === undefined || v === "" ? "—" : v}
            </Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

function YesNo({ value }: { value: boolean }) {
  const { t } = useTranslation();
  return <>{value ? t("settings.yes") : t("settings.no")}</>;
}

export default function SettingsPage() {
  const { t } = useTranslation();
  const effective = useQuery({ queryKey: ["settings"], queryFn: () => call(api.GET("/api/v1/settings")) });
  const s = effective.data;
  return (
    <Stack gap="xs">
      <Title order={4}>{t("nav.settings")}</Title>
      <Alert icon={<IconInfoCircle size={16} />} variant="light" data-testid="settings-readonly">
        <Text size="sm">{t("settings.readonly")}</Text>
        {s && (
          // Only once loaded: before, it said "no file" while the answer was on its way.
          <Text size="sm" mt={4}>
            {t("settings.file")}: <Code data-testid="settings-file">{s.config_file ?? t("settings.noFile")}</Code> · {t("settings.howto")} <Code>logmaster config</Code>
          </Text>
        )}
      </Alert>
      {effective.error && <ErrorNote error={effective.error} />}
      {s && (
        <SimpleGrid cols={{ base: 1, lg: 3 }}>
          <LdapSection s={s} />
          <TsaSection s={s} />
          <RetentionSection s={s} />
        </SimpleGrid>
      )}
    </Stack>
  );
}

function LdapSection({ s }: { s: Effective }) {
  const { t } = useTranslation();
  const l = s.ldap;
  const [username, setUsername] = useState("");
  const test = useMutation<LdapResult>({
    mutationFn: () => call(api.POST("/api/v1/settings/ldap/test", { body: { username } })),
  });
  return (
    <Paper withBorder p="xs" data-testid="settings-ldap">
      <Text fw={600}>{t("settings.ldap")}</Text>
      <Text size="xs" c="dimmed" mb={4}>
        {t("settings.ldapText")} <Code>[ldap]</Code>
      </Text>
      {!l.enabled ? (
        <Text size="sm" data-testid="ldap-off">
          {t("settings.ldapOff")}
        </Text>
      ) : (
        <Fields
          rows={[
            ["url", l.url],
            ["mode", t(`settings.mode.${l.mode}`)],
            ["start_tls", <YesNo value={l.start_tls} />],
            ["tls_verify", <YesNo value={l.tls_verify} />],
            ["tls_ca_file", l.tls_ca_file],
            ["bind_dn_template", l.bind_dn_template],
            ["search_bind_dn", l.search_bind_dn],
            ["search_bind_password_file", <Badge variant="light" color={l.search_bind_password_set ? "teal" : "gray"} tt="none">{l.search_bind_password_set ? t("settings.secretSet") : t("settings.secretUnset")}</Badge>],
            ["user_base", l.user_base],
            ["user_filter", l.user_filter],
            ["group_base", l.group_base],
            ["group_filter", l.group_filter],
            [
              "group_roles",
              Object.keys(l.group_roles).length ? (
                <Stack gap={0}>
                  {Object.entries(l.group_roles).map(([g, r]) => (
                    <Text key={g} size="xs">
                      {g} → <b>{r}</b>
                    </Text>
                  ))}
                </Stack>
              ) : null,
            ],
            ["timeout_s", String(l.timeout_s)],
          ]}
        />
      )}
      {l.enabled && (
        <Group gap="xs" align="flex-end" mt="xs">
          <TextInput size="xs" label={t("settings.lookupUser")} placeholder={t("settings.optional")} value={username} onChange={(e) => setUsername(e.currentTarget.value)} data-testid="ldap-test-user" w={180} />
          <Button size="xs" leftSection={<IconPlugConnected size={14} />} loading={test.isPending} onClick={() => test.mutate()} data-testid="ldap-test">
            {t("settings.testLdap")}
          </Button>
        </Group>
      )}
      {test.error && <ErrorNote error={test.error} />}
      {test.data && (
        <Paper withBorder p="xs" mt="xs" data-testid="ldap-result" data-ok={String(test.data.ok)}>
          <Group justify="space-between" mb={4}>
            <Text size="sm" fw={600}>
              {t("settings.result")}
            </Text>
            <Ok ok={test.data.ok} />
          </Group>
          <Stack gap={2}>
            {test.data.steps.map((step) => (
              <Group key={step.name} gap={6} wrap="nowrap" align="flex-start" data-testid={`ldap-step-${step.name}`}>
                {step.ok ? <IconCheck size={14} color="var(--mantine-color-green-7)" /> : <IconX size={14} color="var(--mantine-color-red-7)" />}
                <Text size="xs">
                  <b>{t(`settings.step.${step.name}`, { defaultValue: step.name })}</b> ({step.ms} ms): {step.message}
                </Text>
              </Group>
            ))}
          </Stack>
          {test.data.user && (
            <Stack gap={2} mt={6} data-testid="ldap-user">
              <Text size="xs">
                {test.data.user.display_name} · <Code>{test.data.user.dn}</Code>
              </Text>
              <Text size="xs" c="dimmed">
                {t("settings.groups")}:
              </Text>
              {test.data.user.groups.map((g) => (
                <Text key={g} size="xs" ff="monospace">
                  {g}
                </Text>
              ))}
              <Group gap={4}>
                <Text size="xs" c="dimmed">
                  {t("settings.roles")}:
                </Text>
                {test.data.user.roles.length ? (
                  test.data.user.roles.map((r) => (
                    <Badge key={r} size="sm" data-testid="ldap-role" tt="none">
                      {r}
                    </Badge>
                  ))
                ) : (
                  <Text size="xs" c="red">
                    {t("settings.noRole")}
                  </Text>
                )}
              </Group>
            </Stack>
          )}
        </Paper>
      )}
    </Paper>
  );
}

function TsaSection({ s }: { s: Effective }) {
  const { t } = useTranslation();
  const test = useMutation<TsaResult>({ mutationFn: () => call(api.POST("/api/v1/settings/tsa/test", { body: {} })) });
  const tsa = s.tsa;
  return (
    <Paper withBorder p="xs" data-testid="settings-tsa">
      <Text fw={600}>{t("settings.tsa")}</Text>
      <Text size="xs" c="dimmed" mb={4}>
        {t("settings.tsaText")} <Code>[[tsa.servers]]</Code>
      </Text>
      {tsa.builtin_in_use && (
        <Alert color="yellow" variant="light" p={6} mb={4} data-testid="tsa-builtin">
          <Text size="xs">{t("settings.builtinInUse")}</Text>
        </Alert>
      )}
      {tsa.servers.length > 0 && (
        <Table.ScrollContainer minWidth={360}>
          <Table fz="xs" data-testid="tsa-servers">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>{t("settings.name")}</Table.Th>
                <Table.Th>url</Table.Th>
                <Table.Th>{t("settings.accredited")}</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {tsa.servers.map((srv) => (
                <Table.Tr key={srv.name}>
                  <Table.Td>
                    {srv.name} <Text span size="xs" c="dimmed">({srv.kind})</Text>
                    {srv.credentials && (
                      <Badge ml={4} size="xs" variant="light" color={srv.credentials === "missing" ? "red" : "teal"} tt="none">
                        {t(`settings.credentials.${srv.credentials}`)}
                      </Badge>
                    )}
                  </Table.Td>
                  <Table.Td style={{ overflowWrap: "anywhere" }}>{srv.url}</Table.Td>
                  <Table.Td>
                    <YesNo value={srv.accredited} />
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
      <Fields
        rows={[
          [
            "tsa.builtin",
            <>
              <YesNo value={tsa.builtin} />{" "}
              <Text span size="xs" c="dimmed">
                ({t("settings.builtinWhen")})
              </Text>
            </>,
          ],
          ["seal.stamp_mode", t(`settings.stampMode.${tsa.stamp_mode}`, { defaultValue: tsa.stamp_mode })],
        ]}
      />
      <Text size="xs" c="dimmed" mt={4}>
        {t("settings.tsaCost")}
      </Text>
      <Button size="xs" mt="xs" leftSection={<IconStopwatch size={14} />} loading={test.isPending} onClick={() => test.mutate()} data-testid="tsa-test" disabled={!tsa.servers.length && !tsa.builtin}>
        {t("settings.testTsa")}
      </Button>
      {test.error && <ErrorNote error={test.error} />}
      {test.data && (
        <Stack gap={4} mt="xs" data-testid="tsa-result" data-ok={String(test.data.ok)}>
          {test.data.results.map((r) => (
            <Paper key={r.name} withBorder p={6} data-testid={`tsa-result-${r.name}`}>
              <Group justify="space-between">
                <Text size="sm" fw={600}>
                  {r.name}
                </Text>
                <Group gap={4}>
                  <Text size="xs" c="dimmed" data-testid="tsa-latency">
                    {r.latency_ms} ms
                  </Text>
                  <Ok ok={r.ok} />
                </Group>
              </Group>
              <Fields
                rows={[
                  [t("settings.message"), r.ok ? formatInZone(r.gen_time ?? "") : `${r.reason ?? ""}: ${r.message}`],
                  [t("settings.subject"), r.subject ? <span data-testid="tsa-subject">{r.subject}</span> : null],
                  [t("settings.issuer"), r.issuer],
                  [t("settings.expires"), r.certificate_expires ? formatInZone(r.certificate_expires) : null],
                  [t("settings.policy"), r.policy],
                  ...(r.kind === "kamusm" ? ([[t("settings.balance"), r.balance ?? r.balance_error]] as [string, ReactNode][]) : []),
                ]}
              />
            </Paper>
          ))}
        </Stack>
      )}
    </Paper>
  );
}

function RetentionSection({ s }: { s: Effective }) {
  const { t } = useTranslation();
  const policies = useQuery({ queryKey: ["retention"], queryFn: () => call(api.GET("/api/v1/retention")) });
  const holds = useQuery({ queryKey: ["holds"], queryFn: () => call(api.GET("/api/v1/retention/holds")) });
  const r = s.retention;
  const own = (policies.data ?? []).filter((p) => p.source !== "default");
  return (
    <Paper withBorder p="xs" data-testid="settings-retention">
      <Text fw={600}>{t("settings.retention")}</Text>
      <Text size="xs" c="dimmed" mb={4}>
        {t("settings.retentionText")} <Code>[retention] / [seal]</Code>
      </Text>
      <Fields
        rows={[
          ["retention.default_days", <span data-testid="retention-days">{r.default_days}</span>],
          ["retention.auto_purge", <YesNo value={r.auto_purge} />],
          ["seal.delay_s", String(r.seal_delay_s)],
          ["seal.compression", r.compression],
        ]}
      />
      <Text size="sm" fw={600} mt="xs">
        {t("settings.perDevice")}
      </Text>
      {policies.error && <ErrorNote error={policies.error} />}
      {own.length === 0 ? (
        <Text size="xs" c="dimmed">
          {t("settings.allDefault", { days: r.default_days })}
        </Text>
      ) : (
        <Table fz="xs" data-testid="retention-devices">
          <Table.Tbody>
            {own.map((p) => (
              <Table.Tr key={p.device}>
                <Table.Td>{p.device}</Table.Td>
                <Table.Td>
                  {p.days} {t("settings.days")}
                  {p.allow_short_retention && (
                    <Badge ml={4} size="xs" color="orange" tt="none">
                      {t("settings.short")}
                    </Badge>
                  )}
                </Table.Td>
                <Table.Td c="dimmed">{p.reason}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      <Text size="sm" fw={600} mt="xs">
        {t("settings.holds")}
      </Text>
      {holds.error && <ErrorNote error={holds.error} />}
      {(holds.data ?? []).length === 0 ? (
        <Text size="xs" c="dimmed">
          {t("settings.noHolds")}
        </Text>
      ) : (
        <Table fz="xs" data-testid="holds-table">
          <Table.Tbody>
            {(holds.data ?? []).map((h) => (
              <Table.Tr key={h.id}>
                <Table.Td>{h.device ?? t("settings.everyDevice")}</Table.Td>
                <Table.Td style={{ whiteSpace: "nowrap" }}>
                  {formatDay(h.first_day)} – {formatDay(h.last_day)}
                </Table.Td>
                <Table.Td>
                  {h.reason}
                  {h.case_ref ? ` (${h.case_ref})` : ""}
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      <Text size="xs" c="dimmed" mt={4}>
        {t("settings.retentionHowto")} <Code>logmaster retention set</Code> <Code>logmaster hold add</Code>
      </Text>
    </Paper>
  );
}
