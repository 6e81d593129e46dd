// Dense admin screens: small default sizes, monospace for log lines.
import { createTheme } from "@mantine/core";

export const theme = createTheme({
  primaryColor: "blue",
  defaultRadius: "sm",
  fontFamilyMonospace: "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace",
  components: {
    Button: { defaultProps: { size: "xs" } },
    TextInput: { defaultProps: { size: "xs" } },
    PasswordInput: { defaultProps: { size: "xs" } },
    Select: { defaultProps: { size: "xs" } },
    MultiSelect: { defaultProps: { size: "xs" } },
    NumberInput: { defaultProps: { size: "xs" } },
    Table: { defaultProps: { fz: "xs", verticalSpacing: 4, horizontalSpacing: 6 } },
    Badge: { defaultProps: { size: "sm", radius: "sm" } },
  },
});

/** Colour of a syslog severity (RFC 5424 keyword or number), Kibana-like. */
export function severityColor(sev: unknown): string | undefined {
  const s = String(sev ?? "").toLowerCase();
  switch (s) {
    case "0": case "emerg": case "emergency":
    case "1": case "alert":
    case "2": case "crit": case "critical":
      return "var(--mantine-color-red-8)";
    case "3": case "err": case "error":
      return "var(--mantine-color-red-6)";
    case "4": case "warning": case "warn":
      return "var(--mantine-color-orange-6)";
    case "5": case "notice":
      return "var(--mantine-color-blue-6)";
    case "7": case "debug":
      return "var(--mantine-color-gray-5)";
    default:
      return undefined;
  }
}
