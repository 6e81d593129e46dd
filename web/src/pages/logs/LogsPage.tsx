// Logs: query bar, time range, histogram (drag to zoom), the virtualized results table with a
// side panel per event, and live tail on the same screen. The query and range live in the URL,
// so a search can be bookmarked or sent to a colleague.
import { Badge, Button, Checkbox, Drawer, Group, Menu, Paper, Stack, Switch, Text } from "@mantine/core";
import { useMediaQuery } from "@mantine/hooks";
import { IconColumns, IconSearch } from "@tabler/icons-react";
import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { useCallback, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { useSearchParams } from "react-router-dom";

import { useAuth } from "../../api/auth";
import { api, ApiError, call } from "../../api/client";
import type { EventOut } from "../../api/types";
import { ErrorNote, errorText } from "../../components/ErrorNote";
import { Histogram } from "../../components/Histogram";
import { resolveRange, TimeRangePicker } from "../../components/TimeRange";
import type { Range } from "../../components/TimeRange";
import { formatCount, localZone } from "../../lib/time";
import { COLUMNS, DEFAULT_COLUMNS, PHONE_COLUMNS } from "./columns";
import { EventPanel } from "./EventPanel";
import { LiveTail } from "./LiveTail";
import { QueryBar } from "./QueryBar";
import { ResultsTable } from "./ResultsTable";

/** The first page is small, so the first rows show fast; scrolling on fetches bigger pages
 * (the API's maximum), so 100,000 rows take 100 requests rather than 500. */
const FIRST_PAGE = 200;
const NEXT_PAGE = 1000;
const COLUMNS_KEY = "logmaster.columns";

export function LogsPage() {
  const { t, i18n } = useTranslation();
  const { can } = useAuth();
  const [params, setParams] = useSearchParams();
  const q = params.get("q") ?? "";
  const range: Range = { from: params.get("from") ?? "-15m", to: params.get("to") ?? "" };
  const [draft, setDraft] = useState(q);
  const [runAt, setRunAt] = useState(() => Date.now());
  const [selected, setSelected] = useState<EventOut | null>(null);
  const [tailOn, setTailOn] = useState(false);
  const zone = useMemo(localZone, []);
  const [columnIds, setColumnIds] = useState<string[]>(() => {
    try {
      const saved = JSON.parse(localStorage.getItem(COLUMNS_KEY) ?? "null") as string[] | null;
      if (Array.isArray(saved) && saved.length) return saved;
    } catch {
      /* ignore */
    }
    return DEFAULT_COLUMNS;
  });
  const phone = useMediaQuery("(max-width: 48em)");
  const columns = useMemo(
    () => (phone ? [...PHONE_COLUMNS] : COLUMNS.filter((c) => columnIds.includes(c.id))),
    [columnIds, phone],
  );

  // The range is fixed when the search runs, so events, histogram and counts agree.
  const [start, end] = useMemo(() => resolveRange(range, runAt), [range.from, range.to, runAt]); // eslint-disable-line react-hooks/exhaustive-deps
  const query = {
    q,
    from: start.toISOString(),
    to: end.toISOString(),
    tz: zone,
  };

  const events = useInfiniteQuery({
    queryKey: ["search", query],
    initialPageParam: null as string | null,
    enabled: !tailOn,
    queryFn: ({ pageParam }) =>
      call(
        api.GET("/api/v1/search/events", {
          params: { query: { ...query, ...(pageParam ? { cursor: pageParam, limit: NEXT_PAGE } : { limit: FIRST_PAGE }) } },
        }),
      ),
    getNextPageParam: (last) => last.cursor ?? null,
  });
  const histogram = useQuery({
    queryKey: ["histogram", query],
    enabled: !tailOn,
    queryFn: () => call(api.GET("/api/v1/search/histogram", { params: { query: { ...query, buckets: 80 } } })),
  });
  const counts = useQuery({
    queryKey: ["device-counts", query],
    enabled: !tailOn,
    queryFn: () => call(api.GET("/api/v1/search/devices", { params: { query } })),
  });

  const rows = useMemo(() => events.data?.pages.flatMap((p) => p.events) ?? [], [events.data]);
  const { hasNextPage, isFetchingNextPage, fetchNextPage } = events;
  const onEnd = useCallback(() => void fetchNextPage(), [fetchNextPage]);

  const submit = (text: string) => {
    const next = new URLSearchParams(params);
    if (text) next.set("q", text);
    else next.delete("q");
    setParams(next);
    setRunAt(Date.now());
  };
  const setRange = (r: Range) => {
    const next = new URLSearchParams(params);
    next.set("from", r.from);
    if (r.to) next.set("to", r.to);
    else next.delete("to");
    setParams(next);
    setRunAt(Date.now());
  };
  const toggleColumn = (id: string) => {
    const next = columnIds.includes(id) ? columnIds.filter((c) => c !== id) : COLUMNS.map((c) => c.id).filter((c) => c === id || columnIds.includes(c));
    setColumnIds(next);
    localStorage.setItem(COLUMNS_KEY, JSON.stringify(next));
  };
  const addClause = (clause: string) => {
    const text = q ? `${q} AND ${clause}` : clause;
    setDraft(text);
    submit(text);
  };

  const queryError = !tailOn && events.error instanceof ApiError && events.error.status === 400 ? errorText(events.error) : null;
  const hist = histogram.data;
  const histTimes = useMemo(() => hist?.buckets.map((b) => Date.parse(b.start)) ?? [], [hist]);
  const histCounts = useMemo(() => hist?.buckets.map((b) => b.count) ?? [], [hist]);

  const panel = selected && <EventPanel event={selected} onClose={() => setSelected(null)} onFilter={addClause} />;

  return (
    <Stack gap="xs">
      <Group gap="xs" align="flex-start" wrap="wrap">
        <QueryBar value={draft} onChange={setDraft} onSubmit={submit} error={queryError} />
        <TimeRangePicker value={range} onChange={setRange} />
        <Button leftSection={<IconSearch size={14} />} onClick={() => submit(draft)} data-testid="search">
          {t("logs.search")}
        </Button>
        <Menu closeOnItemClick={false} withinPortal position="bottom-end">
          <Menu.Target>
            <Button variant="default" leftSection={<IconColumns size={14} />} data-testid="columns">
              {t("logs.columns")}
            </Button>
          </Menu.Target>
          <Menu.Dropdown>
            {COLUMNS.map((c) => (
              <Menu.Item key={c.id} onClick={() => toggleColumn(c.id)}>
                <Checkbox size="xs" readOnly checked={columnIds.includes(c.id)} label={t(c.label)} />
              </Menu.Item>
            ))}
          </Menu.Dropdown>
        </Menu>
        {can("tail") && (
          <Switch
            label={t("logs.liveTail")}
            checked={tailOn}
            onChange={(e) => setTailOn(e.currentTarget.checked)}
            data-testid="tail-toggle"
            mt={4}
          />
        )}
      </Group>

      {!tailOn && (
        <Paper withBorder p={4}>
          <Group justify="space-between" px={4}>
            <Text size="xs" c="dimmed" data-testid="hit-total">
              {hist ? t("logs.total", { count: hist.total, formatted: formatCount(hist.total, i18n.language) }) : " "}
            </Text>
            <Group gap={4}>
              {counts.data?.devices.slice(0, 8).map((d) => (
                <Badge key={d.device} variant="light" style={{ cursor: "pointer", textTransform: "none" }} onClick={() => addClause(`device:${d.device}`)}>
                  {d.device}: {formatCount(d.count, i18n.language)}
                </Badge>
              ))}
            </Group>
          </Group>
          <Histogram
            times={histTimes}
            counts={histCounts}
            bucketMs={(hist?.bucket_seconds ?? 60) * 1000}
            onZoom={(a, b) => setRange({ from: new Date(a).toISOString(), to: new Date(b).toISOString() })}
          />
        </Paper>
      )}

      {!tailOn && events.error && !queryError && <ErrorNote error={events.error} />}

      <Group align="flex-start" gap="xs" wrap="nowrap">
        <div
          style={{ flex: 1, minWidth: 0 }}
          data-testid="results-state"
          data-q={q}
          data-fetching={tailOn ? "tail" : String(events.isFetching || histogram.isFetching)}
        >
          {tailOn ? (
            <LiveTail key={`${runAt} ${q}`} query={q} columns={columns} selected={selected?.id ?? null} onSelect={setSelected} />
          ) : (
            <>
              <ResultsTable
                rows={rows}
                columns={columns}
                selected={selected?.id ?? null}
                onSelect={setSelected}
                height="calc(100vh - 330px)"
                onEnd={hasNextPage && !isFetchingNextPage ? onEnd : undefined}
              />
              <Text size="xs" c="dimmed" mt={2} data-testid="loaded">
                {t("logs.loaded", { count: rows.length })}
                {events.isFetching && ` · ${t("common.loading")}`}
              </Text>
            </>
          )}
        </div>
        {!phone && panel && (
          <Paper withBorder p="xs" w={440} style={{ flex: "none", maxHeight: "calc(100vh - 200px)", overflow: "auto" }}>
            {panel}
          </Paper>
        )}
      </Group>
      {phone && (
        <Drawer opened={!!selected} onClose={() => setSelected(null)} position="bottom" size="85%" withCloseButton={false}>
          {panel}
        </Drawer>
      )}
    </Stack>
  );
}
