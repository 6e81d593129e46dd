// An API error shown as the API phrased it (Turkish or English), never a stack trace.
import { Alert } from "@mantine/core";
import { IconAlertTriangle } from "@tabler/icons-react";
import { useTranslation } from "react-i18next";

import { ApiError } from "../api/client";

export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.text;
  return error instanceof Error ? error.message : String(error);
}

export function ErrorNote({ error, title }: { error: unknown; title?: string }) {
  const { t } = useTranslation();
  return (
    <Alert color="red" variant="light" icon={<IconAlertTriangle size={16} />} title={title ?? t("errors.title")} p="xs" data-testid="error">
      {errorText(error)}
    </Alert>
  );
}
