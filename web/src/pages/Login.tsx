// Sign-in: password, then the second factor when the account has one, or its enrolment when the
// role requires one (QR code, first code, recovery codes shown once). Errors say what happened:
// wrong password, locked account (and for how long), outside the allowed hours or networks.
import { Alert, Anchor, Button, Center, Code, Group, Image, Paper, PasswordInput, PinInput, SegmentedControl, SimpleGrid, Stack, Text, TextInput, Title } from "@mantine/core";
import { IconAlertTriangle, IconClockHour4, IconLock, IconShieldLock } from "@tabler/icons-react";
import { useState } from "react";
import type { FormEvent } from "react";
import { useTranslation } from "react-i18next";

import { useAuth } from "../api/auth";
import { api, ApiError, call, setAccessToken } from "../api/client";
import type { MfaEnrolment } from "../api/types";
import { setLanguage } from "../i18n";
import type { Language } from "../i18n";

type Step = "password" | "code" | "enrol" | "recovery";

export function LoginPage() {
  const { t, i18n } = useTranslation();
  const { signedIn, endReason } = useAuth();
  const [step, setStep] = useState<Step>("password");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [useRecovery, setUseRecovery] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [token, setToken] = useState<string | null>(null);
  const [enrolment, setEnrolment] = useState<MfaEnrolment | null>(null);
  const [recovery, setRecovery] = useState<string[]>([]);

  const fail = (err: unknown) =>
    setError(err instanceof ApiError ? err : new ApiError(0, { detail: String(err) }));

  const login = async (e?: FormEvent) => {
    e?.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = {
        username,
        password,
        ...(step === "code" ? (useRecovery ? { recovery_code: code.trim() } : { totp_code: code.trim() }) : {}),
      };
      const res = await call(api.POST("/api/v1/auth/login", { body }));
      if (res.mfa_enrolment_required) {
        setAccessToken(res.access_token);
        setToken(res.access_token);
        const enrol = await call(api.POST("/api/v1/auth/mfa/enrol"));
        setEnrolment(enrol);
        setCode("");
        setStep("enrol");
      } else {
        await signedIn(res.access_token);
      }
    } catch (err) {
      if (err instanceof ApiError && err.kind === "mfa-required") {
        setStep("code");
        setCode("");
      } else {
        fail(err);
      }
    } finally {
      setBusy(false);
    }
  };

  const confirm = async (e?: FormEvent) => {
    e?.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const res = await call(api.POST("/api/v1/auth/mfa/confirm", { body: { code: code.trim() } }));
      setRecovery(res.recovery_codes);
      setStep("recovery");
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Center mih="100vh" p="md" bg="gray.0">
      <Paper withBorder shadow="sm" p="lg" w={400} maw="100%">
        <Group justify="space-between" mb="md">
          <Title order={3}>LogMaster</Title>
          <SegmentedControl
            size="xs"
            value={i18n.language}
            onChange={(v) => setLanguage(v as Language)}
            data={[
              { label: "TR", value: "tr" },
              { label: "EN", value: "en" },
            ]}
            data-testid="language"
          />
        </Group>
        {endReason && step === "password" && !error && (
          <Alert color="yellow" variant="light" mb="sm" icon={<IconClockHour4 size={16} />} data-testid="session-ended">
            {t(endReason === "idle" ? "auth.endedIdle" : "auth.endedExpired")}
          </Alert>
        )}
        {error && <LoginError error={error} />}

        {(step === "password" || step === "code") && (
          <form onSubmit={login}>
            <Stack gap="sm">
              <TextInput
                label={t("auth.username")}
                value={username}
                onChange={(e) => setUsername(e.currentTarget.value)}
                autoComplete="username"
                required
                disabled={step === "code"}
                data-testid="username"
                size="sm"
              />
              <PasswordInput
                label={t("auth.password")}
                value={password}
                onChange={(e) => setPassword(e.currentTarget.value)}
                autoComplete="current-password"
                required
                disabled={step === "code"}
                data-testid="password"
                size="sm"
              />
              {step === "code" && (
                <>
                  <Text size="sm">{useRecovery ? t("auth.recoveryPrompt") : t("auth.codePrompt")}</Text>
                  {useRecovery ? (
                    <TextInput value={code} onChange={(e) => setCode(e.currentTarget.value)} data-testid="recovery-code" size="sm" autoFocus />
                  ) : (
                    <PinInput length={6} type="number" oneTimeCode value={code} onChange={setCode} data-testid="totp" autoFocus />
                  )}
                  <Anchor size="xs" component="button" type="button" onClick={() => { setUseRecovery((v) => !v); setCode(""); }}>
                    {useRecovery ? t("auth.useTotp") : t("auth.useRecovery")}
                  </Anchor>
                </>
              )}
              <Button type="submit" loading={busy} size="sm" data-testid="sign-in">
                {t("auth.signIn")}
              </Button>
            </Stack>
          </form>
        )}

        {step === "enrol" && enrolment && (
          <form onSubmit={confirm}>
            <Stack gap="sm" data-testid="mfa-enrol">
              <Group gap="xs">
                <IconShieldLock size={18} />
                <Text fw={600}>{t("auth.enrolTitle")}</Text>
              </Group>
              <Text size="sm">{t("auth.enrolText")}</Text>
              <Center>
                {/* An <img> of the SVG: displayed, never executed or inserted as markup. */}
                <Image src={`data:image/svg+xml;base64,${toBase64(enrolment.qr_svg)}`} w={180} h={180} alt="QR" />
              </Center>
              <Text size="xs" c="dimmed">
                {t("auth.enrolSecret")}
              </Text>
              <Code data-testid="mfa-secret">{enrolment.secret}</Code>
              <PinInput length={6} type="number" oneTimeCode value={code} onChange={setCode} data-testid="totp" />
              <Button type="submit" loading={busy} size="sm" data-testid="mfa-confirm">
                {t("auth.enrolConfirm")}
              </Button>
            </Stack>
          </form>
        )}

        {step === "recovery" && (
          <Stack gap="sm" data-testid="recovery-codes">
            <Text fw={600}>{t("auth.recoveryTitle")}</Text>
            <Text size="sm">{t("auth.recoveryText")}</Text>
            <SimpleGrid cols={2} spacing={4}>
              {recovery.map((c) => (
                <Code key={c}>{c}</Code>
              ))}
            </SimpleGrid>
            <Button size="sm" onClick={() => token && void signedIn(token)} data-testid="continue">
              {t("auth.continue")}
            </Button>
          </Stack>
        )}
      </Paper>
    </Center>
  );
}

function LoginError({ error }: { error: ApiError }) {
  const { t } = useTranslation();
  const kind = error.kind;
  const titles: Record<string, string> = {
    "account-locked": t("auth.lockedTitle"),
    "address-locked": t("auth.lockedTitle"),
    "time-window": t("auth.windowTitle"),
    "source-network": t("auth.networkTitle"),
  };
  const minutes = error.problem.retry_after_s ? Math.ceil(error.problem.retry_after_s / 60) : null;
  return (
    <Alert
      color="red"
      variant="light"
      mb="sm"
      title={titles[kind] ?? t("auth.failedTitle")}
      icon={kind.endsWith("-locked") ? <IconLock size={16} /> : <IconAlertTriangle size={16} />}
      data-testid="login-error"
      data-kind={kind}
    >
      {error.text}
      {minutes !== null && kind.endsWith("-locked") && (
        <Text size="xs" mt={4}>
          {t("auth.retryIn", { count: minutes })}
        </Text>
      )}
    </Alert>
  );
}

function toBase64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  bytes.forEach((b) => (bin += String.fromCharCode(b)));
  return btoa(bin);
}
