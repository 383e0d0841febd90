/**
 * What the control plane runs on. Lambda (`lambda/*.ts`) and the local process (`local.ts`)
 * each build one of these from their configuration; nothing below reads the environment.
 */
import type { Logger } from '../core/log.ts';
import type { MessageQueue, QueueProvider } from './queue/message-queue.ts';
import { Repository } from './domain/repository.ts';
import type { ObjectStore } from './store/object-store.ts';

export interface ControlPlaneSettings {
  /** Lifetime of a registration key unless its creator says otherwise. */
  readonly registrationKeyTtlSeconds: number;
  /** How long a polled command stays invisible before it is offered again. */
  readonly commandVisibilitySeconds: number;
  /** A protected disk with no report for this long raises a stream-stalled alert. */
  readonly reportStaleSeconds: number;
  /** A job still running this long after it started fails. */
  readonly jobTimeoutSeconds: number;
  /** sha256 (hex) of an admin token accepted without a stored record (bootstrap in AWS). */
  readonly bootstrapAdminTokenSha256: string | null;
  /** Lifetime of a component's or operator's certificate (docs/security.md). */
  readonly certificateValiditySeconds: number;
}

/** Default lifetime of a component's or operator's certificate. */
export const CERTIFICATE_VALIDITY_DAYS = 365;

export const DEFAULT_SETTINGS: ControlPlaneSettings = {
  registrationKeyTtlSeconds: 24 * 3600,
  commandVisibilitySeconds: 300,
  reportStaleSeconds: 300,
  jobTimeoutSeconds: 3600,
  bootstrapAdminTokenSha256: null,
  certificateValiditySeconds: CERTIFICATE_VALIDITY_DAYS * 86_400,
};

export interface ControlPlaneDeps {
  readonly store: ObjectStore;
  /** Per-site command queues, one per enrolled process server or master target. */
  readonly siteQueues: QueueProvider;
  /** Heartbeats and job events from sites, applied by `site-events.ts`. */
  readonly siteEvents: MessageQueue;
  /** Milliseconds since the epoch; tests inject a clock. */
  readonly now: () => number;
  readonly log: Logger;
  readonly settings: ControlPlaneSettings;
}

/** The deps plus what is derived from them once. */
export interface Context extends ControlPlaneDeps {
  readonly repo: Repository;
}

export function contextOf(deps: ControlPlaneDeps): Context {
  return { ...deps, repo: new Repository(deps.store) };
}

/** The current time of `ctx` as ISO 8601. */
export function nowIso(ctx: { now: () => number }): string {
  return new Date(ctx.now()).toISOString();
}
