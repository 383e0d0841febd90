/**
 * The client sites use to talk to the control plane (docs/control-plane-api.md): enroll with
 * a registration key, then, with the credential received, long-poll commands, acknowledge
 * them, send heartbeats with disk metrics and report job events. Sites only call out.
 *
 * @example
 *   const enrollment = await enroll(url, { registrationKey, role: 'master-target', name: 'mt1', siteName: 'dr' });
 *   const cp = new ControlPlaneClient({ url, credential: enrollment.credential });
 *   for (const { receipt, command } of await cp.pollCommands({ waitSeconds: 20 })) {
 *     await carryOut(command);
 *     await cp.ackCommand(receipt);
 *   }
 */
import { remoteError, requestJson, type PeerResponse } from '../http/client.ts';
import type {
  AgentAssignment,
  AgentVerification,
  EnrollRequest,
  EnrollResponse,
  Heartbeat,
  JobEvent,
  PolledCommand,
  RecoveryPointsReport,
  RenewalRequest,
  RenewedCertificate,
  RevocationListResponse,
} from './protocol.ts';

export type { AgentAssignment, EnrollRequest, EnrollResponse } from './protocol.ts';

export const API_PATH = '/api/v1';
/** Extra time a long poll is given over its wait before the client gives up on it. */
const POLL_GRACE_MS = 10_000;

/** `http://host:port` or `http://host:port/api/v1` → the API's base URL. */
export function apiBase(url: string): string {
  const trimmed = url.replace(/\/+$/, '');
  return trimmed.endsWith(API_PATH) ? trimmed : trimmed + API_PATH;
}

function check<T>(base: string, r: PeerResponse<T>, ...ok: number[]): T {
  if (!ok.includes(r.status)) throw remoteError(base, r);
  return r.body;
}

/**
 * Enrolls this component in the vault of `request.registrationKey`. The answer's `credential`
 * is shown once: keep it (file mode 0600) and pass it to `ControlPlaneClient`.
 */
export async function enroll(url: string, request: EnrollRequest, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<EnrollResponse> {
  const base = apiBase(url);
  return check(base, await requestJson<EnrollResponse>(base, 'POST', '/enroll', request, options), 201);
}

export interface ControlPlaneClientOptions {
  /** The control plane's URL, e.g. `https://abc.execute-api.eu-west-1.amazonaws.com`. */
  readonly url: string;
  /** This component's credential, from `enroll`. */
  readonly credential: string;
  /** Timeout of calls other than the long poll. @default 30000 */
  readonly timeoutMs?: number;
}

export class ControlPlaneClient {
  readonly #base: string;
  readonly #credential: string;
  readonly #timeoutMs: number;

  constructor(options: ControlPlaneClientOptions) {
    this.#base = apiBase(options.url);
    this.#credential = options.credential;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  #call<T>(method: string, path: string, body: unknown, extra: { timeoutMs?: number; signal?: AbortSignal } = {}) {
    return requestJson<T>(this.#base, method, path, body, { token: this.#credential, timeoutMs: extra.timeoutMs ?? this.#timeoutMs, signal: extra.signal });
  }

  /**
   * Waits up to `waitSeconds` (0-20) for commands of this process server or master target.
   * Each must be acknowledged with `ackCommand` once carried out; one that is not is offered
   * again after the visibility timeout (so carrying out a command must be idempotent).
   */
  async pollCommands(options: { waitSeconds?: number; maxCommands?: number; signal?: AbortSignal } = {}): Promise<PolledCommand[]> {
    const wait = options.waitSeconds ?? 20;
    const query = `?waitSeconds=${wait}&maxCommands=${options.maxCommands ?? 10}`;
    const r = await this.#call<{ commands: PolledCommand[] }>('GET', `/site/commands${query}`, undefined, {
      timeoutMs: wait * 1000 + POLL_GRACE_MS, signal: options.signal,
    });
    return check(this.#base, r, 200).commands;
  }

  /** Acknowledges one command (or several) by the receipt it was polled with. */
  async ackCommand(receipt: string | string[], options: { signal?: AbortSignal } = {}): Promise<void> {
    const receipts = Array.isArray(receipt) ? receipt : [receipt];
    check(this.#base, await this.#call('POST', '/site/commands/ack', { receipts }, options), 200);
  }

  /** Reports liveness and the state, lag and backlog of the disks this server handles. */
  async sendHeartbeat(heartbeat: Heartbeat, options: { signal?: AbortSignal } = {}): Promise<void> {
    check(this.#base, await this.#call('POST', '/site/heartbeat', heartbeat, options), 202);
  }

  /** Reports progress or the outcome of a job's machine (master targets). */
  async sendJobEvent(event: JobEvent | JobEvent[], options: { signal?: AbortSignal } = {}): Promise<void> {
    const events = Array.isArray(event) ? event : [event];
    check(this.#base, await this.#call('POST', '/site/job-events', { events }, options), 202);
  }

  /** Master targets: the recovery points they keep of the machines they protect. */
  async sendRecoveryPoints(report: RecoveryPointsReport, options: { signal?: AbortSignal } = {}): Promise<void> {
    check(this.#base, await this.#call('POST', '/site/recovery-points', report, options), 200);
  }

  /** Agents: their machine, disk ids and the process server to push to (null until protected). */
  async getAssignment(options: { signal?: AbortSignal } = {}): Promise<AgentAssignment> {
    return check(this.#base, await this.#call<AgentAssignment>('GET', '/site/assignment', undefined, options), 200);
  }

  /**
   * Process servers: whether `agentCredential` belongs to an agent whose machine is assigned to
   * this process server, and if so which machine. Cache the answer briefly, not for long:
   * protection may be disabled at any time.
   */
  async verifyAgent(agentCredential: string, options: { signal?: AbortSignal } = {}): Promise<AgentVerification> {
    return check(this.#base, await this.#call<AgentVerification>('POST', '/site/agents/verify', { credential: agentCredential }, options), 200);
  }

  /** Process servers and master targets: the vault's revoked certificates (docs/security.md). */
  async getRevocations(options: { signal?: AbortSignal } = {}): Promise<RevocationListResponse> {
    return check(this.#base, await this.#call<RevocationListResponse>('GET', '/site/revocations', undefined, options), 200);
  }

  /** A new certificate of this component's identity, for the key of `request.csr`. */
  async renewCertificate(request: RenewalRequest, options: { signal?: AbortSignal } = {}): Promise<RenewedCertificate> {
    return check(this.#base, await this.#call<RenewedCertificate>('POST', '/site/certificate/renew', request, options), 201);
  }
}
