// What the query bar knows about the search language (index/query.py, index/fields.py):
// the field names operators type, and which one the word under the cursor may become.

/** Short names (aliases) first, then the ECS fields of the index columns. */
export const FIELD_NAMES: readonly string[] = [
  "src", "dst", "ip", "mac", "user", "device", "host", "app", "sev", "severity", "dataset", "action",
  // src. dst. nat. stand for source. destination. source.nat.
  "src.port", "src.mac", "dst.port", "nat.ip", "nat.port",
  "source.ip", "source.port", "source.mac", "source.nat.ip", "source.nat.port",
  "destination.ip", "destination.port", "destination.nat.ip", "destination.nat.port",
  "client.ip", "client.mac", "user.name", "host.name", "observer.name", "event.action",
  "event.dataset", "event.outcome", "network.transport", "rule.name", "log.syslog.appname",
  "log.syslog.severity.code", "log.syslog.facility.code", "message",
];

export const OPERATORS: readonly string[] = ["AND", "OR", "NOT"];

/** Examples shown in the syntax help; each is a valid query. */
export const EXAMPLES: readonly { query: string; key: string }[] = [
  { query: "denied", key: "word" },
  { query: '"login failed"', key: "phrase" },
  { query: "src:10.0.0.0/8", key: "cidr" },
  { query: "dst:8.8.8.8 AND dst.port:53", key: "field" },
  { query: "user:ali*", key: "wildcard" },
  { query: "sev:<=3", key: "range" },
  { query: "device:gw1 NOT action:dhcp-assign", key: "not" },
  { query: "(src:192.168.1.5 OR mac:aa:bb:cc:dd:ee:ff) AND login", key: "group" },
];

export interface Token {
  start: number;
  end: number;
  text: string;
}

/** The word the cursor is in (spaces, parentheses and quotes end a word). */
export function tokenAt(query: string, cursor: number): Token {
  const isBreak = (c: string) => c === " " || c === "(" || c === ")" || c === '"';
  let start = cursor;
  while (start > 0 && !isBreak(query[start - 1])) start--;
  let end = cursor;
  while (end < query.length && !isBreak(query[end])) end++;
  return { start, end, text: query.slice(start, end) };
}

/** Field names (with ":") that complete the word under the cursor; none once it has a ":". */
export function suggestFields(query: string, cursor: number, limit = 8): string[] {
  const { text } = tokenAt(query, cursor);
  if (!text || text.includes(":")) return [];
  const word = text.replace(/^-/, "").toLowerCase();
  if (!word) return [];
  return FIELD_NAMES.filter((f) => f.startsWith(word) && f !== word)
    .slice(0, limit)
    .map((f) => `${f}:`);
}

/** The query with the word under the cursor replaced by ``completion``; the new cursor. */
export function applySuggestion(query: string, cursor: number, completion: string): [string, number] {
  const { start, end, text } = tokenAt(query, cursor);
  const prefix = text.startsWith("-") ? "-" : "";
  const next = query.slice(0, start) + prefix + completion + query.slice(end);
  return [next, start + prefix.length + completion.length];
}
