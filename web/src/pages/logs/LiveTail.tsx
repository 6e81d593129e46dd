// Live tail on the Logs screen: the status bar (state, rate, lines, pause/resume) and the table
// of tailed lines. Its own component so that the four updates a second at 1,000 lines/s
// re-render only the bar and the table, not the query bar, pickers and menus of the page.
import { Badge, Button, Group, Paper, Stack, Text } from "@mantine/core";
import { IconPlayerPause, IconPlayerPlay } from "@tabler/icons-react";
import { useCallback, useState } from "react";
import { useTranslation } from "react-i18next";

import { ApiError } from "../../api/client";
import type { EventOut } from "../../api/types";
import { ErrorNote } from "../../components/ErrorNote";
import { formatRate } from "../../lib/time";
import type { Column } from "./columns";
import { ResultsTable } from "./ResultsTable";
import { useTail } from "./useTail";

/** Live tail keeps at most this many lines on screen (older ones fall off the end). */
export const TAIL_MAX_ROWS = 100_000;

const STATE_COLOR = { live: "green", paused: "yellow", error: "red", connecting: "gray", off: "gray" } as const;

interface Props {
  /** The query of the page; a new query is a new tail (the page keys this component by it). */
  query: string;
  columns: Column[];
  selected: string | null;
  onSelect: (e: EventOut) => void;
}

export function LiveTail({ query, columns, selected, onSelect }: Props) {
  const { t, i18n } = useTranslation();
  const [rows, setRows] = useState<EventOut[]>([]);
  const onLines = useCallback((lines: EventOut[]) => {
    setRows((old) => {
      const next = lines.concat(old);
      if (next.length > TAIL_MAX_ROWS) next.length = TAIL_MAX_ROWS; // a fresh array: cut in place
      return next;
    });
  }, []);
  const tail = useTail({ query, enabled: true, onLines });

  return (
    <Stack gap="xs">
      <Paper withBorder p={6}>
        <Group gap="xs">
          <Badge color={STATE_COLOR[tail.state]} data-testid="tail-state">
            {t(`tail.${tail.state}`)}
          </Badge>
          <Text size="xs" data-testid="tail-rate">
            {formatRate(tail.rate, i18n.language)}
          </Text>
          <Text size="xs" c="dimmed" data-testid="tail-shown">
            {t("tail.shown", { count: rows.length })}
          </Text>
          {tail.held > 0 && (
            <Text size="xs" c="orange">
              {t("tail.held", { count: tail.held })}
            </Text>
          )}
          {tail.gaps > 0 && (
            <Text size="xs" c="red">
              {t("tail.gaps", { count: tail.gaps })}
            </Text>
          )}
          {tail.state === "paused" ? (
            <Button size="compact-xs" leftSection={<IconPlayerPlay size={12} />} onClick={tail.resume} data-testid="tail-resume">
              {t("tail.resume")}
            </Button>
          ) : (
            <Button size="compact-xs" variant="default" leftSection={<IconPlayerPause size={12} />} onClick={tail.pause} data-testid="tail-pause">
              {t("tail.pause")}
            </Button>
          )}
        </Group>
        {tail.degraded && (
          <Text size="xs" c="orange" data-testid="tail-degraded">
            {i18n.language.startsWith("tr") ? tail.degraded.detail_tr : tail.degraded.detail}
          </Text>
        )}
        {tail.error && <ErrorNote error={new ApiError(0, { detail: tail.error.detail, detail_tr: tail.error.detail_tr, type: tail.error.kind })} />}
      </Paper>
      <ResultsTable rows={rows} columns={columns} selected={selected} onSelect={onSelect} height="calc(100vh - 190px)" keepPosition />
    </Stack>
  );
}
