// A month-grid calendar of days coloured by state (archive chain today; seal and timestamp
// states join when the compliance API provides them). Days are the device's local days.
import { Box, Group, SimpleGrid, Stack, Text, Tooltip } from "@mantine/core";
import { useTranslation } from "react-i18next";

import { formatDay } from "../lib/time";

export type DayState = "sealed" | "stamped" | "chained" | "open" | "gap" | "missing" | "future";

export const DAY_COLOR: Record<DayState, string> = {
  sealed: "var(--mantine-color-green-6)",
  stamped: "var(--mantine-color-teal-7)",
  chained: "var(--mantine-color-green-3)",
  open: "var(--mantine-color-blue-3)",
  gap: "var(--mantine-color-red-5)",
  missing: "var(--mantine-color-gray-3)",
  future: "transparent",
};

export interface DayInfo {
  state: DayState;
  detail?: string;
}

/** "YYYY-MM-DD" of the days of ``months`` whole months ending with the month of ``end``. */
function monthsBack(end: Date, months: number): { year: number; month: number }[] {
  const out = [];
  for (let i = months - 1; i >= 0; i--) {
    const d = new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth() - i, 1));
    out.push({ year: d.getUTCFullYear(), month: d.getUTCMonth() });
  }
  return out;
}

const iso = (y: number, m: number, d: number) => `${y}-${String(m + 1).padStart(2, "0")}-${String(d).padStart(2, "0")}`;

export function DayCalendar({ days, today, months = 3 }: { days: Record<string, DayInfo>; today: string; months?: number }) {
  const { t, i18n } = useTranslation();
  const end = new Date(`${today}T00:00:00Z`);
  const weekdays = t("calendar.weekdays").split(",");
  return (
    <Stack gap="xs">
      <Group align="flex-start" gap="lg" data-testid="day-calendar">
        {monthsBack(end, months).map(({ year, month }) => {
          const first = new Date(Date.UTC(year, month, 1));
          const lead = (first.getUTCDay() + 6) % 7; // Monday first
          const count = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
          const title = new Intl.DateTimeFormat(i18n.language === "tr" ? "tr-TR" : "en-GB", { month: "long", year: "numeric", timeZone: "UTC" }).format(first);
          return (
            <Box key={`${year}-${month}`}>
              <Text size="xs" fw={600} mb={2}>
                {title}
              </Text>
              <SimpleGrid cols={7} spacing={2} verticalSpacing={2}>
                {weekdays.map((w) => (
                  <Text key={w} size="10px" c="dimmed" ta="center">
                    {w}
                  </Text>
                ))}
                {Array.from({ length: lead }, (_, i) => (
                  <Box key={`lead-${i}`} />
                ))}
                {Array.from({ length: count }, (_, i) => {
                  const day = iso(year, month, i + 1);
                  const info: DayInfo = day > today ? { state: "future" } : (days[day] ?? { state: "missing" });
                  return (
                    <Tooltip key={day} label={`${formatDay(day)}: ${t(`calendar.${info.state}`)}${info.detail ? ` — ${info.detail}` : ""}`} withinPortal>
                      <Box
                        w={20}
                        h={20}
                        data-day={day}
                        data-state={info.state}
                        style={{
                          background: DAY_COLOR[info.state],
                          borderRadius: 3,
                          fontSize: 9,
                          textAlign: "center",
                          lineHeight: "20px",
                          border: info.state === "future" ? "1px dashed var(--mantine-color-gray-3)" : undefined,
                        }}
                      >
                        {i + 1}
                      </Box>
                    </Tooltip>
                  );
                })}
              </SimpleGrid>
            </Box>
          );
        })}
      </Group>
      <Group gap="sm">
        {(["sealed", "stamped", "chained", "open", "gap", "missing"] as DayState[]).map((s) => (
          <Group key={s} gap={4}>
            <Box w={10} h={10} style={{ background: DAY_COLOR[s], borderRadius: 2 }} />
            <Text size="xs">{t(`calendar.${s}`)}</Text>
          </Group>
        ))}
      </Group>
    </Stack>
  );
}

/** The state of an archive day from its chain state (archive_days route). */
export function chainDayState(chain: string): DayState {
  if (chain === "chained") return "chained";
  if (chain.startsWith("open")) return "open";
  return "gap"; // resynced, short, no chain: something to look at
}
