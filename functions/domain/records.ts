/**
 * The control plane's resources as stored and as served: one zod schema each, from which the
 * TypeScript types and the OpenAPI document both come. Stored objects wrap a record in the
 * envelope `{ v: 1, kind, record }` (docs/control-plane-store.md).
 */
import { z } from '@hono/zod-openapi';
import { idPattern, type IdKind } from './ids.ts';
import { PointChoice } from '../../core/control-plane/protocol.ts';

/** A schema for ids of one kind. */
export const idOf = (kind: IdKind) => z.string().regex(idPattern(kind), `must be a ${kind} id`);
const time = z.string().describe('ISO 8601 time');
const name = z.string().min(1).max(128);

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export const Role = z.enum(ROLES);
export type Role = z.infer<typeof Role>;

export const STREAM_STATES = [
  'INITIAL_SYNC', 'CONTINUOUS', 'BACKLOG', 'RESYNC', 'PAUSED', 'STALLED', 'DISCONNECTED', 'FAILED_OVER', 'REPROTECTING',
] as const;
export const StreamState = z.enum(STREAM_STATES);
export type StreamState = z.infer<typeof StreamState>;

export const SERVER_ROLES = ['process-server', 'master-target'] as const;
export const ServerRole = z.enum(SERVER_ROLES);
export type ServerRole = z.infer<typeof ServerRole>;

export const Vault = z.object({ id: idOf('vault'), name, createdAt: time }).openapi('Vault');
export type Vault = z.infer<typeof Vault>;

export const RegistrationKey = z.object({
  id: idOf('registrationKey'),
  vaultId: idOf('vault'),
  secretSha256: z.string(),
  createdAt: time,
  expiresAt: time,
  revoked: z.boolean(),
  /** How many enrollments the key allows (null or absent: any number until it expires). */
  maxUses: z.number().int().positive().nullable().optional(),
  /** Enrollments made with it so far. */
  uses: z.number().int().nonnegative().optional(),
});
export type RegistrationKey = z.infer<typeof RegistrationKey>;

export const Principal = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('server'), serverId: idOf('server'), role: ServerRole }),
  z.object({ kind: z.literal('agent'), machineId: idOf('machine') }),
]);
export type SitePrincipal = z.infer<typeof Principal>;

export const Credential = z.object({
  id: idOf('credential'),
  vaultId: idOf('vault'),
  principal: Principal,
  secretSha256: z.string(),
  createdAt: time,
  revoked: z.boolean(),
});
export type Credential = z.infer<typeof Credential>;

export const OperatorToken = z.object({
  id: idOf('operatorToken'),
  name,
  role: Role,
  secretSha256: z.string(),
  createdAt: time,
});
export type OperatorToken = z.infer<typeof OperatorToken>;

export const Site = z.object({ id: idOf('site'), vaultId: idOf('vault'), name, createdAt: time }).openapi('Site');
export type Site = z.infer<typeof Site>;

export const Server = z.object({
  id: idOf('server'),
  vaultId: idOf('vault'),
  siteId: idOf('site'),
  role: ServerRole,
  name,
  url: z.string().nullable().describe('where agents (process server) or process servers (master target) reach it'),
  enrolledAt: time,
  lastHeartbeatAt: time.nullable(),
  softwareVersion: z.string().nullable(),
  spool: z.object({
    usedBytes: z.number().int().nonnegative(),
    limitBytes: z.number().int().positive().nullable(),
    level: z.enum(['ok', 'warning', 'critical', 'full']),
  }).optional().describe('process servers: the whole spool as last reported; level warning at 80 %, critical at 95 %'),
}).openapi('Server');
export type Server = z.infer<typeof Server>;

export const RecoveryPointRef = z.object({
  time,
  seq: z.number().int().nonnegative().optional(),
  kind: z.enum(['crash-consistent', 'app-consistent', 'group', 'bookmark']).optional(),
}).openapi('RecoveryPointRef');

