// Turkish is the default; Turkish and English have the same keys, none empty.
import { describe, expect, it } from "vitest";

import i18n, { setLanguage } from "../src/i18n";
import { en } from "../src/i18n/en";
import { tr } from "../src/i18n/tr";

function leaves(obj: object, prefix = ""): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === "string") out[prefix + k] = v;
    else Object.assign(out, leaves(v as object, `${prefix}${k}.`));
  }
  return out;
}

describe("languages", () => {
  it("defaults to Turkish", () => {
    expect(i18n.language).toBe("tr");
    expect(i18n.t("nav.logs")).toBe("Kayıtlar");
  });

  it("has the same non-empty keys in both languages", () => {
    const a = leaves(tr);
    const b = leaves(en);
    expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
    for (const [k, v] of Object.entries({ ...a, ...b })) expect(v.trim(), k).not.toBe("");
  });

  it("keeps every interpolation of English in Turkish", () => {
    const a = leaves(tr);
    for (const [k, v] of Object.entries(leaves(en))) {
      const vars = (s: string) => (s.match(/{{\w+}}/g) ?? []).sort();
      expect(vars(a[k]), k).toEqual(vars(v));
    }
  });

  it("switches to English and back, and remembers it", () => {
    setLanguage("en");
    expect(i18n.t("nav.logs")).toBe("Logs");
    expect(localStorage.getItem("logmaster.lang")).toBe("en");
    expect(document.documentElement.lang).toBe("en");
    setLanguage("tr");
    expect(i18n.t("nav.logs")).toBe("Kayıtlar");
  });
});
