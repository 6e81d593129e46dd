// The API client: openapi-fetch over the generated types (schema.gen.ts, never edited by hand),
// plus what every call needs: the access token, one refresh on 401, RFC 9457 problems as errors.
import createClient from "openapi-fetch";

import i18n from "../i18n";
import type { paths } from "./schema.gen";

/** An RFC 9457 problem detail as the API sends it (api/problems.py). */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  detail_tr?: string;
  retry_after_s?: number | null;
  errors?: { loc?: unknown; msg?: string }[] | null;
  [key: string]: unknown;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(problem.detail || problem.title || `HTTP ${status}`);
  }

  /** The text for the user, in the console's language. */
  get text(): string {
    const tr = i18n.language === "tr" && this.problem.detail_tr;
    return tr || this.problem.detail || this.problem.title || `HTTP ${this.status}`;
  }

  /** The last segment of the problem type URI, e.g. "account-locked". */
  get kind(): string {
    return (this.problem.type ?? "").split("/").pop() ?? "";
  }
}

let accessToken: string | null = null;
let refreshing: Promise<boolean> | null = null;
let onSignedOut: (() => void) | null = null;

export function setAccessToken(token: string | null): void {
  accessToken = token;
}
export function getAccessToken(): string | null {
  return accessToken;
}
/** Called when a refresh fails: the session is over (idle, revoked, expired). */
export function setSignedOutHandler(handler: (() => void) | null): void {
  onSignedOut = handler;
}

const REFRESH_PATH = "/api/v1/auth/refresh";

/** The double-submit CSRF value: the readable lm_csrf cookie, echoed as X-CSRF-Token. */
export function csrfHeaders(): Record<string, string> {
  const m = /(?:^|;\s*)lm_csrf=([^;]+)/.exec(document.cookie);
  return m ? { "X-CSRF-Token": decodeURIComponent(m[1]) } : {};
}

/** Trade the HttpOnly refresh cookie for a new access token (one attempt in flight at a time). */
export function refreshAccess(): Promise<boolean> {
  refreshing ??= (async () => {
    try {
      const res = await fetch(REFRESH_PATH, {
        method: "POST",
        credentials: "same-origin",
        headers: csrfHeaders(),
      });
      if (!res.ok) return false;
      const body = (await res.json()) as { access_token?: string };
      accessToken = body.access_token ?? null;
      return accessToken !== null;
    } catch {
      return false;
    } finally {
      setTimeout(() => (refreshing = null), 0);
    }
  })();
  return refreshing;
}

async function authFetch(input: Request): Promise<Response> {
  const retry = input.clone();
  const withToken = (req: Request) => {
    if (accessToken) req.headers.set("Authorization", `Bearer ${accessToken}`);
    return fetch(req);
  };
  const res = await withToken(input);
  if (res.status !== 401 || input.url.endsWith(REFRESH_PATH) || input.url.includes("/auth/login")) {
    return res;
  }
  if (await refreshAccess()) return withToken(retry);
  onSignedOut?.();
  return res;
}

export const api = createClient<paths>({ baseUrl: "", fetch: authFetch });

/** Unwrap an openapi-fetch result: the data, or an ApiError carrying the problem detail. */
export async function call<T>(
  pending: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await pending;
  } catch (err) {
    throw new ApiError(0, { title: String(err), detail: i18n.t("errors.network") });
  }
  const { data, error, response } = result;
  if (!response.ok) {
    const problem: Problem =
      error && typeof error === "object" ? (error as Problem) : { title: String(error ?? "") };
    throw new ApiError(response.status, problem);
  }
  return data as T;
}

/** Download an API response as a file (exports, evidence bundles, reports). */
export async function download(path: string, init: RequestInit, fallbackName: string): Promise<void> {
  const req = new Request(path, init);
  const res = await authFetch(req);
  if (!res.ok) {
    let problem: Problem = { title: res.statusText };
    try {
      problem = (await res.json()) as Problem;
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, problem);
  }
  const blob = await res.blob();
  const disposition = res.headers.get("content-disposition") ?? "";
  const name = /filename="?([^";]+)"?/.exec(disposition)?.[1] ?? fallbackName;
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
