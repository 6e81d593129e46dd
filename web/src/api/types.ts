// Short names for the generated schema types (schema.gen.ts is generated; this file only names).
import type { components } from "./schema.gen";

type S = components["schemas"];

export type Me = S["UserSummary"];
export type MfaEnrolment = S["MfaEnrolment"];
export type EventOut = S["EventOut"];
export type ArchiveLine = S["ArchiveLineOut"];
export type Device = S["DeviceOut"];
export type User = S["UserOut"];
export type Role = S["RoleOut"];
export type Grant = S["GrantOut"];
export type Location = S["LocationOut"];
export type DeviceGroup = S["DeviceGroupOut"];
export type AuditEntry = S["AuditEntryOut"];
