// The query bar's field suggestions: they show while the field has focus, including when it
// lost and regained focus within the 150 ms the blur waits (a click on Search, then typing at
// once: the late blur used to switch the list off for good).
import { MantineProvider } from "@mantine/core";
import { act, fireEvent, render, screen } from "@testing-library/react";
import { useState } from "react";
import { describe, expect, it, vi } from "vitest";

import "../src/i18n";
import { QueryBar } from "../src/pages/logs/QueryBar";

function Bar() {
  const [q, setQ] = useState("");
  return (
    <MantineProvider>
      <QueryBar value={q} onChange={setQ} onSubmit={() => {}} />
      <button type="button">elsewhere</button>
    </MantineProvider>
  );
}

function typeInto(input: HTMLInputElement, text: string) {
  fireEvent.change(input, { target: { value: text, selectionStart: text.length } });
  input.setSelectionRange(text.length, text.length);
  fireEvent.keyUp(input, { key: text.slice(-1) });
}

describe("QueryBar", () => {
  it("suggests fields after a blur and a quick refocus", () => {
    vi.useFakeTimers();
    try {
      render(<Bar />);
      const input = screen.getByTestId("query") as HTMLInputElement;
      act(() => input.focus());
      act(() => screen.getByText("elsewhere").focus()); // blur: the 150 ms timer starts
      act(() => input.focus()); // back within 150 ms
      act(() => vi.advanceTimersByTime(200));
      act(() => typeInto(input, "dst.p"));
      act(() => vi.advanceTimersByTime(500)); // the popover's opening transition
      expect(screen.getByTestId("field-suggestions").textContent).toContain("dst.port:");
    } finally {
      vi.useRealTimers();
    }
  });

  it("hides the suggestions once the field has really lost focus", () => {
    vi.useFakeTimers();
    try {
      render(<Bar />);
      const input = screen.getByTestId("query") as HTMLInputElement;
      act(() => input.focus());
      act(() => typeInto(input, "dst.p"));
      act(() => vi.advanceTimersByTime(500)); // the popover's opening transition
      expect(screen.getByTestId("field-suggestions").textContent).toContain("dst.port:");
      act(() => screen.getByText("elsewhere").focus());
      act(() => vi.advanceTimersByTime(200));
      expect(screen.queryByTestId("field-suggestions")?.textContent ?? "").not.toContain(
        "dst.port:",
      );
    } finally {
      vi.useRealTimers();
    }
  });
});
