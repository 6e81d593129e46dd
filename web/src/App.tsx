// Routes: the sign-in screen until signed in, then the shell with one page per screen.
// Pages other than Logs are loaded on demand to keep the first load small.
import { Center, Loader } from "@mantine/core";
import { lazy, Suspense } from "react";
import { Navigate, Route, Routes } from "react-router-dom";

import { useAuth } from "./api/auth";
import type { Action } from "./api/auth";
import { Shell } from "./components/Shell";
import { LoginPage } from "./pages/Login";
import { LogsPage } from "./pages/logs/LogsPage";

const Overview = lazy(() => import("./pages/Overview"));
const Attribution = lazy(() => import("./pages/Attribution"));
const Devices = lazy(() => import("./pages/Devices"));
const DeviceDetail = lazy(() => import("./pages/DeviceDetail"));
const Compliance = lazy(() => import("./pages/Compliance"));
const Users = lazy(() => import("./pages/admin/Users"));
const Roles = lazy(() => import("./pages/admin/Roles"));
const Permissions = lazy(() => import("./pages/admin/Permissions"));
const Settings = lazy(() => import("./pages/admin/Settings"));
const Audit = lazy(() => import("./pages/admin/Audit"));

function Guard({ action, children }: { action?: Action; children: JSX.Element }) {
  const { can } = useAuth();
  if (action && !can(action)) return <Navigate to="/" replace />;
  return children;
}

export function App() {
  const { status } = useAuth();
  if (status === "loading") {
    return (
      <Center h="100vh">
        <Loader />
      </Center>
    );
  }
  if (status === "signedOut") return <LoginPage />;
  return (
    <Shell>
      <Suspense
        fallback={
          <Center p="xl">
            <Loader size="sm" />
          </Center>
        }
      >
        <Routes>
          <Route path="/" element={<Overview />} />
          <Route path="/logs" element={<Guard action="view"><LogsPage /></Guard>} />
          <Route path="/attribution" element={<Guard action="attribute"><Attribution /></Guard>} />
          <Route path="/devices" element={<Devices />} />
          <Route path="/devices/:slug" element={<DeviceDetail />} />
          <Route path="/compliance" element={<Guard action="view_compliance"><Compliance /></Guard>} />
          <Route path="/admin/users" element={<Guard action="manage_users"><Users /></Guard>} />
          <Route path="/admin/roles" element={<Guard action="manage_users"><Roles /></Guard>} />
          <Route path="/admin/permissions" element={<Guard action="manage_users"><Permissions /></Guard>} />
          <Route path="/admin/settings" element={<Guard action="manage_users"><Settings /></Guard>} />
          <Route path="/admin/audit" element={<Audit />} />
          <Route path="*" element={<Navigate to="/" replace />} />
        </Routes>
      </Suspense>
    </Shell>
  );
}
