// The side panel of one event: its parsed fields, the raw archived line, the surrounding lines.
// Everything from the log is shown as text (React text nodes inside <pre>/<td>).
import { ActionIcon, Badge, Button, Code, CopyButton, Group, Loader, ScrollArea, Stack, Table, Tabs, Text, Tooltip } from "@mantine/core";
import { IconCheck, IconCopy, IconFilter, IconX } from "@tabler/icons-react";
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { useTranslation } from "react-i18next";

import { api, call } from "../../api/client";
import type { ArchiveLine, EventOut } from "../../api/types";
import { ErrorNote } from "../../components/ErrorNote";
import { formatStamp, zoneLabel } from "../../lib/time";

interface Props {
  event: EventOut;
  onClose: () => void;
  onFilter: (clause: string) => void;
}

export function EventPanel({ event, onClose, onFilter }: Props) {
  const { t } = useTranslation();
  const [tab, setTab] = useState<string | null>("fields");
  // Live-tail lines are not indexed yet: no archived line or surrounding lines to ask for.
  const hasId = !!event.id && !event.id.startsWith("tail-");
  const detail = useQuery({
    queryKey: ["event", event.id],
    enabled: hasId,
    queryFn: () => call(api.GET("/api/v1/events/{event_id}", { params: { path: { event_id: event.id } } })),
  });
  const around = useQuery({
    queryKey: ["event-surrounding", event.id],
    enabled: hasId && tab === "surrounding",
    queryFn: () =>
      call(
        api.GET("/api/v1/events/{event_id}/surrounding", {
          params: { path: { event_id: event.id }, query: { before: 15, after: 15 } },
        }),
      ),
  });
  const fields = Object.entries(event.fields as Record<string, unknown>)
    .filter(([, v]) => v !== null && v !== "" && v !== undefined)
    .sort(([a], [b]) => a.localeCompare(b));

  return (
    <Stack gap="xs" h="100%" data-testid="event-panel">
      <Group justify="space-between" wrap="nowrap">
        <div>
          <Text size="sm" fw={600}>
            {formatStamp(event.timestamp)}
          </Text>
          <Text size="xs" c="dimmed">
            {event.device} · {zoneLabel(event.timezone, event.timestamp)}
          </Text>
        </div>
        <ActionIcon variant="subtle" onClick={onClose} aria-label={t("common.close")}>
          <IconX size={16} />
        </ActionIcon>
      </Group>
      <Code block className="lm-wrap" data-testid="event-message">
        {event.message}
      </Code>
      <Tabs value={tab} onChange={setTab} keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="fields">{t("event.fields")}</Tabs.Tab>
          <Tabs.Tab value="raw" disabled={!hasId}>{t("event.raw")}</Tabs.Tab>
          <Tabs.Tab value="surrounding" disabled={!hasId} data-testid="tab-surrounding">{t("event.surrounding")}</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="fields" pt="xs">
          <ScrollArea.Autosize mah="60vh">
            <Table striped>
              <Table.Tbody>
                {fields.map(([k, v]) => (
                  <Table.Tr key={k}>
                    <Table.Td ff="monospace" c="dimmed" style={{ whiteSpace: "nowrap" }}>
                      {k}
                    </Table.Td>
                    <Table.Td ff="monospace" className="lm-wrap">
                      {typeof v === "object" ? JSON.stringify(v) : String(v)}
                    </Table.Td>
                    <Table.Td w={28}>
                      {typeof v !== "object" && k !== "message" && (
                        <Tooltip label={t("event.filterOn")}>
                          <ActionIcon size="xs" variant="subtle" onClick={() => onFilter(`${k}:${quote(String(v))}`)}>
                            <IconFilter size={12} />
                          </ActionIcon>
                        </Tooltip>
                      )}
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </ScrollArea.Autosize>
        </Tabs.Panel>
        <Tabs.Panel value="raw" pt="xs">
          {detail.isLoading && <Loader size="xs" />}
          {detail.error && <ErrorNote error={detail.error} />}
          {detail.data && <RawLine line={detail.data.archived ?? null} file={event.file ?? ""} />}
        </Tabs.Panel>
        <Tabs.Panel value="surrounding" pt="xs">
          {around.isLoading && <Loader size="xs" />}
          {around.error && <ErrorNote error={around.error} />}
          {around.data && (
            <ScrollArea.Autosize mah="60vh">
              <Text size="xs" c="dimmed" mb={4}>
                {around.data.file}
              </Text>
              <pre className="lm-line" style={{ margin: 0, fontSize: 11 }} data-testid="surrounding-lines">
                {around.data.before.map((l) => l.line + "\n").join("")}
                <mark>{(around.data.line?.line ?? "") + "\n"}</mark>
                {around.data.after.map((l) => l.line + "\n").join("")}
              </pre>
            </ScrollArea.Autosize>
          )}
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}

function RawLine({ line, file }: { line: ArchiveLine | null; file: string }) {
  const { t } = useTranslation();
  if (!line) return <Text size="sm" c="orange">{t("event.rawMissing")}</Text>;
  return (
    <Stack gap={4}>
      <Group gap={4}>
        <Badge variant="light">{file}</Badge>
        <Badge variant="outline">
          {t("event.offset")} {line.offset}
        </Badge>
        <CopyButton value={line.line}>
          {({ copied, copy }) => (
            <Button variant="subtle" size="compact-xs" onClick={copy} leftSection={copied ? <IconCheck size={12} /> : <IconCopy size={12} />}>
              {copied ? t("common.copied") : t("common.copy")}
            </Button>
          )}
        </CopyButton>
      </Group>
      <Code block className="lm-wrap" data-testid="raw-line">
        {line.line}
      </Code>
    </Stack>
  );
}

function quote(v: string): string {
  return /^[\w.:/@-]+$/.test(v) ? v : `"${v.replace(/"/g, '\\"')}"`;
}
