// English texts. tr.ts must have exactly the same keys (the type below enforces it).
export const en = {
  nav: {
    overview: "Overview", logs: "Logs", attribution: "Attribution", devices: "Devices", compliance: "Compliance",
    users: "Users", roles: "Roles", permissions: "Permissions", settings: "Settings", audit: "Audit trail",
    administration: "Administration", menu: "Menu",
  },
  common: {
    close: "Close", copy: "Copy", copied: "Copied", delete: "Delete", loading: "Loading…", more: "Load more",
    save: "Save", saved: "Saved.",
  },
  errors: { title: "Something went wrong", network: "The server cannot be reached; check the connection and try again." },
  auth: {
    username: "Username", password: "Password", signIn: "Sign in", signOut: "Sign out",
    codePrompt: "Enter the 6-digit code from your authenticator app.",
    recoveryPrompt: "Enter one of your recovery codes.",
    useRecovery: "Use a recovery code instead", useTotp: "Use the authenticator code",
    enrolTitle: "Set up the second factor",
    enrolText: "Your role requires a second factor. Scan the QR code with an authenticator app (or type the key), then enter the code it shows.",
    enrolSecret: "Key for typing in by hand:", enrolConfirm: "Confirm",
    recoveryTitle: "Recovery codes",
    recoveryText: "Keep these codes somewhere safe. Each works once if you lose your phone; they are shown only now.",
    continue: "Continue",
    failedTitle: "Sign-in failed", lockedTitle: "Locked for now", windowTitle: "Outside your allowed hours",
    networkTitle: "Not allowed from this network",
    retryIn: "Try again in {{count}} min.",
    endedIdle: "You were signed out after a period of inactivity. Sign in again.",
    endedExpired: "Your session has ended. Sign in again.",
  },
  range: {
    quick: "Quick ranges", absolute: "Absolute range", from: "From", to: "To", apply: "Apply",
    last_s: "Last {{count}} s", last_m: "Last {{count}} min", last_h: "Last {{count}} h", last_d: "Last {{count}} days",
  },
  logs: {
    query: "Query", queryPlaceholder: "e.g. src:10.0.0.0/8 AND denied", search: "Search", columns: "Columns",
    liveTail: "Live tail", noResults: "No matching lines in this range.", loaded: "{{count}} lines loaded",
    total: "{{formatted}} matches", syntaxHelp: "Query syntax", suggestHint: "Tab completes",
  },
  syntax: {
    word: "a word anywhere in the message", phrase: "an exact phrase", cidr: "source address in a network (CIDR)",
    field: "field values, combined", wildcard: "wildcard", range: "severity error or worse (range)",
    not: "exclude with NOT", group: "group with parentheses",
    fields: "Short fields: src dst ip mac user device host app sev action dataset; any ECS field works too (source.port, event.outcome …).",
  },
  col: {
    time: "Time", device: "Device", severity: "Severity", host: "Host", app: "App", action: "Action",
    src: "Source", srcPort: "Src port", dst: "Destination", dstPort: "Dst port", nat: "NAT", user: "User",
    mac: "MAC", message: "Message",
  },
  event: {
    fields: "Fields", raw: "Archived line", surrounding: "Surrounding lines", filterOn: "Filter on this value",
    offset: "offset", rawMissing: "The archive file of this event is not available.",
  },
  tail: {
    off: "Off", connecting: "Connecting…", live: "Live", paused: "Paused", error: "Stopped",
    pause: "Pause", resume: "Resume", shown: "{{count}} lines", held: "{{count}} waiting", gaps: "{{count}} gaps (server fell behind)",
  },
  device: {
    all: "All ({{count}})", pending: "Pending approval ({{count}})", name: "Name", status: "Status", rate: "Messages/s",
    lastSeen: "Last seen", location: "Location", groups: "Groups", timezone: "Timezone", sources: "Senders",
    slug: "Archive name", format: "Format", formatAuto: "automatic", days: "Archive days", recent: "Recent lines",
    openInLogs: "Open in Logs", silentSince: "silent since {{time}}", noPending: "No device is waiting for approval.",
    approve: "Approve", reject: "Reject", approved: "{{name}} approved.", rejected: "{{name}} rejected.",
    noManage: "You may not manage this device.",
    state: { receiving: "Receiving", silent: "Silent", pending: "Pending", rejected: "Rejected", retired: "Retired" },
  },
  calendar: {
    weekdays: "Mo,Tu,We,Th,Fr,Sa,Su", sealed: "Sealed", stamped: "Timestamped", chained: "Chained", open: "Being written",
    gap: "Gap / check", missing: "No file", future: "Future", lines: "lines",
  },
  attr: {
    ip: "IP address", port: "Port", at: "Time", window: "Window (s)", find: "Find",
    asked: "{{ip}} port {{port}} at {{at}} ± {{window}} s", ambiguous: "Ambiguous", none: "No session covers this address at that time.",
    chain: "Chain {{n}}", outer: "Public", inner: "Internal", mac: "MAC", user: "User", start: "Start", end: "End",
    expires: "expires", notPermitted: "On a device you may not see.", export: "Evidence bundle",
    kind: { nat: "NAT", dhcp: "DHCP", hotspot: "Hotspot" },
  },
  action: {
    manage_users: "Manage users", manage_devices: "Manage devices", view: "View", tail: "Tail", export: "Export",
    attribute: "Attribute", view_compliance: "Compliance", view_audit: "Audit", manage: "Manage",
  },
  users: {
    new: "New user", username: "Username", displayName: "Name", email: "E-mail", roles: "Roles", source: "Source",
    lastLogin: "Last sign-in", state: "State", active: "Active", disabled: "Disabled", locations: "Locations (location manager)",
    networks: "Allowed networks", networksHint: "CIDR, e.g. 10.0.0.0/8; empty = anywhere",
    windows: "Allowed hours", passwordHint: "Empty: the user gets no local password (LDAP).",
    unlock: "Unlock", unlocked: "Unlocked.", revoke: "End sessions", revoked: "Sessions ended.",
    resetMfa: "Reset MFA", mfaReset: "Second factor reset.",
  },
  roles: { name: "Role", builtin: "built-in", mfa: "MFA required" },
  perm: {
    why: "Why can this user see this device?", user: "User", device: "Device", matrix: "Permissions of {{user}} per device",
    grants: "Grants", who: "Who", what: "On", actions: "Actions", grant: "Grant", users: "Users", devices: "Devices",
    groups: "Device groups", locations: "Locations", userShort: "user", roleShort: "role", deviceShort: "device",
    groupShort: "group", locationShort: "location",
  },
  settings: {
    pending: "These settings are read from logmaster.toml at start; the API to show and change them here is not built yet.",
    ldap: "LDAP / Active Directory", ldapText: "Directory sign-in and group → role mapping.",
    tsa: "Timestamp authorities", tsaText: "RFC 3161 TSAs used for daily seals (Kamu SM and others).",
    retention: "Retention and seals", retentionText: "How long archive days are kept and when they are sealed.",
    howto: "Every field with its description:",
  },
  audit: {
    verify: "Verify chain", ownOnly: "You see your own actions only.", actor: "User", action: "Action", result: "Result",
    target: "Target", when: "When", from: "From", details: "Details", filter: "Filter",
    verifyOk: "The audit chain is intact ({{count}} entries).", verifyBad: "The audit chain is broken at entry {{seq}}.",
  },
  overview: {
    welcome: "Welcome, {{name}}", rateNow: "Messages/s now", last24h: "Last 24 hours", health: "Server health",
    archive: "Archive", index: "Index", database: "Database", writable: "writable", notWritable: "NOT writable",
    free: "{{gb}} GB free", lag: "{{s}} s behind", seals: "Seals and timestamps",
    status: { ok: "Healthy", degraded: "Degraded", failing: "Failing" },
  },
  compliance: {
    calendar: "Calendar", violations: "Violations", reports: "Monthly reports", bundles: "Evidence bundles",
    pending: "This part arrives with the compliance API (seals, violations, reports, evidence bundles).",
    openOnly: "Open only", opened: "Opened", kind: "Kind", what: "What", resolved: "Resolved",
    noViolations: "No violations.", month: "Month", makeReport: "Make report", allLocations: "All locations",
    noReports: "No report yet.", export: "Export bundle", download: "Download", sealedDays: "Sealed days (7 d)",
    pendingDays: "Stamp pending (7 d)", silenceDays: "Silence (7 d)", openViolations: "Open violations",
    state: { sealed: "Sealed", stamp_pending: "Stamp pending", open: "Open (today)", silence: "Silence", no_data: "No data" },
    job: { running: "exporting…", done: "ready", failed: "failed" },
  },
};

type Deep<T> = { [K in keyof T]: T[K] extends string ? string : Deep<T[K]> };
export type Dict = Deep<typeof en>;
