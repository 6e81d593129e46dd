// Live tail over the WebSocket /api/v1/tail (protocol: src/logmaster/api/routes/tail.py).
//
// Lines are collected in a buffer and handed to React at most every FLUSH_MS, so 1,000 lines/s
// cost four renders a second, not a thousand. Pausing keeps reading the socket (a client that
// stops reading is cut off by the server as too slow) and holds the lines back until resume.
// The server ends a session when the access token expires; the hook refreshes and reconnects.
import { useCallback, useEffect, useRef, useState } from "react";

import { getAccessToken, refreshAccess } from "../../api/client";
import type { EventOut } from "../../api/types";

const FLUSH_MS = 250;
const RATE_WINDOW_MS = 5000;

export type TailState = "off" | "connecting" | "live" | "paused" | "error";

export interface TailError {
  kind: string;
  detail: string;
  detail_tr: string;
}

interface Options {
  query: string;
  enabled: boolean;
  onLines: (lines: EventOut[]) => void;
}

export function useTail({ query, enabled, onLines }: Options) {
  const [state, setState] = useState<TailState>("off");
  const [rate, setRate] = useState(0);
  const [held, setHeld] = useState(0);
  const [error, setError] = useState<TailError | null>(null);
  const [gaps, setGaps] = useState(0);
  // The server's feed (Redis) unreachable: lines are still archived and indexed, only the
  // live view waits. Shown until the server says "live" again.
  const [degraded, setDegraded] = useState<TailError | null>(null);
  const paused = useRef(false);
  const buffer = useRef<EventOut[]>([]);
  const seq = useRef(0);
  const arrivals = useRef<[number, number][]>([]);
  const sink = useRef(onLines);
  sink.current = onLines;

  useEffect(() => {
    if (!enabled) {
      setState("off");
      return;
    }
    let ws: WebSocket | null = null;
    let stopped = false;
    let retry: number | undefined;
    setError(null);
    setDegraded(null);

    const connect = async () => {
      if (stopped) return;
      setState("connecting");
      if (!getAccessToken()) await refreshAccess();
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      ws = new WebSocket(`${scheme}://${location.host}/api/v1/tail`, ["logmaster.tail.v1"]);
      ws.onopen = () => ws?.send(JSON.stringify({ query, token: getAccessToken() ?? "" }));
      ws.onmessage = (msg) => {
        const data = JSON.parse(String(msg.data)) as {
          type: string;
          lines?: EventOut[];
          kind?: string;
          state?: string;
          detail?: string;
          detail_tr?: string;
        };
        if (data.type === "started") {
          setState(paused.current ? "paused" : "live");
        } else if (data.type === "lines" && data.lines) {
          for (const line of data.lines) {
            // Tail events have no index id yet: a local one keeps table rows stable (memoized).
            if (!line.id) line.id = `tail-${++seq.current}`;
            buffer.current.push(line); // oldest first; reversed at flush
          }
          arrivals.current.push([Date.now(), data.lines.length]);
        } else if (data.type === "gap") {
          setGaps((g) => g + 1);
        } else if (data.type === "status") {
          setDegraded(
            data.state === "degraded"
              ? { kind: "degraded", detail: data.detail ?? "", detail_tr: data.detail_tr ?? "" }
              : null,
          );
        } else if (data.type === "error") {
          setError({ kind: data.kind ?? "", detail: data.detail ?? "", detail_tr: data.detail_tr ?? "" });
        }
      };
      ws.onclose = (ev) => {
        ws = null;
        if (stopped) return;
        // 4401: the token expired or the session ended: refresh once, then reconnect.
        // 4408 (too slow), 1001, 1006: reconnect after a pause. Others are final.
        if (ev.code === 4401) {
          void refreshAccess().then((ok) => {
            if (ok) retry = window.setTimeout(connect, 100);
            else setState("error");
          });
        } else if (ev.code === 4408 || ev.code === 1001 || ev.code === 1006) {
          setState("connecting");
          retry = window.setTimeout(connect, 2000);
        } else {
          setState("error");
        }
      };
    };
    void connect();

    const flush = window.setInterval(() => {
      const now = Date.now();
      arrivals.current = arrivals.current.filter(([t]) => now - t < RATE_WINDOW_MS);
      const count = arrivals.current.reduce((n, [, c]) => n + c, 0);
      setRate(count / (RATE_WINDOW_MS / 1000));
      if (paused.current) {
        setHeld(buffer.current.length);
        return;
      }
      if (buffer.current.length) {
        const lines = buffer.current.reverse(); // newest first, like search results
        buffer.current = [];
        sink.current(lines);
      }
    }, FLUSH_MS);

    return () => {
      stopped = true;
      window.clearInterval(flush);
      window.clearTimeout(retry);
      ws?.close(1000, "tail stopped");
      buffer.current = [];
      arrivals.current = [];
      setRate(0);
      setHeld(0);
    };
  }, [enabled, query]);

  const pause = useCallback(() => {
    paused.current = true;
    setState((s) => (s === "live" ? "paused" : s));
  }, []);
  const resume = useCallback(() => {
    paused.current = false;
    setHeld(0);
    setState((s) => (s === "paused" ? "live" : s));
  }, []);

  return { state, rate, held, error, gaps, degraded, pause, resume };
}
