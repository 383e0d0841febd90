/**
 * The site protocol, version 1: what process servers, master targets and agents send to the
 * control plane and the commands they receive from it (docs/control-plane-api.md). The
 * control plane validates with these schemas; sites use the inferred types.
 */
import { z } from 'zod';

export const SITE_PROTOCOL_VERSION = 1;

export const SITE_ROLES = ['process-server', 'master-target', 'agent'] as const;
export type SiteRole = (typeof SITE_ROLES)[number];

export const STREAM_STATES = [
  'INITIAL_SYNC', 'CONTINUOUS', 'BACKLOG', 'RESYNC', 'PAUSED', 'STALLED', 'DISCONNECTED', 'FAILED_OVER', 'REPROTECTING',
] as const;
export type StreamStateName = (typeof STREAM_STATES)[number];

const label = z.string().min(1).max(128);

export const EnrollRequest = z.object({
  registrationKey: z.string().min(1).max(256),
  role: z.enum(SITE_ROLES),
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1-64 letters, digits, dot, dash or underscore'),
  siteName: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1-64 letters, digits, dot, dash or underscore'),
  /** Process servers and master targets: the URL their peers use to reach them. */
  url: z.url({ protocol: /^https?$/ }).max(2048).optional(),
  softwareVersion: z.string().max(64).optional(),
  /** Agents: the machine's identity and its disks. */
  hostname: z.string().max(253).optional(),
  os: z.string().max(128).optional(),
  disks: z.array(z.object({ name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/), sizeBytes: z.number().int().nonnegative() })).max(64).optional(),
  /** A PKCS#10 request (PEM, ECDSA P-256) for the component's certificate (docs/security.md). */
  csr: z.string().max(8192).optional(),
});
export type EnrollRequest = z.infer<typeof EnrollRequest>;

export interface EnrollResponse {
  vaultId: string;
  siteId: string;
  role: SiteRole;
  /** The bearer credential of this component; shown once, store it (mode 0600). */
  credential: string;
  /** Process servers and master targets. */
  serverId?: string;
  /** Agents. */
  machineId?: string;
  disks?: { id: string; name: string; sizeBytes: number }[];
  /** With a `csr`: the component's certificate and the vault CA's (PEM), docs/security.md. */
  certificate?: string;
  caCertificate?: string;
}

export const RecoveryPointRef = z.object({
  time: z.iso.datetime(),
  seq: z.number().int().nonnegative().optional(),
  kind: z.enum(['crash-consistent', 'app-consistent', 'group', 'bookmark']).optional(),
});
export type RecoveryPointRef = z.infer<typeof RecoveryPointRef>;

export const DiskReport = z.object({
  machineId: z.string().max(64),
  diskId: z.string().max(64),
  state: z.enum(STREAM_STATES),
  lagSeconds: z.number().nonnegative(),
  backlogBytes: z.number().int().nonnegative(),
  latestPoint: RecoveryPointRef.optional(),
});
export type DiskReport = z.infer<typeof DiskReport>;

/** A process server's whole spool: its use, its limit (null: none) and the alert level (80 % warning, 95 % critical). */
export const SpoolReport = z.object({
  usedBytes: z.number().int().nonnegative(),
  limitBytes: z.number().int().positive().nullable(),
  level: z.enum(['ok', 'warning', 'critical', 'full']),
});
export type SpoolReport = z.infer<typeof SpoolReport>;

export const Heartbeat = z.object({
  softwareVersion: z.string().max(64).optional(),
  /** Process servers: their spool (sent at once when its level changes). */
  spool: SpoolReport.optional(),
  disks: z.array(DiskReport).max(1000),
});
export type Heartbeat = z.infer<typeof Heartbeat>;

export const JOB_EVENT_TYPES = ['progress', 'machine-ready', 'machine-failed', 'machine-cleaned', 'machine-bookmarked'] as const;

export const Check = z.object({ name: label, passed: z.boolean(), detail: z.string().max(2048).optional() });
export type Check = z.infer<typeof Check>;

export const JobEvent = z.object({
  jobId: z.string().max(64),
  machineId: z.string().max(64),
  type: z.enum(JOB_EVENT_TYPES),
  message: z.string().max(1024).optional(),
  /** machine-ready: the recovery point the machine was brought up at; machine-bookmarked: the bookmark (first disk). */
  point: RecoveryPointRef.optional(),
  /** machine-ready: boot checks and their results. */
  checks: z.array(Check).max(50).optional(),
  /** machine-ready: evidence, the tail of the booted machine's console (at most 64 KiB). */
  consoleLog: z.string().max(65536).optional(),
  /** machine-failed: what went wrong. */
  error: z.string().max(2048).optional(),
});
export type JobEvent = z.infer<typeof JobEvent>;

export const JobEvents = z.object({ events: z.array(JobEvent).min(1).max(50) });

/** A recovery point as a master target lists it (its own names of kinds). */
export const ListedPoint = z.object({
  id: z.string().max(32),
  seq: z.number().int().nonnegative(),
  time: z.iso.datetime(),
  kind: z.enum(['crash', 'app', 'group', 'bookmark']),
  name: z.string().max(200).optional(),
});
export type ListedPoint = z.infer<typeof ListedPoint>;

/** Most points of each list in a recovery-points report. */
export const MAX_RECENT_POINTS = 50;
export const MAX_MARKED_POINTS = 200;

/**
 * What a master target holds of one disk, compactly: the range of points it keeps, the
 * retention tiers that thin them, the newest points and the marked ones (app-consistent,
 * group, bookmark). Any time in the range picks the newest kept point at or before it.
 */