export const Disk = z.object({
  id: idOf('disk'),
  name,
  sizeBytes: z.number().int().nonnegative(),
  state: StreamState.nullable().describe('null until a site reports it'),
  lagSeconds: z.number().nonnegative().nullable(),
  backlogBytes: z.number().int().nonnegative().nullable(),
  latestPoint: RecoveryPointRef.nullable(),
  reportedAt: time.nullable(),
}).openapi('Disk');
export type Disk = z.infer<typeof Disk>;

export const Protection = z.object({
  policyId: idOf('policy'),
  processServerId: idOf('server'),
  masterTargetId: idOf('server'),
  enabledAt: time,
}).openapi('Protection');
export type Protection = z.infer<typeof Protection>;

export const Machine = z.object({
  id: idOf('machine'),
  vaultId: idOf('vault'),
  siteId: idOf('site'),
  name,
  hostname: z.string().max(253),
  os: z.string().max(128),
  disks: z.array(Disk),
  protection: Protection.nullable(),
  enrolledAt: time,
}).openapi('Machine');
export type Machine = z.infer<typeof Machine>;

export const Policy = z.object({
  id: idOf('policy'),
  vaultId: idOf('vault'),
  name,
  rpoThresholdSeconds: z.number().int().positive(),
  retentionSeconds: z.number().int().positive(),
  appConsistentIntervalSeconds: z.number().int().positive().nullable(),
  bandwidthLimitBytesPerSecond: z.number().int().positive().nullable(),
  createdAt: time,
}).openapi('Policy');
export type Policy = z.infer<typeof Policy>;

export const PlanAction = z.object({
  name,
  kind: z.literal('script').describe('a script the master target runs'),
  script: z.string().min(1).max(4096),
  timeoutSeconds: z.number().int().positive().max(3600),
}).openapi('PlanAction');
export type PlanAction = z.infer<typeof PlanAction>;

export const PlanGroup = z.object({
  name,
  machineIds: z.array(idOf('machine')).min(1).max(100),
  preActions: z.array(PlanAction).max(10),
  postActions: z.array(PlanAction).max(10),
}).openapi('PlanGroup');
export type PlanGroup = z.infer<typeof PlanGroup>;

export const Plan = z.object({
  id: idOf('plan'),
  vaultId: idOf('vault'),
  name,
  groups: z.array(PlanGroup).min(1).max(20),
  bootCheck: z.boolean().describe('drills and test failovers boot each machine and check its console'),
  bootConsolePattern: z.string().min(1).max(200).nullable().optional()
    .describe("text the replica's serial console must print to count as booted (literal); null: the master target's own setting"),
  createdAt: time,
}).openapi('Plan');
export type Plan = z.infer<typeof Plan>;

export const JOB_KINDS = ['test-failover', 'failover', 'cleanup', 'bookmark'] as const;
export const JobKind = z.enum(JOB_KINDS);
export type JobKind = z.infer<typeof JobKind>;
export const JOB_STATES = ['running', 'succeeded', 'failed'] as const;
export const JobState = z.enum(JOB_STATES);
export type JobState = z.infer<typeof JobState>;
export const STEP_STATES = ['pending', 'sent', 'ready', 'cleaned', 'failed'] as const;

export const Check = z.object({ name: z.string().max(128), passed: z.boolean(), detail: z.string().max(2048).optional() }).openapi('Check');
export type Check = z.infer<typeof Check>;

export const JobStep = z.object({
  machineId: idOf('machine'),
  groupIndex: z.number().int().nonnegative(),
  masterTargetId: idOf('server'),
  processServerId: idOf('server').optional().describe('bookmark jobs: the process server that carries the step out'),
  state: z.enum(STEP_STATES),
  point: RecoveryPointRef.nullable(),
  readyAt: time.nullable(),
  checks: z.array(Check),
  consoleLog: z.string().nullable().describe('evidence: the console of the booted machine'),
  error: z.string().nullable(),
}).openapi('JobStep');
export type JobStep = z.infer<typeof JobStep>;

export const JobEventRecord = z.object({
  at: time,
  type: z.string(),
  message: z.string(),
  machineId: idOf('machine').nullable(),
}).openapi('JobEvent');
export type JobEventRecord = z.infer<typeof JobEventRecord>;

