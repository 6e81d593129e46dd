// The frame around every screen: navigation (a drawer on phones), language switch, user menu.
import { AppShell, Burger, Group, Menu, NavLink, ScrollArea, SegmentedControl, Text, UnstyledButton } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import {
  IconAdjustments,
  IconChartBar,
  IconCertificate,
  IconDeviceDesktopAnalytics,
  IconFileSearch,
  IconHistory,
  IconKey,
  IconLogout,
  IconRoute,
  IconServer,
  IconShieldLock,
  IconUser,
  IconUsers,
} from "@tabler/icons-react";
import type { ReactNode } from "react";
import { useTranslation } from "react-i18next";
import { Link, useLocation } from "react-router-dom";

import { useAuth } from "../api/auth";
import type { Action } from "../api/auth";
import { setLanguage } from "../i18n";
import type { Language } from "../i18n";

interface Item {
  to: string;
  label: string;
  icon: ReactNode;
  action?: Action;
}

export function Shell({ children }: { children: ReactNode }) {
  const { t, i18n } = useTranslation();
  const { me, can, signOut } = useAuth();
  const [opened, { toggle, close }] = useDisclosure();
  const location = useLocation();

  const main: Item[] = [
    { to: "/", label: t("nav.overview"), icon: <IconDeviceDesktopAnalytics size={16} /> },
    { to: "/logs", label: t("nav.logs"), icon: <IconFileSearch size={16} />, action: "view" },
    { to: "/attribution", label: t("nav.attribution"), icon: <IconRoute size={16} />, action: "attribute" },
    { to: "/devices", label: t("nav.devices"), icon: <IconServer size={16} /> },
    { to: "/compliance", label: t("nav.compliance"), icon: <IconCertificate size={16} />, action: "view_compliance" },
  ];
  const admin: Item[] = [
    { to: "/admin/users", label: t("nav.users"), icon: <IconUsers size={16} />, action: "manage_users" },
    { to: "/admin/roles", label: t("nav.roles"), icon: <IconKey size={16} />, action: "manage_users" },
    { to: "/admin/permissions", label: t("nav.permissions"), icon: <IconShieldLock size={16} />, action: "manage_users" },
    { to: "/admin/settings", label: t("nav.settings"), icon: <IconAdjustments size={16} />, action: "manage_users" },
    { to: "/admin/audit", label: t("nav.audit"), icon: <IconHistory size={16} /> },
  ];
  const visible = (items: Item[]) => items.filter((i) => !i.action || can(i.action));
  const active = (to: string) => (to === "/" ? location.pathname === "/" : location.pathname.startsWith(to));
  const link = (i: Item) => (
    <NavLink
      key={i.to}
      component={Link}
      to={i.to}
      label={i.label}
      leftSection={i.icon}
      active={active(i.to)}
      onClick={close}
      data-testid={`nav-${i.to.replace(/\//g, "-").replace(/^-/, "") || "overview"}`}
    />
  );

  return (
    <AppShell
      header={{ height: 44 }}
      navbar={{ width: 200, breakpoint: "sm", collapsed: { mobile: !opened } }}
      padding="xs"
    >
      <AppShell.Header>
        <Group h="100%" px="sm" justify="space-between" wrap="nowrap">
          <Group gap="xs" wrap="nowrap">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label={t("nav.menu")} />
            <IconChartBar size={20} color="var(--mantine-color-blue-6)" />
            <Text fw={700}>LogMaster</Text>
          </Group>
          <Group gap="xs" wrap="nowrap">
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
            <Menu position="bottom-end" withinPortal>
              <Menu.Target>
                <UnstyledButton data-testid="user-menu">
                  <Group gap={4} wrap="nowrap">
                    <IconUser size={16} />
                    <Text size="sm" className="lm-hide-mobile">
                      {me?.username}
                    </Text>
                  </Group>
                </UnstyledButton>
              </Menu.Target>
              <Menu.Dropdown>
                <Menu.Label>{(me?.roles as string[] | undefined)?.join(", ")}</Menu.Label>
                <Menu.Item leftSection={<IconLogout size={14} />} onClick={() => void signOut()} data-testid="sign-out">
                  {t("auth.signOut")}
                </Menu.Item>
              </Menu.Dropdown>
            </Menu>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p={4}>
        <ScrollArea>
          {visible(main).map(link)}
          {visible(admin).length > 0 && (
            <Text size="xs" c="dimmed" px="sm" pt="md" pb={4} tt="uppercase">
              {t("nav.administration")}
            </Text>
          )}
          {visible(admin).map(link)}
        </ScrollArea>
      </AppShell.Navbar>
      <AppShell.Main>{children}</AppShell.Main>
    </AppShell>
  );
}
