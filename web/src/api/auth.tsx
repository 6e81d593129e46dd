// The signed-in principal: who, which roles, which actions; sign-in state and the idle timeout.
//
// The access token lives only in memory; a page reload gets a new one from the HttpOnly refresh
// cookie (POST /auth/refresh). What the console shows is decided from `actions` (the API checks
// every request again: hiding a button is for the user, not for security).
import { useQueryClient } from "@tanstack/react-query";
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState } from "react";
import type { ReactNode } from "react";

import { api, call, csrfHeaders, refreshAccess, setAccessToken, setSignedOutHandler } from "./client";
import type { Me } from "./types";

export type Action =
  | "manage_users"
  | "manage_devices"
  | "view"
  | "tail"
  | "export"
  | "attribute"
  | "view_compliance"
  | "view_audit";

type Status = "loading" | "signedOut" | "signedIn";

export interface AuthState {
  status: Status;
  me: Me | null;
  /** Why the last session ended, shown on the sign-in screen ("idle", "expired"). */
  endReason: string | null;
  can: (action: Action) => boolean;
  signedIn: (accessToken: string) => Promise<void>;
  signOut: (reason?: string) => Promise<void>;
}

const AuthContext = createContext<AuthState | null>(null);

const DEFAULT_IDLE_S = 1800;
const ACTIVITY = ["mousedown", "keydown", "touchstart", "wheel", "scroll"] as const;

export function AuthProvider({ children }: { children: ReactNode }) {
  const [status, setStatus] = useState<Status>("loading");
  const [me, setMe] = useState<Me | null>(null);
  const [endReason, setEndReason] = useState<string | null>(null);
  const queryClient = useQueryClient();

  const loadMe = useCallback(async () => {
    const data = await call(api.GET("/api/v1/auth/me"));
    setMe(data as Me);
    setStatus("signedIn");
  }, []);

  const signOut = useCallback(
    async (reason?: string) => {
      try {
        await fetch("/api/v1/auth/logout", {
          method: "POST",
          credentials: "same-origin",
          headers: csrfHeaders(),
        });
      } catch {
        /* offline: the cookie expires on its own */
      }
      setAccessToken(null);
      setMe(null);
      setEndReason(reason ?? null);
      setStatus("signedOut");
      queryClient.clear();
    },
    [queryClient],
  );

  useEffect(() => {
    setSignedOutHandler(() => {
      setAccessToken(null);
      setMe(null);
      setEndReason("expired");
      setStatus("signedOut");
      queryClient.clear();
    });
    void (async () => {
      if (await refreshAccess()) {
        try {
          await loadMe();
          return;
        } catch {
          /* fall through */
        }
      }
      setStatus("signedOut");
    })();
    return () => setSignedOutHandler(null);
  }, [loadMe, queryClient]);

  // Idle timeout: no input for idle_timeout_s signs out here too, so the screen does not keep
  // showing logs the server already considers abandoned.
  const lastActivity = useRef(Date.now());
  useEffect(() => {
    if (status !== "signedIn") return;
    const idleMs = DEFAULT_IDLE_S * 1000;
    const touch = () => (lastActivity.current = Date.now());
    touch();
    ACTIVITY.forEach((e) => window.addEventListener(e, touch, { passive: true }));
    const timer = window.setInterval(() => {
      if (Date.now() - lastActivity.current > idleMs) void signOut("idle");
    }, 5000);
    return () => {
      ACTIVITY.forEach((e) => window.removeEventListener(e, touch));
      window.clearInterval(timer);
    };
  }, [status, me, signOut]);

  const value = useMemo<AuthState>(
    () => ({
      status,
      me,
      endReason,
      can: (action) => !!me && (me.actions as string[]).includes(action),
      signedIn: async (token) => {
        setAccessToken(token);
        setEndReason(null);
        await loadMe();
      },
      signOut,
    }),
    [status, me, endReason, loadMe, signOut],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthState {
  const ctx = useContext(AuthContext);
  if (!ctx) throw new Error("useAuth outside AuthProvider");
  return ctx;
}

/** Render children only when the principal holds ``action``: absent, not disabled. */
export function Can({ action, children }: { action: Action; children: ReactNode }) {
  return useAuth().can(action) ? <>{children}</> : null;
}
