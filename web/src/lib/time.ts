// Times as the operators read them: dd.mm.yyyy HH:mm:ss, in the device's timezone, zone shown.
//
// The API sends RFC 3339 strings already in the device's offset ("2026-11-28T10:00:05.123456+03:00")
// together with the device's IANA zone, so the wall-clock digits are taken from the string as is:
// no Date round trip (exact, and cheap for 100,000 rows).

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$/;

/** "28.11.2026 10:00:05.123" from an RFC 3339 string (milliseconds only when present). */
export function formatStamp(iso: string | null | undefined, withMillis = true): string {
  if (!iso) return "";
  const m = RFC3339.exec(iso);
  if (!m) return iso;
  const [, y, mo, d, h, mi, s, frac] = m;
  const ms = withMillis && frac ? "." + frac.slice(0, 3).padEnd(3, "0") : "";
  return `${d}.${mo}.${y} ${h}:${mi}:${s}${ms}`;
}

/** The UTC offset part of an RFC 3339 string: "+03:00", "Z" → "+00:00". */
export function offsetOf(iso: string | null | undefined): string {
  const m = iso ? RFC3339.exec(iso) : null;
  if (!m || !m[8]) return "";
  return m[8] === "Z" ? "+00:00" : m[8].length === 5 ? `${m[8].slice(0, 3)}:${m[8].slice(3)}` : m[8];
}

/** "Europe/Istanbul (UTC+03:00)". */
export function zoneLabel(zone: string, iso?: string): string {
  const off = iso ? offsetOf(iso) : offsetAt(zone, new Date());
  return off ? `${zone} (UTC${off})` : zone;
}

/** The offset of ``zone`` at ``when``: "+03:00". */
export function offsetAt(zone: string, when: Date): string {
  try {
    const parts = new Intl.DateTimeFormat("en-US", { timeZone: zone, timeZoneName: "longOffset" })
      .formatToParts(when)
      .find((p) => p.type === "timeZoneName")?.value;
    if (!parts) return "";
    if (parts === "GMT") return "+00:00";
    return parts.replace("GMT", "");
  } catch {
    return "";
  }
}

/** The browser's (device's) own zone: the default for times not tied to a log device. */
export function localZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

/** A Date shown in ``zone`` as "28.11.2026 10:00:05". */
export function formatInZone(value: Date | string | number, zone: string = localZone(), seconds = true): string {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-GB", {
      timeZone: zone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
    })
      .formatToParts(date)
      .map((p) => [p.type, p.value]),
  );
  const time = seconds ? `${parts.hour}:${parts.minute}:${parts.second}` : `${parts.hour}:${parts.minute}`;
  return `${parts.day}.${parts.month}.${parts.year} ${time}`;
}

/** "28.11.2026" from "2026-11-28". */
export function formatDay(day: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  return m ? `${m[3]}.${m[2]}.${m[1]}` : day;
}

/** An RFC 3339 string with offset for a Date (what the API takes as a time bound). */
export function toRfc3339(date: Date): string {
  return date.toISOString();
}

/** Rate in lines per second, short: "1,2 k/s" style per language. */
export function formatRate(perSecond: number, lang: string): string {
  const nf = new Intl.NumberFormat(lang === "tr" ? "tr-TR" : "en-GB", { maximumFractionDigits: 1 });
  return perSecond >= 1000 ? `${nf.format(perSecond / 1000)} k/s` : `${nf.format(perSecond)}/s`;
}

export function formatCount(n: number, lang: string): string {
  return new Intl.NumberFormat(lang === "tr" ? "tr-TR" : "en-GB").format(n);
}
