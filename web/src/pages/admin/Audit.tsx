// Audit trail: who did what, when, from where, with what result; filters and paging. Users
// without view_audit see their own actions only (the API decides; the screen says so).
import { Badge, Button, Code, Group, Paper, Select, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { DateTimePicker } from "@mantine/dates";
import { IconShieldCheck } from "@tabler/icons-react";
import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { useTranslation } from "react-i18next";

import { Can, useAuth } from "../../api/auth";
import { api, call } from "../../api/client";
import { ErrorNote } from "../../components/ErrorNote";
import { formatInZone, localZone } from "../../lib/time";

interface Filters {
  actor?: string;
  action?: string;
  result?: string;
  target?: string;
  since?: string;
  until?: string;
}

const RESULT_COLOR: Record<string, string> = { ok: "green", failed: "red", denied: "orange", locked: "red" };

export default function AuditPage() {
  const { t } = useTranslation();
  const { can } = useAuth();
  const [draft, setDraft] = useState<Filters>({});
  const [since, setSince] = useState<Date | null>(null);
  const [until, setUntil] = useState<Date | null>(null);
  const [filters, setFilters] = useState<Filters>({});
  const [verify, setVerify] = useState(false);
  const zone = localZone();
  const page = useInfiniteQuery({
    queryKey: ["audit", filters],
    initialPageParam: null as number | null,
    queryFn: ({ pageParam }) =>
      call(api.GET("/api/v1/audit", { params: { query: { ...filters, limit: 200, ...(pageParam ? { before: pageParam } : {}) } } })),
    getNextPageParam: (last) => last.next_before ?? null,
  });
  const verdict = useQuery({
    queryKey: ["audit-verify"],
    enabled: verify,
    queryFn: () => call(api.GET("/api/v1/audit/verify")),
  });
  const entries = page.data?.pages.flatMap((p) => p.entries) ?? [];
  const set = (k: keyof Filters) => (e: { currentTarget: { value: string } }) => setDraft({ ...draft, [k]: e.currentTarget.value || undefined });
  return (
    <Stack gap="xs">
      <Group justify="space-between">
        <Title order={4}>{t("nav.audit")}</Title>
        <Can action="view_audit">
          <Button variant="default" leftSection={<IconShieldCheck size={14} />} onClick={() => setVerify(true)} loading={verdict.isFetching} data-testid="audit-verify">
            {t("audit.verify")}
          </Button>
        </Can>
      </Group>
      {!can("view_audit") && (
        <Text size="xs" c="dimmed">
          {t("audit.ownOnly")}
        </Text>
      )}
      {verdict.data && (
        <Paper withBorder p="xs" bg={verdict.data.ok ? "green.0" : "red.0"}>
          <Text size="sm">{verdict.data.ok ? t("audit.verifyOk", { count: verdict.data.entries }) : t("audit.verifyBad", { seq: verdict.data.first_bad_seq ?? "?" })}</Text>
          {verdict.data.problems.map((p) => (
            <Text key={p} size="xs">
              {p}
            </Text>
          ))}
        </Paper>
      )}
      <Paper withBorder p="xs">
        <Group gap="xs" align="flex-end" wrap="wrap">
          {can("view_audit") && <TextInput label={t("audit.actor")} value={draft.actor ?? ""} onChange={set("actor")} w={140} data-testid="audit-actor" />}
          <TextInput label={t("audit.action")} placeholder="auth." value={draft.action ?? ""} onChange={set("action")} w={140} data-testid="audit-action" />
          <Select
            label={t("audit.result")}
            clearable
            data={["ok", "failed", "denied", "locked"]}
            value={draft.result ?? null}
            onChange={(v) => setDraft({ ...draft, result: v ?? undefined })}
            w={110}
          />
          <TextInput label={t("audit.target")} value={draft.target ?? ""} onChange={set("target")} w={160} />
          <DateTimePicker label={`${t("range.from")} (${zone})`} valueFormat="DD.MM.YYYY HH:mm" value={since} onChange={(v) => setSince(v ? new Date(v) : null)} clearable w={170} />
          <DateTimePicker label={t("range.to")} valueFormat="DD.MM.YYYY HH:mm" value={until} onChange={(v) => setUntil(v ? new Date(v) : null)} clearable w={170} />
          <Button
            onClick={() => setFilters({ ...draft, since: since?.toISOString(), until: until?.toISOString() })}
            data-testid="audit-filter"
          >
            {t("audit.filter")}
          </Button>
        </Group>
      </Paper>
      {page.error && <ErrorNote error={page.error} />}
      <Table.ScrollContainer minWidth={800}>
        <Table striped data-testid="audit-table">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>#</Table.Th>
              <Table.Th>
                {t("audit.when")} ({zone})
              </Table.Th>
              <Table.Th>{t("audit.actor")}</Table.Th>
              <Table.Th>{t("audit.from")}</Table.Th>
              <Table.Th>{t("audit.action")}</Table.Th>
              <Table.Th>{t("audit.target")}</Table.Th>
              <Table.Th>{t("audit.result")}</Table.Th>
              <Table.Th>{t("audit.details")}</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {entries.map((e) => (
              <Table.Tr key={e.seq}>
                <Table.Td>{e.seq}</Table.Td>
                <Table.Td style={{ whiteSpace: "nowrap" }}>{formatInZone(e.at, zone)}</Table.Td>
                <Table.Td>{e.actor ?? "—"}</Table.Td>
                <Table.Td>{e.source_ip ?? "—"}</Table.Td>
                <Table.Td>{e.action}</Table.Td>
                <Table.Td style={{ maxWidth: 260, overflow: "hidden", textOverflow: "ellipsis" }}>{e.target}</Table.Td>
                <Table.Td>
                  <Badge color={RESULT_COLOR[e.result] ?? "gray"} variant="light">
                    {e.result}
                  </Badge>
                </Table.Td>
                <Table.Td>
                  <Code fz={10} className="lm-wrap">
                    {Object.keys(e.details).length ? JSON.stringify(e.details) : ""}
                  </Code>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
      {page.hasNextPage && (
        <Button variant="default" onClick={() => void page.fetchNextPage()} loading={page.isFetchingNextPage}>
          {t("common.more")}
        </Button>
      )}
    </Stack>
  );
}
