/**
 * The local stacks of the CLI, each in one process:
 * - `startLocalStack`: master target and process server sharing a plain token (the demo, labs);
 * - `startUpStack`: what `tidemark up` runs: the control plane on port N, a process server on
 *   N+1 and a master target on N+2, enrolled with the control plane on first start (through
 *   its own API and the admin token) and reusing their credentials after; the master target
 *   serves point-in-time views over NBD on N+3, so test failovers and drills open views and
 *   boot replicas under QEMU.
 */
import { join } from 'node:path';
import { mkdir, readFile } from 'node:fs/promises';
import { ControlPlaneClient } from '../core/control-plane/client.ts';
import { ENROLLMENT_FILE, enrollOnce, loadEnrollment } from '../core/control-plane/enrollment-file.ts';
import { loadIdentityDir, saveIdentityDir } from '../core/tls/tls-identity.ts';
import { createCsr, generateKeyPair } from '../core/tls/x509.ts';
import { liveIdentity, masterTargetTls, processServerTls, serverIdentity } from './server-tls.ts';
import { startEnrollmentRenewal } from './enrollment-renewal.ts';
import { TidemarkError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/fsutil.ts';
import { remoteError, requestJson } from '../core/http/client.ts';
import { createLogger, type LogLevel } from '../core/log.ts';
import { startControlPlane } from '../functions/local.ts';
import { startMasterTarget } from '../master-target/server.ts';
import { startMasterTargetSiteLink } from '../master-target/site-link/site-link.ts';
import { startProcessServer } from '../process-server/server.ts';

export const SOFTWARE_VERSION = '0.1.0';

export interface LocalStackOptions {
  dataDir: string;
  host?: string;
  /** Port of the process server; the master target takes the next one. 0 picks free ports. */
  port: number;
  token?: string;
  retentionSeconds?: number;
  logLevel?: LogLevel;
}

export interface LocalStack {
  processServerUrl: string;
  masterTargetUrl: string;
  close(): Promise<void>;
}

export async function startLocalStack(o: LocalStackOptions): Promise<LocalStack> {
  await mkdir(o.dataDir, { recursive: true });
  const host = o.host ?? '127.0.0.1';
  const mt = await startMasterTarget({
    dataDir: join(o.dataDir, 'master-target'),
    host,
    port: o.port === 0 ? 0 : o.port + 1,
    token: o.token,
    retentionSeconds: o.retentionSeconds ?? 24 * 3600,
    log: createLogger('master-target', { level: o.logLevel ?? 'info' }),
  });
  const ps = await startProcessServer({
    dataDir: join(o.dataDir, 'process-server'),
    host,
    port: o.port,
    masterTargetUrl: mt.url,
    token: o.token,
    log: createLogger('process-server', { level: o.logLevel ?? 'info' }),
  });
  return {
    processServerUrl: ps.url,
    masterTargetUrl: mt.url,
    async close() {
      await ps.close();
      await mt.close();
    },
  };
}

export interface UpStackOptions {
  dataDir: string;
  /** The control plane's port; the process server takes N+1, the master target N+2 and its NBD views N+3. */
  port: number;
  host?: string;
  /**
   * Shared token between the process server and the master target, used only by data folders
   * enrolled before certificates existed (they run without TLS, as they did).
   */
  token: string;
  retentionSeconds?: number;
  /** Interval of the control plane's scheduler pass (drills, deadlines, stale reports). */
  scheduleIntervalMs?: number;
  /** How often the process server reports its disks. */
  heartbeatIntervalMs?: number;
  /** Lifetime of the registration key made for agents at each start. @default 24 h */
  registrationKeyTtlSeconds?: number;
  /** The servers renew their certificates with less than this share of the lifetime left. @default DEFAULT_RENEW_FRACTION */
  renewFraction?: number;
  /** How often the servers fetch the vault's revocation list. @default DEFAULT_REVOCATION_POLL_INTERVAL_MS */
  revocationPollIntervalMs?: number;
  logLevel?: LogLevel;
}

export interface UpStack {
  controlPlaneUrl: string;
  processServerUrl: string;
  masterTargetUrl: string;
  /** Where the master target serves views (`nbd://host:port`). */
  nbdUrl: string;
  adminTokenPath: string;
  vaultId: string;
  /** The policy made on first start (`default`). */
  policyId: string;
  /** A registration key made at this start, for agents. */
  registrationKey: string;
  registrationKeyExpiresAt: string;
  /** True when the process server and master target speak mutual TLS with the vault CA. */
  secure: boolean;
  /** With `secure`: the operator certificate folder for the CLI (key.pem, cert.pem, ca.pem). */
  operatorIdentityDir?: string;
  close(): Promise<void>;
}

/** True when a server of `dirs` enrolled before certificates existed (no TLS for that data folder). */
async function enrolledWithoutCertificates(dirs: string[]): Promise<boolean> {
  for (const d of dirs) {
    const e = await loadEnrollment(join(d, ENROLLMENT_FILE));
    if (e && !e.certificate) return true;
  }
  return false;
}

/** What `up` keeps between starts (DIR/up.json, mode 0600), format version 1. */
interface UpState {
  v: 1;
  vaultId: string;
  policyId: string;
}

class UpError extends TidemarkError {}

export async function startUpStack(o: UpStackOptions): Promise<UpStack> {
  if (!(o.port > 0 && o.port < 65533)) {
    throw new UpError(`up needs a fixed port below 65533, not ${o.port}`, { hint: 'the process server and the master target are enrolled with their URLs (ports N+1 and N+2); views take N+3' });
  }
  await mkdir(o.dataDir, { recursive: true, mode: 0o700 });
  const host = o.host ?? '127.0.0.1';
  const level = o.logLevel ?? 'info';
  const log = createLogger('up', { level });
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const c of closers.reverse()) await c().catch((err) => log.error('close failed', { error: err as Error }));
  };
  try {
    const cp = await startControlPlane({
      dataDir: o.dataDir, port: o.port, host, scheduleIntervalMs: o.scheduleIntervalMs, log: createLogger('control-plane', { level }),
    });
    closers.push(() => cp.close());
    const admin = async <T>(method: string, path: string, body?: unknown, ok = 201): Promise<T> => {
      const r = await requestJson<T>(`${cp.url}/api/v1`, method, path, body, { token: cp.adminToken });
      if (r.status !== ok) throw remoteError(cp.url, r);
      return r.body;
    };

    const statePath = join(o.dataDir, 'up.json');
    let state = await readFile(statePath, 'utf8').then((t) => JSON.parse(t) as UpState, () => undefined);
    if (state && state.v !== 1) throw new UpError(`${statePath} has unknown format version ${String(state.v)}`, { hint: 'use the tidemark version that made it, or a new --data folder' });
    if (!state) {
      const vault = await admin<{ id: string }>('POST', '/vaults', { name: 'local' });
      const policy = await admin<{ id: string }>('POST', `/vaults/${vault.id}/policies`, { name: 'default', rpoThresholdSeconds: 300, retentionSeconds: o.retentionSeconds ?? 24 * 3600 });
      state = { v: 1, vaultId: vault.id, policyId: policy.id };
      await writeFileAtomic(statePath, JSON.stringify(state, null, 2) + '\n');
      log.info('vault created', { vaultId: vault.id, policyId: policy.id });
    }
    const key = await admin<{ key: string; expiresAt: string }>('POST', `/vaults/${state.vaultId}/registration-keys`, { ttlSeconds: o.registrationKeyTtlSeconds ?? 24 * 3600 });

    const psPort = o.port + 1;
    const mtPort = o.port + 2;
    const nbdPort = o.port + 3;
    const psDir = join(o.dataDir, 'process-server');
    const mtDir = join(o.dataDir, 'master-target');
    const secure = !(await enrolledWithoutCertificates([psDir, mtDir]));
    if (!secure) log.warn('this data folder was enrolled without certificates: the process server and master target run without TLS, with the shared token', { dataDir: o.dataDir });
    const scheme = secure ? 'https' : 'http';
    const psUrl = `${scheme}://${host}:${psPort}`;
    const mtUrl = `${scheme}://${host}:${mtPort}`;
    const enrollServer = async (dir: string, role: 'process-server' | 'master-target', url: string, siteName: string) => {
      await mkdir(dir, { recursive: true });
      const { enrollment, enrolledNow } = await enrollOnce(join(dir, ENROLLMENT_FILE), cp.url, () => ({
        registrationKey: key.key, role, name: `local-${role === 'process-server' ? 'ps' : 'mt'}`, siteName, url, softwareVersion: SOFTWARE_VERSION,
      }));
      if (enrolledNow) log.info('enrolled', { role, serverId: enrollment.serverId, url });
      if (enrollment.vaultId !== state!.vaultId) {
        throw new UpError(`${join(dir, ENROLLMENT_FILE)} belongs to vault ${enrollment.vaultId}, not ${state!.vaultId}`, { hint: 'move it away to enroll again' });
      }
      const server = await admin<{ url: string | null }>('GET', `/vaults/${enrollment.vaultId}/servers/${enrollment.serverId}`, undefined, 200);
      if (server.url !== url) log.warn('enrolled with another URL: agents and peers are told that one', { role, enrolledUrl: server.url, url });
      return enrollment;
    };
    const psEnrollment = await enrollServer(psDir, 'process-server', psUrl, 'primary');
    const mtEnrollment = await enrollServer(mtDir, 'master-target', mtUrl, 'secondary');
    const psIdentity = secure ? await serverIdentity(psDir, psEnrollment) : undefined;
    const mtIdentity = secure ? await serverIdentity(mtDir, mtEnrollment) : undefined;
    const psLive = psIdentity && await liveIdentity(psDir, psIdentity, psEnrollment);
    const mtLive = mtIdentity && await liveIdentity(mtDir, mtIdentity, mtEnrollment);
    const operatorDir = join(o.dataDir, 'operator');
    if (secure && !(await loadIdentityDir(operatorDir))) {
      const keys = await generateKeyPair();
      const issued = await admin<{ certificate: string; caCertificate: string }>('POST', `/vaults/${state.vaultId}/operator-certificates`, { name: 'local-operator', csr: await createCsr(keys, 'local-operator') });
      await saveIdentityDir(operatorDir, { key: keys.privateKeyPem, cert: issued.certificate, ca: issued.caCertificate });
      log.info('operator certificate made', { dir: operatorDir });
    }
    const mtTls = mtLive && await masterTargetTls(mtDir, mtLive.identity, mtEnrollment);
    const token = secure ? undefined : o.token;

    const mt = await startMasterTarget({
      dataDir: mtDir, host, port: mtPort, token, retentionSeconds: o.retentionSeconds ?? 24 * 3600,
      nbd: { host, port: nbdPort },
      ...(mtTls ? { tls: mtTls.tls, peers: mtTls.peers, revocations: mtLive!.revocations } : {}),
      log: createLogger('master-target', { level }),
    });
    closers.push(() => mt.close());
    const mtLink = await startMasterTargetSiteLink({
      client: new ControlPlaneClient({ url: cp.url, credential: mtEnrollment.credential }),
      masterTargetUrl: mt.url, token, tls: mtTls?.siteLinkTls, ingestAssignments: mtTls?.ingestAssignments, dataDir: mtDir, log: createLogger('master-target', { level }), softwareVersion: SOFTWARE_VERSION,
      revocations: mtLive?.revocations, revocationPollIntervalMs: o.revocationPollIntervalMs,
    });
    closers.push(() => mtLink.close());
    const ps = await startProcessServer({
      dataDir: psDir, host, port: psPort, masterTargetUrl: mt.url, token,
      ...(psLive ? { tls: processServerTls(psLive.identity, psEnrollment), revocations: psLive.revocations } : {}),
      log: createLogger('process-server', { level }),
      controlPlane: {
        url: cp.url, credential: psEnrollment.credential, heartbeatIntervalMs: o.heartbeatIntervalMs, softwareVersion: SOFTWARE_VERSION,
        revocationPollIntervalMs: o.revocationPollIntervalMs,
      },
    });
    closers.push(() => ps.close());
    for (const [dir, e, live] of [[psDir, psEnrollment, psLive], [mtDir, mtEnrollment, mtLive]] as const) {
      if (!live) continue;
      const renewal = startEnrollmentRenewal(dir, e, live.identity, { renewFraction: o.renewFraction, log });
      closers.push(() => renewal.close());
    }

    return {
      controlPlaneUrl: cp.url,
      processServerUrl: ps.url,
      masterTargetUrl: mt.url,
      nbdUrl: `nbd://${host}:${nbdPort}`,
      adminTokenPath: cp.adminTokenPath,
      vaultId: state.vaultId,
      policyId: state.policyId,
      registrationKey: key.key,
      registrationKeyExpiresAt: key.expiresAt,
      secure,
      ...(secure ? { operatorIdentityDir: operatorDir } : {}),
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
