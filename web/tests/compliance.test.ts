// The heatmap's columns: every day of the range, whatever days a device has files for.
import { describe, expect, it } from "vitest";

import { complianceState, daysBetween } from "../src/pages/Compliance";

describe("compliance heatmap", () => {
  it("lists every day of the range, across a month end", () => {
    expect(daysBetween("2026-11-29", "2026-12-02")).toEqual(["2026-11-29", "2026-11-30", "2026-12-01", "2026-12-02"]);
    expect(daysBetween("2026-12-02", "2026-12-02")).toEqual(["2026-12-02"]);
    expect(daysBetween("2026-12-03", "2026-12-02")).toEqual([]);
  });

  it("colours a day without files as missing", () => {
    expect(complianceState("no_data")).toBe("missing");
    expect(complianceState("sealed")).toBe("sealed");
  });
});
