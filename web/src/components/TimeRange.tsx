// Time range picker: quick relative ranges, or two absolute times (dd.mm.yyyy HH:mm).
import { Button, Group, Popover, SimpleGrid, Stack, Text } from "@mantine/core";
import { DateTimePicker } from "@mantine/dates";
import { IconClock } from "@tabler/icons-react";
import { useState } from "react";
import { useTranslation } from "react-i18next";

import { formatInZone, localZone } from "../lib/time";

export interface Range {
  /** "-15m", "-24h", "-7d" (relative to now) or an RFC 3339 time. */
  from: string;
  /** "" (now) or an RFC 3339 time. */
  to: string;
}

export const QUICK = ["-15m", "-1h", "-4h", "-24h", "-7d", "-30d"] as const;

const UNIT_MS: Record<string, number> = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 };

/** The absolute [start, end] of a range at ``now``. */
export function resolveRange(range: Range, now: number = Date.now()): [Date, Date] {
  const end = range.to ? new Date(range.to) : new Date(now);
  const rel = /^-(\d+)([smhd])$/.exec(range.from);
  const start = rel ? new Date(end.getTime() - Number(rel[1]) * UNIT_MS[rel[2]]) : new Date(range.from);
  return [start, end];
}

export function rangeLabel(range: Range, t: (k: string, o?: Record<string, unknown>) => string): string {
  const rel = /^-(\d+)([smhd])$/.exec(range.from);
  if (rel && !range.to) return t(`range.last_${rel[2]}`, { count: Number(rel[1]) });
  const [s, e] = resolveRange(range);
  return `${formatInZone(s, localZone(), false)} → ${formatInZone(e, localZone(), false)}`;
}

export function TimeRangePicker({ value, onChange }: { value: Range; onChange: (r: Range) => void }) {
  const { t } = useTranslation();
  const [opened, setOpened] = useState(false);
  const [start, end] = resolveRange(value);
  const [from, setFrom] = useState<Date | null>(start);
  const [to, setTo] = useState<Date | null>(end);
  const pick = (r: Range) => {
    onChange(r);
    setOpened(false);
  };
  return (
    <Popover opened={opened} onChange={setOpened} position="bottom-end" withinPortal shadow="md">
      <Popover.Target>
        <Button
          variant="default"
          leftSection={<IconClock size={14} />}
          onClick={() => setOpened((o) => !o)}
          data-testid="time-range"
        >
          {rangeLabel(value, t)}
        </Button>
      </Popover.Target>
      <Popover.Dropdown>
        <Stack gap="xs">
          <Text size="xs" fw={600}>
            {t("range.quick")}
          </Text>
          <SimpleGrid cols={3} spacing={4}>
            {QUICK.map((q) => (
              <Button key={q} variant={value.from === q && !value.to ? "filled" : "light"} onClick={() => pick({ from: q, to: "" })}>
                {rangeLabel({ from: q, to: "" }, t)}
              </Button>
            ))}
          </SimpleGrid>
          <Text size="xs" fw={600} pt="xs">
            {t("range.absolute")} ({localZone()})
          </Text>
          <DateTimePicker
            size="xs"
            label={t("range.from")}
            valueFormat="DD.MM.YYYY HH:mm"
            value={from}
            onChange={(v) => setFrom(v ? new Date(v) : null)}
            withSeconds={false}
            popoverProps={{ withinPortal: false }}
          />
          <DateTimePicker
            size="xs"
            label={t("range.to")}
            valueFormat="DD.MM.YYYY HH:mm"
            value={to}
            onChange={(v) => setTo(v ? new Date(v) : null)}
            popoverProps={{ withinPortal: false }}
          />
          <Group justify="flex-end">
            <Button
              disabled={!from || !to || from >= to}
              onClick={() => from && to && pick({ from: from.toISOString(), to: to.toISOString() })}
            >
              {t("range.apply")}
            </Button>
          </Group>
        </Stack>
      </Popover.Dropdown>
    </Popover>
  );
}
