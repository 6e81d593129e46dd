// The results table: virtualized (only the rows on screen exist in the DOM), so 100,000 rows
// scroll as smoothly as 100. Cells are text nodes; a syslog line is never parsed as HTML.
// Measured in tests/e2e/test_perf.py (frame lengths while paging 100,000 rows and under live
// tail at 1,000 lines/s).
import { Box, Text } from "@mantine/core";
import { useVirtualizer } from "@tanstack/react-virtual";
import { memo, useCallback, useEffect, useRef } from "react";
import { useTranslation } from "react-i18next";

import type { EventOut } from "../../api/types";
import { severityColor } from "../../theme";
import type { Column } from "./columns";

const ROW_HEIGHT = 22;
const rowHeight = () => ROW_HEIGHT;
/** The next page is asked for this many rows before the end (at most half the rows loaded, so
 * a first page alone asks for no more), so scrolling rarely waits for it. */
const PREFETCH_ROWS = 300;

interface Props {
  rows: EventOut[];
  columns: Column[];
  selected: string | null;
  onSelect: (e: EventOut) => void;
  /** Called when the last rows come into view (load the next page). */
  onEnd?: () => void;
  height: number | string;
  /** Rows arrive on top (live tail): unless the view is at the top, scroll by the rows added so
   * the lines being read stay where they are (at the top, the newest lines show). */
  keepPosition?: boolean;
}

export const ResultsTable = memo(function ResultsTable({ rows, columns, selected, onSelect, onEnd, height, keepPosition }: Props) {
  const { t } = useTranslation();
  const scroller = useRef<HTMLDivElement>(null);
  // Scrolled away from the top when this render began: the virtualizer then keeps the row in
  // view where it is when rows are added on top ("end": the anchor of a list growing at its
  // start), in the same render, so nothing is drawn twice; at the top the newest rows show.
  const away = useRef(false);
  // A new getItemKey makes the virtualizer lay out every row again (O(rows), 100,000 Map
  // look-ups): only a new rows array may do that, never a scroll.
  const getItemKey = useCallback((i: number) => rows[i]?.id || i, [rows]);
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: rowHeight,
    // Rows drawn beyond the visible ones: a fast scroll mounts them all each frame.
    overscan: 8,
    getItemKey,
    // A first guess before the scroller is measured (also lets jsdom tests render rows).
    initialRect: { width: 1200, height: 600 },
    anchorTo: keepPosition && away.current ? "end" : "start",
  });
  away.current = (virtualizer.scrollOffset ?? 0) > 0;
  const items = virtualizer.getVirtualItems();
  // React keys are slots (row index modulo the most rows ever drawn at once), not event ids: a
  // row leaving the view hands its elements to the one coming in, so a fast scroll or a tail
  // update rewrites a few text nodes instead of removing and creating every row (measured: DOM
  // removal, creation and their style work were most of a frame). Unique within any window.
  const slots = useRef(0);
  slots.current = Math.max(slots.current, items.length);
  const last = items.length ? items[items.length - 1].index : -1;
  useEffect(() => {
    if (onEnd && rows.length > 0 && last >= rows.length - Math.min(PREFETCH_ROWS, rows.length >> 1)) onEnd();
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
                  key={item.index % slots.current}
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
});

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
      // contain: a row's new text is laid out inside the row alone (its size is fixed).
      style={{ position: "absolute", top: 0, left: 0, right: 0, height: ROW_HEIGHT, contain: "strict", transform: `translateY(${top}px)` }}
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
