// Syslog content is always text, never HTML: no source file uses an HTML sink, and a hostile
// line rendered by the results table and the event panel stays inert text.
import { MantineProvider } from "@mantine/core";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, waitFor } from "@testing-library/react";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

import type { EventOut } from "../src/api/types";
import "../src/i18n";
import { COLUMNS } from "../src/pages/logs/columns";
import { EventPanel } from "../src/pages/logs/EventPanel";
import { ResultsTable } from "../src/pages/logs/ResultsTable";

const SRC = join(__dirname, "..", "src");
// Every way of turning a string into markup or code in a page.
const SINKS = [
  "dangerouslySetInnerHTML",
  "innerHTML",
  "outerHTML",
  "insertAdjacentHTML",
  "document.write",
  "createContextualFragment",
  "DOMParser",
  "eval(",
  "new Function",
];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

const HOSTILE =
  '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold</b> &amp; "quoted"';

function event(message: string): EventOut {
  return {
    id: "",
    device: "gw1<script>",
    timezone: "Europe/Istanbul",
    timestamp: "2026-11-28T10:00:05.123456+03:00",
    received: "2026-11-28T10:00:05.200000+03:00",
    message,
    file: "gw1/2026/11/28.log",
    offset: 0,
    fields: { message, "host.name": "<svg onload=alert(1)>", "log.syslog.severity.code": 3 },
  } as EventOut;
}

function wrap(node: React.ReactNode) {
  return render(
    <MantineProvider>
      <QueryClientProvider client={new QueryClient()}>{node}</QueryClientProvider>
    </MantineProvider>,
  );
}

describe("syslog content is text", () => {
  it("no source file uses an HTML or code sink", () => {
    const offenders: string[] = [];
    const all = files(SRC).filter((f) => /\.(tsx?|jsx?)$/.test(f));
    expect(all.length).toBeGreaterThan(20);
    for (const f of all) {
      const text = readFileSync(f, "utf8");
      for (const sink of SINKS) if (text.includes(sink)) offenders.push(`${f}: ${sink}`);
    }
    expect(offenders).toEqual([]);
  });

  it("the results table shows a hostile line as text", async () => {
    const { container, getAllByTestId } = wrap(
      <ResultsTable rows={[event(HOSTILE)]} columns={COLUMNS.filter((c) => ["time", "device", "host", "message"].includes(c.id))} selected={null} onSelect={() => {}} height={400} />,
    );
    await waitFor(() => expect(getAllByTestId("result-row").length).toBe(1));
    expect(container.querySelectorAll("img, script, b, svg[onload]").length).toBe(0);
    expect(container.textContent).toContain(HOSTILE);
    expect(container.textContent).toContain("<svg onload=alert(1)>");
    expect(container.textContent).toContain("28.11.2026 10:00:05.123 +03:00");
    expect((window as { __pwned?: number }).__pwned).toBeUndefined();
  });

  it("the event panel shows a hostile line and its fields as text", () => {
    const { container, getByTestId } = wrap(<EventPanel event={event(HOSTILE)} onClose={() => {}} onFilter={() => {}} />);
    expect(getByTestId("event-message").textContent).toBe(HOSTILE);
    expect(container.querySelectorAll("img, script, b").length).toBe(0);
    expect(container.textContent).toContain("<svg onload=alert(1)>");
  });
});
