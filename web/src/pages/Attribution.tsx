// Attribution: public IP [+ port] + time (+ window) → NAT → internal address → DHCP lease → MAC →
// hotspot login → user, every hop with the archived lines it rests on (shown as text).
import { Alert, Badge, Button, Card, Code, Group, NumberInput, Paper, Stack, Text, TextInput, Timeline, Title } from "@mantine/core";
import { DateTimePicker } from "@mantine/dates";
import { IconAlertTriangle, IconFileExport, IconRoute } from "@tabler/icons-react";
import { notifications } from "@mantine/notifications";
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import type { FormEvent } from "react";
import { useTranslation } from "react-i18next";

import { Can } from "../api/auth";
import { api, call, download } from "../api/client";
import type { components } from "../api/schema.gen";
import { ErrorNote, errorText } from "../components/ErrorNote";
import { formatStamp, localZone, offsetOf } from "../lib/time";

type Hop = components["schemas"]["HopOut"];
type Chain = components["schemas"]["ChainOut"];

interface Ask {
  ip: string;
  port?: number;
  at: string;
  window: number;
}

export default function AttributionPage() {
  const { t } = useTranslation();
  const [ip, setIp] = useState("");
  const [port, setPort] = useState<number | string>("");
  const [at, setAt] = useState<Date | null>(new Date());
  const [window, setWindow] = useState<number | string>(60);
  const [ask, setAsk] = useState<Ask | null>(null);
  const zone = localZone();

  const answer = useQuery({
    queryKey: ["attribution", ask],
    enabled: !!ask,
    queryFn: () =>
      call(
        api.GET("/api/v1/attribution", {
          params: {
            query: {
              ip: ask!.ip,
              at: ask!.at,
              window: ask!.window,
              tz: zone,
              ...(ask!.port !== undefined ? { port: ask!.port } : {}),
            },
          },
        }),
      ),
  });

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!ip.trim() || !at) return;
    setAsk({
      ip: ip.trim(),
      port: port === "" ? undefined : Number(port),
      at: at.toISOString(),
      window: Number(window) || 0,
    });
  };

  const data = answer.data;
  const [exporting, setExporting] = useState(false);
  const exportEvidence = async () => {
    if (!ask) return;
    setExporting(true);
    try {
      const body = { ip: ask.ip, port: ask.port ?? null, at: ask.at, window: ask.window, tz: zone };
      await download(
        "/api/v1/exports/attribution",
        { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) },
        "attribution.zip",
      );
    } catch (e) {
      notifications.show({ color: "red", message: errorText(e) });
    } finally {
      setExporting(false);
    }
  };
  return (
    <Stack gap="xs">
      <Title order={4}>{t("nav.attribution")}</Title>
      <Paper withBorder p="xs">
        <form onSubmit={submit}>
          <Group align="flex-end" gap="xs" wrap="wrap">
            <TextInput label={t("attr.ip")} placeholder="203.0.113.7" value={ip} onChange={(e) => setIp(e.currentTarget.value)} required data-testid="attr-ip" w={180} />
            <NumberInput label={t("attr.port")} value={port} onChange={setPort} min={0} max={65535} hideControls data-testid="attr-port" w={100} />
            <DateTimePicker
              label={`${t("attr.at")} (${zone})`}
              valueFormat="DD.MM.YYYY HH:mm:ss"
              withSeconds
              value={at}
              onChange={(v) => setAt(v ? new Date(v) : null)}
              data-testid="attr-at"
              w={210}
            />
            <NumberInput label={t("attr.window")} value={window} onChange={setWindow} min={0} max={3600} data-testid="attr-window" w={120} />
            <Button type="submit" leftSection={<IconRoute size={14} />} loading={answer.isFetching} data-testid="attr-submit">
              {t("attr.find")}
            </Button>
          </Group>
        </form>
      </Paper>
      {answer.error && <ErrorNote error={answer.error} />}
      {data && (
        <Stack gap="xs" data-testid="attr-answer">
          <Group gap="xs">
            <Text size="sm">
              {t("attr.asked", { ip: data.ip ?? data.mac ?? "", port: data.port ?? "—", at: `${formatStamp(data.at)} ${offsetOf(data.at)}`, window: data.window })}
            </Text>
            {data.ambiguous && <Badge color="orange">{t("attr.ambiguous")}</Badge>}
            <Can action="export">
              <Button
                size="compact-xs"
                variant="default"
                leftSection={<IconFileExport size={12} />}
                loading={exporting}
                onClick={() => void exportEvidence()}
                data-testid="attr-export"
              >
                {t("attr.export")}
              </Button>
            </Can>
          </Group>
          {data.missing.map((m) => (
            <Alert key={m} color="yellow" variant="light" icon={<IconAlertTriangle size={16} />} p="xs">
              {m}
            </Alert>
          ))}
          {data.chains.length === 0 && <Text c="dimmed">{t("attr.none")}</Text>}
          {data.chains.map((c, i) => (
            <ChainCard key={i} chain={c} index={i} />
          ))}
        </Stack>
      )}
    </Stack>
  );
}

