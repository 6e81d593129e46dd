// Field suggestions in the query bar complete the word under the cursor.
import { describe, expect, it } from "vitest";

import { applySuggestion, suggestFields, tokenAt } from "../src/lib/query";

describe("query bar suggestions", () => {
  it("finds the word under the cursor", () => {
    expect(tokenAt("src:1.2.3.4 AND dst", 19)).toEqual({ start: 16, end: 19, text: "dst" });
    expect(tokenAt('(us "x y")', 3).text).toBe("us");
  });

  it("suggests fields for a partial name, none after the colon", () => {
    expect(suggestFields("sr", 2)).toContain("src:");
    expect(suggestFields("destination.p", 13)).toEqual(["destination.port:"]);
    expect(suggestFields("dst.p", 5)).toEqual(["dst.port:"]);
    expect(suggestFields("src:10", 6)).toEqual([]);
    expect(suggestFields("", 0)).toEqual([]);
    expect(suggestFields("zzz", 3)).toEqual([]);
  });

  it("replaces only the word under the cursor", () => {
    expect(applySuggestion("denied AND us", 13, "user:")).toEqual(["denied AND user:", 16]);
    expect(applySuggestion("(sr) OR x", 3, "src:")).toEqual(["(src:) OR x", 5]);
  });
});