export const DiskPoints = z.object({
  diskId: z.string().max(64),
  appliedSeq: z.number().int().nonnegative(),
  oldest: ListedPoint.nullable(),
  newest: ListedPoint.nullable(),
  tiers: z.object({
    /** Every point younger than this is kept (null: every point, no tiers). */
    fullSeconds: z.number().nonnegative().nullable(),
    /** Then one a minute until this age, then one an hour. */
    minuteTierSeconds: z.number().nonnegative(),
  }),
  recent: z.array(ListedPoint).max(MAX_RECENT_POINTS),
  marked: z.array(ListedPoint).max(MAX_MARKED_POINTS),
  /**
   * When the master target last deleted journal of this disk inside the retention window to
   * stay within its space limits (absent: not since it started, or an older master target).
   */
  shortenedForSpaceTime: z.iso.datetime().optional(),
});
export type DiskPoints = z.infer<typeof DiskPoints>;

/** `POST /api/v1/site/recovery-points`: a master target's points of the machines it protects. */
export const RecoveryPointsReport = z.object({
  machines: z.array(z.object({ machineId: z.string().max(64), disks: z.array(DiskPoints).max(64) })).min(1).max(20),
});
export type RecoveryPointsReport = z.infer<typeof RecoveryPointsReport>;

/**
 * Where a (test) failover brings machines up: the newest point (`latest`), the newest kept
 * point at or before a time, or one point of one disk by its id (the other disks of the
 * machine come up at the newest kept point at or before that point's time).
 */
export const PointChoice = z.union([
  z.literal('latest'),
  z.object({ time: z.iso.datetime() }).strict(),
  z.object({ id: z.string().regex(/^\d{1,15}$/, 'must be a point id (digits)'), diskId: z.string().max(64) }).strict(),
]);
export type PointChoice = z.infer<typeof PointChoice>;

export interface MachineSpec {
  id: string;
  name: string;
  hostname: string;
  disks: { id: string; name: string; sizeBytes: number }[];
}

export interface PolicySpec {
  id: string;
  rpoThresholdSeconds: number;
  retentionSeconds: number;
  appConsistentIntervalSeconds: number | null;
  bandwidthLimitBytesPerSecond: number | null;
}

export interface ServerRef {
  id: string;
  url: string | null;
}

export interface PlanActionSpec {
  name: string;
  kind: 'script';
  script: string;
  timeoutSeconds: number;
}

interface CommandBase {
  v: 1;
  id: string;
  issuedAt: string;
}

/** Sent to the process server and the master target of a machine when protection starts. */
export interface ProtectionEnableCommand extends CommandBase {
  type: 'protection.enable';
  machine: MachineSpec;
  policy: PolicySpec;
  processServer: ServerRef;
  masterTarget: ServerRef;
}

export interface ProtectionDisableCommand extends CommandBase {
  type: 'protection.disable';
  machineId: string;
}

/** Sent to a master target: bring these machines of one plan group up. */
export interface FailoverStartCommand extends CommandBase {
  type: 'failover.start';
  jobId: string;
  mode: 'test' | 'failover';
  groupIndex: number;
  point: PointChoice;
  bootCheck: boolean;
  /** Console text that means "booted" (literal); absent or null: the master target's own setting. */
  bootConsolePattern?: string | null;
  machines: MachineSpec[];
  preActions: PlanActionSpec[];
  postActions: PlanActionSpec[];
}

/** Sent to a master target: tear down what a test failover brought up. */
export interface TestFailoverCleanupCommand extends CommandBase {
  type: 'test-failover.cleanup';
  jobId: string;
  testFailoverJobId: string;
  machineIds: string[];
}

/** Sent to a process server: have the agents of these machines tag a bookmark on every disk. */
export interface BookmarkRequestCommand extends CommandBase {
  type: 'bookmark.request';
  jobId: string;
  name: string;
  machines: MachineSpec[];
}

export type SiteCommand = ProtectionEnableCommand | ProtectionDisableCommand | FailoverStartCommand | TestFailoverCleanupCommand | BookmarkRequestCommand;
export type SiteCommandType = SiteCommand['type'];

/** One command as polled: acknowledge it with its `receipt` once it is carried out. */
export interface PolledCommand {
  receipt: string;
  receiveCount: number;
  command: SiteCommand;
}

export interface AgentAssignment {
  machineId: string;
  disks: { id: string; name: string; sizeBytes: number }[];
  processServer: ServerRef | null;
}

/**
 * A process server's question "is this an agent credential of a machine assigned to me?"
 * (`POST /api/v1/site/agents/verify`) and its answer.
 */
export const AgentVerificationRequest = z.object({ credential: z.string().min(1).max(256) });
export type AgentVerificationRequest = z.infer<typeof AgentVerificationRequest>;

export type AgentVerification =
  | { valid: true; machineId: string; machineName: string; disks: { id: string; name: string }[] }
  | { valid: false; reason: string };

/** Version of the revocation list that `GET /api/v1/site/revocations` serves (docs/security.md). */
export const REVOCATION_LIST_VERSION = 1 as const;

/** One revoked certificate of the vault, until it would have expired. */
export interface RevokedCertificateEntry {
  /** Lowercase hex, no leading zeros (`core/tls/serial.ts`). */
  serial: string;
  revokedAt: string;
  notAfter: string;
  role: string;
  subjectId: string;
  name: string;
}

export interface RevocationListResponse {
  v: 1;
  vaultId: string;
  revoked: RevokedCertificateEntry[];
}

/** `POST /api/v1/site/certificate/renew`: the current certificate, the new key's request, and the request signed by the current key. */
export interface RenewalRequest {
  certificate: string;
  csr: string;
  signature: string;
}

export interface RenewedCertificate {
  certificate: string;
  caCertificate: string;
  notAfter: string;
  serial: string;
}
