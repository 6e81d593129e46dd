// Times are shown dd.mm.yyyy HH:mm:ss in the device's zone, with the zone named.
import { describe, expect, it } from "vitest";

import { formatDay, formatInZone, formatStamp, offsetAt, offsetOf, zoneLabel } from "../src/lib/time";

describe("time formatting", () => {
  it("keeps the wall clock of an RFC 3339 string in the device's offset", () => {
    expect(formatStamp("2026-11-28T10:00:05.123456+03:00")).toBe("28.11.2026 10:00:05.123");
    expect(formatStamp("2026-11-28T10:00:05+03:00")).toBe("28.11.2026 10:00:05");
    expect(formatStamp("2026-01-02T03:04:05.5Z", true)).toBe("02.01.2026 03:04:05.500");
    expect(formatStamp("2026-11-28T10:00:05.123+03:00", false)).toBe("28.11.2026 10:00:05");
    expect(formatStamp("not a time")).toBe("not a time");
    expect(formatStamp(null)).toBe("");
  });

  it("names the offset and the zone", () => {
    expect(offsetOf("2026-11-28T10:00:05+03:00")).toBe("+03:00");
    expect(offsetOf("2026-11-28T10:00:05Z")).toBe("+00:00");
    expect(zoneLabel("Europe/Istanbul", "2026-11-28T10:00:05+03:00")).toBe("Europe/Istanbul (UTC+03:00)");
    expect(offsetAt("Europe/Istanbul", new Date("2026-07-01T00:00:00Z"))).toBe("+03:00");
    expect(offsetAt("Europe/Berlin", new Date("2026-01-15T00:00:00Z"))).toBe("+01:00");
    expect(offsetAt("UTC", new Date())).toBe("+00:00");
  });

  it("converts a moment into a zone", () => {
    expect(formatInZone("2026-11-28T07:00:05Z", "Europe/Istanbul")).toBe("28.11.2026 10:00:05");
    expect(formatInZone(new Date("2026-03-29T00:30:00Z"), "Europe/Berlin", false)).toBe("29.03.2026 01:30");
    expect(formatInZone(new Date("2026-03-29T01:30:00Z"), "Europe/Berlin", false)).toBe("29.03.2026 03:30");
    expect(formatDay("2026-11-28")).toBe("28.11.2026");
  });
});
