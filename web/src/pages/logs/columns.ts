// The columns the results table can show; every cell is plain text taken from the event.
import type { EventOut } from "../../api/types";
import { formatStamp, offsetOf } from "../../lib/time";

export interface Column {
  id: string;
  /** i18n key of the header. */
  label: string;
  width: number;
  grow?: boolean;
  value: (e: EventOut) => string;
}

const field = (name: string) => (e: EventOut) => {
  const v = (e.fields as Record<string, unknown>)[name];
  return v === undefined || v === null ? "" : String(v);
};

const SEVERITY = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];

export function severityName(code: unknown): string {
  const n = typeof code === "number" ? code : Number.parseInt(String(code ?? ""), 10);
  return Number.isInteger(n) && n >= 0 && n < 8 ? SEVERITY[n] : "";
}

export const COLUMNS: readonly Column[] = [
  {
    id: "time",
    label: "col.time",
    width: 235,
    value: (e) => `${formatStamp(e.timestamp)} ${offsetOf(e.timestamp)}`,
  },
  { id: "device", label: "col.device", width: 120, value: (e) => e.device },
  {
    id: "severity",
    label: "col.severity",
    width: 70,
    value: (e) => severityName((e.fields as Record<string, unknown>)["log.syslog.severity.code"]),
  },
  { id: "host", label: "col.host", width: 110, value: field("host.name") },
  { id: "app", label: "col.app", width: 90, value: field("log.syslog.appname") },
  { id: "action", label: "col.action", width: 120, value: field("event.action") },
  { id: "src", label: "col.src", width: 130, value: field("source.ip") },
  { id: "src_port", label: "col.srcPort", width: 70, value: field("source.port") },
  { id: "dst", label: "col.dst", width: 130, value: field("destination.ip") },
  { id: "dst_port", label: "col.dstPort", width: 70, value: field("destination.port") },
  { id: "nat", label: "col.nat", width: 150, value: (e) => joinPort(field("source.nat.ip")(e), field("source.nat.port")(e)) },
  { id: "user", label: "col.user", width: 100, value: field("user.name") },
  { id: "mac", label: "col.mac", width: 130, value: (e) => field("source.mac")(e) || field("client.mac")(e) },
  { id: "message", label: "col.message", width: 300, grow: true, value: (e) => e.message },
];

export const DEFAULT_COLUMNS = ["time", "device", "severity", "message"];

function joinPort(ip: string, port: string): string {
  if (!ip) return "";
  return port ? `${ip}:${port}` : ip;
}

/** On a phone: the time without milliseconds and offset (the zone is in the row's tooltip). */
export const PHONE_COLUMNS: readonly Column[] = [
  { id: "time", label: "col.time", width: 140, value: (e) => formatStamp(e.timestamp, false) },
  { id: "message", label: "col.message", width: 200, grow: true, value: (e) => e.message },
];
