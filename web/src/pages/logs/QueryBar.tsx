// The query bar: the search language with field suggestions under the cursor and a syntax help.
import { ActionIcon, Button, Code, Group, Paper, Popover, Stack, Table, Text, TextInput } from "@mantine/core";
import { IconHelp, IconSearch } from "@tabler/icons-react";
import { useRef, useState } from "react";
import { useTranslation } from "react-i18next";

import { applySuggestion, EXAMPLES, suggestFields } from "../../lib/query";

interface Props {
  value: string;
  onChange: (q: string) => void;
  onSubmit: (q: string) => void;
  error?: string | null;
}

export function QueryBar({ value, onChange, onSubmit, error }: Props) {
  const { t } = useTranslation();
  const input = useRef<HTMLInputElement>(null);
  const [cursor, setCursor] = useState(0);
  const [focused, setFocused] = useState(false);
  const [active, setActive] = useState(0);
  const suggestions = focused ? suggestFields(value, cursor) : [];

  const accept = (s: string) => {
    const [next, pos] = applySuggestion(value, cursor, s);
    onChange(next);
    setCursor(pos);
    requestAnimationFrame(() => input.current?.setSelectionRange(pos, pos));
  };

  return (
    <Group gap={4} wrap="nowrap" align="flex-start" style={{ flex: 1, minWidth: 240 }}>
      <Popover opened={suggestions.length > 0} position="bottom-start" withinPortal={false} trapFocus={false}>
        <Popover.Target>
          <TextInput
            ref={input}
            style={{ flex: 1 }}
            value={value}
            error={error || undefined}
            placeholder={t("logs.queryPlaceholder")}
            leftSection={<IconSearch size={14} />}
            aria-label={t("logs.query")}
            data-testid="query"
            ff="monospace"
            autoComplete="off"
            spellCheck={false}
            onFocus={() => setFocused(true)}
            // Late, so a click on a suggestion lands first; and only if the field has not been
            // focused again meanwhile (blur then focus within 150 ms left the list off for good).
            onBlur={() =>
              setTimeout(() => {
                if (document.activeElement !== input.current) setFocused(false);
              }, 150)
            }
            onChange={(e) => {
              onChange(e.currentTarget.value);
              setCursor(e.currentTarget.selectionStart ?? e.currentTarget.value.length);
              setActive(0);
            }}
            onKeyUp={(e) => setCursor(e.currentTarget.selectionStart ?? 0)}
            onKeyDown={(e) => {
              if (suggestions.length > 0 && e.key === "Tab") {
                e.preventDefault();
                accept(suggestions[active] ?? suggestions[0]);
              } else if (suggestions.length > 0 && e.key === "ArrowDown") {
                e.preventDefault();
                setActive((a) => (a + 1) % suggestions.length);
              } else if (suggestions.length > 0 && e.key === "ArrowUp") {
                e.preventDefault();
                setActive((a) => (a - 1 + suggestions.length) % suggestions.length);
              } else if (e.key === "Enter") {
                e.preventDefault();
                onSubmit(value);
              } else if (e.key === "Escape") {
                setFocused(false);
              }
            }}
          />
        </Popover.Target>
        <Popover.Dropdown p={2}>
          <Stack gap={0} data-testid="field-suggestions">
            {suggestions.map((s, i) => (
              <Button
                key={s}
                variant={i === active ? "light" : "subtle"}
                justify="flex-start"
                ff="monospace"
                onMouseDown={(e) => {
                  e.preventDefault();
                  accept(s);
                }}
              >
                {s}
              </Button>
            ))}
            <Text size="xs" c="dimmed" px={6}>
              {t("logs.suggestHint")}
            </Text>
          </Stack>
        </Popover.Dropdown>
      </Popover>
      <SyntaxHelp onPick={(q) => { onChange(q); onSubmit(q); }} />
    </Group>
  );
}

function SyntaxHelp({ onPick }: { onPick: (q: string) => void }) {
  const { t } = useTranslation();
  return (
    <Popover position="bottom-end" withinPortal shadow="md" width={460}>
      <Popover.Target>
        <ActionIcon variant="default" size="lg" aria-label={t("logs.syntaxHelp")} data-testid="syntax-help">
          <IconHelp size={16} />
        </ActionIcon>
      </Popover.Target>
      <Popover.Dropdown>
        <Paper>
          <Text size="sm" fw={600} mb={4}>
            {t("logs.syntaxHelp")}
          </Text>
          <Table>
            <Table.Tbody>
              {EXAMPLES.map((ex) => (
                <Table.Tr key={ex.query} style={{ cursor: "pointer" }} onClick={() => onPick(ex.query)}>
                  <Table.Td>
                    <Code>{ex.query}</Code>
                  </Table.Td>
                  <Table.Td>{t(`syntax.${ex.key}`)}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
          <Text size="xs" c="dimmed" mt={4}>
            {t("syntax.fields")}
          </Text>
        </Paper>
      </Popover.Dropdown>
    </Popover>
  );
}