function ChainCard({ chain, index }: { chain: Chain; index: number }) {
  const { t } = useTranslation();
  const hops: Hop[] = [...(chain.nat ? [chain.nat] : []), ...chain.leases, ...chain.logins];
  return (
    <Card withBorder padding="sm" data-testid="attr-chain">
      <Group justify="space-between" mb="xs">
        <Text fw={600}>
          {t("attr.chain", { n: index + 1 })}: {chain.internal_ip ?? "?"}
          {chain.internal_port != null ? `:${chain.internal_port}` : ""}
        </Text>
        <Group gap={4}>
          {chain.macs.map((m) => (
            <Badge key={m} variant="outline" tt="none">
              {m}
            </Badge>
          ))}
          {chain.users.map((u) => (
            <Badge key={u} color="grape" tt="none" data-testid="attr-user">
              {u}
            </Badge>
          ))}
        </Group>
      </Group>
      <Timeline bulletSize={18} lineWidth={2}>
        {hops.map((h, i) => (
          <Timeline.Item key={i} title={<HopTitle hop={h} />}>
            <HopBody hop={h} />
          </Timeline.Item>
        ))}
      </Timeline>
    </Card>
  );
}

function HopTitle({ hop }: { hop: Hop }) {
  const { t } = useTranslation();
  return (
    <Group gap={6}>
      <Badge variant="light">{t(`attr.kind.${hop.kind}`)}</Badge>
      {hop.device && <Text size="sm">{hop.device}</Text>}
      {hop.timezone && (
        <Text size="xs" c="dimmed">
          {hop.timezone}
        </Text>
      )}
    </Group>
  );
}

function HopBody({ hop }: { hop: Hop }) {
  const { t } = useTranslation();
  if (!hop.permitted) return <Text size="xs" c="dimmed">{t("attr.notPermitted")}</Text>;
  const facts: [string, string | number | null | undefined][] = [
    [t("attr.outer"), hop.outer_ip ? `${hop.outer_ip}${hop.outer_port != null ? `:${hop.outer_port}` : ""}` : null],
    [t("attr.inner"), hop.inner_ip ? `${hop.inner_ip}${hop.inner_port != null ? `:${hop.inner_port}` : ""}` : null],
    [t("attr.mac"), hop.mac],
    [t("attr.user"), hop.user],
    [t("attr.start"), hop.start ? formatStamp(hop.start) : null],
    [t("attr.end"), hop.end ? formatStamp(hop.end) : hop.expires ? `${formatStamp(hop.expires)} (${t("attr.expires")})` : null],
  ];
  return (
    <Stack gap={4}>
      <Group gap="md">
        {facts
          .filter(([, v]) => v !== null && v !== undefined && v !== "")
          .map(([k, v]) => (
            <Text key={k} size="xs">
              <Text span c="dimmed" size="xs">
                {k}:{" "}
              </Text>
              {String(v)}
            </Text>
          ))}
      </Group>
      {hop.note && (
        <Text size="xs" c="orange">
          {hop.note}
        </Text>
      )}
      {(hop.evidence ?? []).map((c, i) => (
        <div key={i}>
          <Text size="10px" c="dimmed">
            {c.device} · {c.file} @ {c.offset}
          </Text>
          <Code block className="lm-wrap" fz={11} data-testid="attr-evidence">
            {c.line}
          </Code>
        </div>
      ))}
    </Stack>
  );
}