export const Job = z.object({
  id: idOf('job'),
  vaultId: idOf('vault'),
  kind: JobKind,
  planId: idOf('plan'),
  state: JobState,
  progressPercent: z.number().min(0).max(100),
  currentGroup: z.number().int().nonnegative(),
  steps: z.array(JobStep),
  events: z.array(JobEventRecord),
  drillId: idOf('drill').nullable(),
  testFailoverJobId: idOf('job').nullable().describe('cleanup jobs: the test failover they undo'),
  point: PointChoice.optional().describe("(test) failovers: the point asked for ('latest', {time} or {id, diskId}); absent: latest"),
  bootConsolePattern: z.string().nullable().optional().describe("(test) failovers: the plan's boot console pattern when the job started"),
  bookmarkName: z.string().optional().describe('bookmark jobs: the name tagged'),
  createdBy: z.string(),
  createdAt: time,
  deadlineAt: time,
  finishedAt: time.nullable(),
  error: z.string().nullable(),
}).openapi('Job');
export type Job = z.infer<typeof Job>;

export const Drill = z.object({
  id: idOf('drill'),
  vaultId: idOf('vault'),
  planId: idOf('plan'),
  intervalSeconds: z.number().int().min(60),
  nextRunAt: time,
  enabled: z.boolean(),
  phase: z.enum(['idle', 'testing', 'cleaning']),
  testJobId: idOf('job').nullable(),
  cleanupJobId: idOf('job').nullable(),
  lastReportId: idOf('drillReport').nullable(),
  createdAt: time,
}).openapi('Drill');
export type Drill = z.infer<typeof Drill>;

export const DrillMachineResult = z.object({
  machineId: idOf('machine'),
  ready: z.boolean(),
  point: RecoveryPointRef.nullable(),
  pointAgeSeconds: z.number().nullable().describe('how old the point used was when the drill started'),
  timeToReadySeconds: z.number().nullable(),
  checks: z.array(Check),
  consoleLog: z.string().nullable(),
  error: z.string().nullable(),
}).openapi('DrillMachineResult');

export const DrillReport = z.object({
  id: idOf('drillReport'),
  vaultId: idOf('vault'),
  drillId: idOf('drill'),
  planId: idOf('plan'),
  testJobId: idOf('job'),
  cleanupJobId: idOf('job').nullable(),
  startedAt: time,
  finishedAt: time,
  outcome: z.enum(['passed', 'failed']),
  timeToReadySeconds: z.number().nullable().describe('from the start until the last machine was ready'),
  checksPassed: z.number().int().nonnegative(),
  checksTotal: z.number().int().nonnegative(),
  cleanedUp: z.boolean(),
  bootConsolePattern: z.string().nullable().optional().describe('the console text the boot check waited for (null: the master target\'s own setting)'),
  error: z.string().nullable().describe('why the drill could not run or failed'),
  machines: z.array(DrillMachineResult),
}).openapi('DrillReport');
export type DrillReport = z.infer<typeof DrillReport>;

export const ALERT_KINDS = ['rpo-exceeded', 'stream-stalled', 'resync-needed', 'retention-shortened'] as const;
export const AlertKind = z.enum(ALERT_KINDS);
export type AlertKind = z.infer<typeof AlertKind>;

export const Alert = z.object({
  id: idOf('alert'),
  vaultId: idOf('vault'),
  kind: AlertKind,
  machineId: idOf('machine'),
  diskId: idOf('disk'),
  state: z.enum(['active', 'cleared']),
  message: z.string(),
  raisedAt: time,
  clearedAt: time.nullable(),
}).openapi('Alert');
export type Alert = z.infer<typeof Alert>;

export const AuditEntry = z.object({
  id: idOf('audit'),
  vaultId: idOf('vault').nullable(),
  at: time,
  actor: z.object({ tokenId: z.string(), name: z.string(), role: Role }),
  action: z.string(),
  targetId: z.string().nullable(),
  detail: z.record(z.string(), z.unknown()),
}).openapi('AuditEntry');
export type AuditEntry = z.infer<typeof AuditEntry>;
