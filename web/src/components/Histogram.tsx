// Bar histogram of matching events over time (uPlot: canvas, ~50 kB, fast redraws); dragging
// across it selects a range to zoom into.
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

import { formatInZone, localZone } from "../lib/time";

interface Props {
  /** Bucket start times, milliseconds since the epoch. */
  times: number[];
  counts: number[];
  bucketMs: number;
  height?: number;
  onZoom?: (startMs: number, endMs: number) => void;
  color?: string;
}

export function Histogram({ times, counts, bucketMs, height = 110, onZoom, color = "#228be6" }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const zoom = useRef(onZoom);
  zoom.current = onZoom;

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const zone = localZone();
    const bars = uPlot.paths.bars!({ size: [0.9, 60], align: 1 });
    const opts: uPlot.Options = {
      width: Math.max(el.clientWidth, 200),
      height,
      legend: { show: false },
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), zone),
      cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
      select: { show: true, left: 0, top: 0, width: 0, height: 0 },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max) * 1.1] } },
      axes: [
        {
          size: 28,
          font: "10px sans-serif",
          values: (_u, splits) => splits.map((s) => formatInZone(s * 1000, zone, false).slice(bucketMs >= 86400e3 ? 0 : 11)),
        },
        { size: 40, font: "10px sans-serif" },
      ],
      series: [{}, { fill: color, stroke: color, paths: bars, points: { show: false } }],
      hooks: {
        setSelect: [
          (u) => {
            if (u.select.width < 3 || !zoom.current) return;
            const a = u.posToVal(u.select.left, "x") * 1000;
            const b = u.posToVal(u.select.left + u.select.width, "x") * 1000;
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            zoom.current(Math.floor(a), Math.ceil(b));
          },
        ],
      },
    };
    const u = new uPlot(opts, [times.map((t) => t / 1000), counts], el);
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(el.clientWidth, 200), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
    // Rebuilt when the bucket width changes (axis format); data changes only call setData.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [height, bucketMs, color]);

  useEffect(() => {
    plot.current?.setData([times.map((t) => t / 1000), counts]);
  }, [times, counts]);

  return <div ref={box} className="lm-hist" data-testid="histogram" style={{ width: "100%", cursor: onZoom ? "crosshair" : undefined }} />;
}
