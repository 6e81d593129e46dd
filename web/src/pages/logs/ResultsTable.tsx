// The results table: virtualized (only the rows on screen exist in the DOM), so 100,000 rows
// scroll as smoothly as 100. Cells are text nodes; a syslog line is never parsed as HTML.
import { Box, Text } from "@mantine/core";
import { useVirtualizer } from "@tanstack/react-virtual";
import { memo, useEffect, useRef } from "react";
import { useTranslation } from "react-i18next";

import type { EventOut } from "../../api/types";
import { severityColor } from "../../theme";
import type { Column } from "./columns";

const ROW_HEIGHT = 22;

interface Props {
  rows: EventOut[];
  columns: Column[];
  selected: string | null;
  onSelect: (e: EventOut) => void;
  /** Called when the last rows come into view (load the next page). */
  onEnd?: () => void;
  height: number | string;
}

export function ResultsTable({ rows, columns, selected, onSelect, onEnd, height }: Props) {
  const { t } = useTranslation();
  const scroller = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 20,
    getItemKey: (i) => rows[i]?.id || i,
    // A first guess before the scroller is measured (also lets jsdom tests render rows).
    initialRect: { width: 1200, height: 600 },
  });
  const items = virtualizer.getVirtualItems();
  const last = items.length ? items[items.length - 1].index : -1;
  useEffect(() => {
    if (onEnd && rows.length > 0 && last >= rows.length - 10) onEnd();
  }, [last, rows.length, onEnd]);

  return (
    <Box style={{ border: "1px solid var(--mantine-color-gray-3)", borderRadius: 4 }}>
      <div className="lm-row lm-line" style={{ fontWeight: 600, background: "var(--mantine-color-gray-1)", cursor: "default", height: ROW_HEIGHT }}>
        <span className="lm-sev" />
        {columns.map((c) => (
          <span key={c.id} className={c.grow ? "lm-cell lm-cell-grow" : "lm-cell"} style={c.grow ? undefined : { width: c.width }}>
            {t(c.label)}
          </span>
        ))}
      </div>
      <div ref={scroller} style={{ height, overflow: "auto", contain: "strict" }} data-testid="results">
        {rows.length === 0 ? (
          <Text c="dimmed" size="sm" p="md">
            {t("logs.noResults")}
          </Text>
        ) : (
          <div style={{ height: virtualizer.getTotalSize(), position: "relative", minWidth: "100%" }}>
            {items.map((item) => {
              const e = rows[item.index];
              return (
                <Row
                  key={item.key}
                  event={e}
                  columns={columns}
                  top={item.start}
                  selected={e.id === selected && selected !== ""}
                  onSelect={onSelect}
                />
              );
            })}
          </div>
        )}
      </div>
    </Box>
  );
}

const Row = memo(function Row({
  event,
  columns,
  top,
  selected,
  onSelect,
}: {
  event: EventOut;
  columns: Column[];
  top: number;
  selected: boolean;
  onSelect: (e: EventOut) => void;
}) {
  const sev = (event.fields as Record<string, unknown>)["log.syslog.severity.code"];
  return (
    <div
      className="lm-row lm-line"
      data-selected={selected}
      data-testid="result-row"
      style={{ position: "absolute", top: 0, left: 0, right: 0, height: ROW_HEIGHT, transform: `translateY(${top}px)` }}
      onClick={() => onSelect(event)}
    >
      <span className="lm-sev" style={{ background: severityColor(sev) ?? "transparent" }} />
      {columns.map((c) => (
        <span
          key={c.id}
          className={c.grow ? "lm-cell lm-cell-grow" : "lm-cell"}
          style={{ width: c.grow ? undefined : c.width, color: c.id === "severity" || c.id === "message" ? severityColor(sev) : undefined }}
          title={c.id === "time" ? event.timezone : undefined}
        >
          {c.value(event)}
        </span>
      ))}
    </div>
  );
});
