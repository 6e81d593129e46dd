// LDAP, TSA and retention settings. The API has no settings endpoints yet: these are read from
// logmaster.toml at start (`logmaster config` prints every field). This screen says where each
// setting lives until the API can show and change them.
import { Alert, Code, Paper, SimpleGrid, Stack, Table, Text, Title } from "@mantine/core";
import { IconInfoCircle } from "@tabler/icons-react";
import { useTranslation } from "react-i18next";

const SECTIONS: { key: string; section: string; fields: string[] }[] = [
  { key: "ldap", section: "[ldap]", fields: ["url", "start_tls", "tls_ca_file", "bind_dn_template", "search_bind_dn", "group_role_map"] },
  { key: "tsa", section: "[tsa] / [[tsa.servers]]", fields: ["servers.name", "servers.kind", "servers.url", "servers.hash_algorithm", "servers.accredited", "builtin"] },
  { key: "retention", section: "[seal] / [archive]", fields: ["retention_days", "seal_time", "fsync"] },
];

export default function SettingsPage() {
  const { t } = useTranslation();
  return (
    <Stack gap="xs">
      <Title order={4}>{t("nav.settings")}</Title>
      <Alert icon={<IconInfoCircle size={16} />} variant="light" data-testid="settings-pending">
        {t("settings.pending")}
      </Alert>
      <SimpleGrid cols={{ base: 1, md: 3 }}>
        {SECTIONS.map((s) => (
          <Paper key={s.key} withBorder p="xs">
            <Text fw={600}>{t(`settings.${s.key}`)}</Text>
            <Text size="xs" c="dimmed" mb={4}>
              {t(`settings.${s.key}Text`)}
            </Text>
            <Code>{s.section}</Code>
            <Table mt={4}>
              <Table.Tbody>
                {s.fields.map((f) => (
                  <Table.Tr key={f}>
                    <Table.Td ff="monospace">{f}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Paper>
        ))}
      </SimpleGrid>
      <Text size="xs" c="dimmed">
        {t("settings.howto")} <Code>logmaster config</Code>
      </Text>
    </Stack>
  );
}
