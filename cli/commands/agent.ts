import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { identityOfEnrollment, type TlsIdentity } from '../../core/tls/tls-identity.ts';
import { agentIdentity } from '../agent-identity.ts';
import { UsageError } from '../../core/errors.ts';
import { createLogger } from '../../core/log.ts';
import { runAgent } from '../../edge-agent/agent.ts';
import { enrollAgent, waitForAssignment } from '../../edge-agent/enroll/enroll.ts';
import { ENROLLMENT_FILE } from '../../core/control-plane/enrollment-file.ts';
import type { Logger } from '../../core/log.ts';
import { runTapAgent, DEFAULT_MAX_LOG_BYTES } from '../../edge-agent/tap/tap-agent.ts';
import { tuneHeapForServer } from '../../core/server-heap.ts';
import { parseListen } from '../../core/http/serve.ts';
import { parse, required, optional, parseDurationSeconds, parseUrl, parseBytes } from '../args.ts';
import { progressPrinter } from './progress.ts';
import type { Command } from './command.ts';

export const agentCommand: Command = {
  name: 'agent',
  summary: 'protect disks of this machine: stream their changes to a process server',
  help: `Usage: tidemark agent --state DIR --process-server URL --machine NAME --disk PATH [--disk PATH ...]
                      --mode scan --interval SECONDS [--freeze-cmd CMD] [--thaw-cmd CMD] [--compress] [--token TOKEN]
       tidemark agent --state DIR --process-server URL --machine NAME --disk PATH [--disk PATH ...]
                      --mode tap --nbd HOST:PORT [--max-log-bytes SIZE] [--compress] [--token TOKEN]
                      [--freeze-cmd CMD --thaw-cmd CMD --app-consistent-interval DURATION]
       tidemark agent --state DIR --control-plane URL --key KEY [--site NAME] --machine NAME --disk PATH ... (scan or tap options)
       tidemark agent --state DIR --control-plane URL --key KEY [--site NAME] --machine NAME --disk PATH ... --enroll-only

Protects files or block devices. Disks are named disk0, disk1, ... in the order given.

scan: the initial sync skips zero blocks and resumes where it stopped; then every interval
the disks are rescanned and only changed 64 KiB blocks are sent. Each scan is a recovery point.

tap: each disk is served over NBD (export names disk0, disk1, ...) to its consumer, e.g. a
QEMU guest with -drive file=nbd://HOST:PORT/disk0. Every write is recorded in order before it
is acknowledged; once the initial sync is done, every write boundary is a recovery point.
When the change log fills, changed blocks are tracked in a bitmap and resynced.

  --state DIR           the agent's own state (cursor, block-hash manifest); keep it across restarts
  --process-server URL  e.g. http://ps.local:7401
  --control-plane URL   instead of --process-server: enroll with the control plane (once; the credential
                        is kept in DIR/enrollment.json), wait until protection is enabled, then push to
                        the process server it names, authenticated by this agent's own credential
  --key KEY             registration key for the first enrollment (tidemark up prints one)
  --key-file FILE       read the registration key from the first line of FILE instead
  --enroll-only         enroll (or confirm the kept enrollment), print the machine id and exit (install.sh uses it)
  --site NAME           the site this machine belongs to (default primary)
  --machine NAME        this machine's name in Tidemark
  --disk PATH           a file or block device to protect (repeat for more disks)
  --mode scan|tap       capture mode (default scan)
  --interval SECONDS    scan: time between scans (e.g. 30, 5m)
  --nbd HOST:PORT       tap: where to serve the disks over NBD
  --app-consistent-interval D
                        tap: run the freeze and thaw commands this often and tag an app-consistent point (e.g. 5m)
  --max-log-bytes SIZE  tap: bound of each disk's change log (default ${DEFAULT_MAX_LOG_BYTES / 1024 ** 3}G)
  --freeze-cmd CMD      run before each scan (fsfreeze, a database flush); the point is then app-consistent
  --thaw-cmd CMD        run after each scan's reads, even if the scan failed
  --compress            LZ4 the changes where it pays before sending them (for a thin link to the process
                        server; by default they go as they are and the process server compresses for the WAN)
  --token TOKEN         bearer token for the process server (default: $TIDEMARK_TOKEN)
`,
  async run(argv, env) {
    const { values } = parse('agent', argv, {
      state: { type: 'string' }, 'process-server': { type: 'string' }, machine: { type: 'string' },
      disk: { type: 'string', multiple: true }, mode: { type: 'string' }, interval: { type: 'string' },
      'freeze-cmd': { type: 'string' }, 'thaw-cmd': { type: 'string' }, token: { type: 'string' },
      nbd: { type: 'string' }, 'max-log-bytes': { type: 'string' }, 'app-consistent-interval': { type: 'string' },
      'control-plane': { type: 'string' }, key: { type: 'string' }, 'key-file': { type: 'string' }, site: { type: 'string' },
      'enroll-only': { type: 'boolean' }, compress: { type: 'boolean' },
    });
    const compress = values.compress === true;
    const disks = (values.disk as string[] | undefined) ?? [];
    if (disks.length === 0) throw new UsageError('agent: give at least one --disk PATH', { hint: "see 'tidemark agent --help'" });
    const mode = optional(values, 'mode') ?? 'scan';
    if (mode !== 'scan' && mode !== 'tap') throw new UsageError(`agent: unknown --mode ${mode}`, { hint: 'use --mode scan or --mode tap' });
    const controller = new AbortController();
    const stop = () => controller.abort(new Error('stopped'));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const log = createLogger('agent', { level: env.logLevel });
    // Whatever ends the run, the background work (renewal, revocation list) stops with it.
    try {
      const target = await pushTarget(values, env.token, disks, log, controller.signal, {
        renewFraction: env.certificateRenewFraction, revocationPollIntervalMs: env.revocationPollSeconds && env.revocationPollSeconds * 1000,
      });
      if (!target) return 0;
      if (mode === 'scan' && optional(values, 'app-consistent-interval')) {
        throw new UsageError('agent: --app-consistent-interval is for tap mode', { hint: 'in scan mode every scan runs --freeze-cmd/--thaw-cmd; set how often with --interval' });
      }
      // What both modes take.
      const common = {
        machine: required('agent', values, 'machine'),
        disks,
        stateDir: required('agent', values, 'state'),
        processServerUrl: target.processServerUrl,
        token: target.token,
        tls: target.tls,
        hooks: { freezeCmd: optional(values, 'freeze-cmd'), thawCmd: optional(values, 'thaw-cmd'), timeoutMs: 120_000 },
        compress,
        log,
        signal: controller.signal,
      };
      if (mode === 'tap') {
        const nbd = parseListen(required('agent', values, 'nbd'));
        const maxLog = optional(values, 'max-log-bytes');
        const appInterval = optional(values, 'app-consistent-interval');
        if (appInterval && !optional(values, 'freeze-cmd')) {
          throw new UsageError('agent: --app-consistent-interval needs --freeze-cmd (and usually --thaw-cmd)', { hint: "e.g. --freeze-cmd 'virsh domfsfreeze vm' --thaw-cmd 'virsh domfsthaw vm'" });
        }
        // An NBD server receiving writes allocates steadily (receive areas, records); with V8's
        // defaults a full collection ran every few tens of megabytes (measured when every socket
        // read was also a fresh buffer: about 18 % of the agent's CPU on 1 MiB writes).
        tuneHeapForServer();
        let lastPrint = 0;
        await runTapAgent({
          ...common,
          nbdHost: nbd.host,
          nbdPort: nbd.port,
          maxLogBytes: maxLog ? parseBytes('max-log-bytes', maxLog) : DEFAULT_MAX_LOG_BYTES,
          appConsistentIntervalSeconds: appInterval ? parseDurationSeconds('app-consistent-interval', appInterval) : undefined,
          onListening: (a) => process.stdout.write(`serving ${disks.length} disk(s) over NBD at nbd://${a.host}:${a.port}/disk0\n`),
          onProgress: (disk, phase, done, total) => {
            const now = Date.now();
            if (now - lastPrint < 1000 && done < total) return;
            lastPrint = now;
            if (phase === 'INITIAL_SYNC') process.stdout.write(`${disk}: initial sync ${Math.floor((100 * done) / Math.max(1, total))}%\n`);
            else process.stdout.write(`${disk}: resync, ${(total / 1024 / 1024).toFixed(1)} MiB of changed blocks left\n`);
          },
        });
        return 0;
      }
      await runAgent({
        ...common,
        intervalSeconds: parseDurationSeconds('interval', required('agent', values, 'interval')),
        onEvent: progressPrinter(),
      });
      return 0;
    } finally {
      controller.abort(new Error('stopped'));
    }
  },
};

/**
 * Where the agent pushes and with which credential: a direct `--process-server` with the
 * shared token, or, with `--control-plane`, the process server the control plane assigns,
 * with the agent's own credential (enrolling first if needed). Undefined if stopped meanwhile.
 */
async function pushTarget(
  values: Record<string, unknown>,
  envToken: string | undefined,
  disks: string[],
  log: Logger,
  signal: AbortSignal,
  o: { renewFraction?: number; revocationPollIntervalMs?: number },
): Promise<{ processServerUrl: string; token?: string; tls?: TlsIdentity } | undefined> {
  const v = values as Parameters<typeof optional>[0];
  const controlPlane = optional(v, 'control-plane');
  if (!controlPlane) {
    if (v['enroll-only'] === true) throw new UsageError('agent: --enroll-only needs --control-plane URL');
    return { processServerUrl: parseUrl('process server', required('agent', v, 'process-server')), token: optional(v, 'token') ?? envToken };
  }
  if (optional(v, 'process-server')) throw new UsageError('agent: give --process-server or --control-plane, not both');
  const url = parseUrl('control plane', controlPlane);
  const machine = required('agent', v, 'machine');
  const { enrollment, enrolledNow } = await enrollAgent({
    controlPlaneUrl: url, registrationKey: await registrationKey(v), stateDir: required('agent', v, 'state'),
    machine, siteName: optional(v, 'site') ?? 'primary', disks, signal,
  });
  if (enrolledNow) process.stdout.write(`enrolled ${machine} as ${enrollment.machineId} in vault ${enrollment.vaultId}\n`);
  if (v['enroll-only'] === true) {
    if (!enrolledNow) process.stdout.write(`already enrolled: ${machine} is ${enrollment.machineId} in vault ${enrollment.vaultId}\n`);
    return undefined;
  }
  process.stdout.write('waiting for protection to be enabled\n');
  try {
    const a = await waitForAssignment({ controlPlaneUrl: url, credential: enrollment.credential, log, signal });
    process.stdout.write(`protected: pushing to ${a.processServerUrl}\n`);
    // Over https the agent presents the certificate it got at enrollment (docs/security.md).
    const stateDir = required('agent', v, 'state');
    const enrolled = await identityOfEnrollment(join(stateDir, ENROLLMENT_FILE), enrollment);
    if (a.processServerUrl.startsWith('https:') && !enrolled) {
      throw new UsageError('the process server speaks TLS but this agent enrolled without a certificate', { hint: 'move enrollment.json out of the state folder and enroll again with a new --key' });
    }
    // It renews its certificate while it runs (pushes present the new one from their next
    // connection), and refuses a process server whose certificate the vault revoked.
    const live = enrolled && await agentIdentity(stateDir, enrollment, enrolled, { ...o, log, signal });
    const tls = live
    return { processServerUrl: a.processServerUrl, token: enrollment.credential, tls };
  } catch (err) {
    if (signal.aborted) return undefined;
    throw err;
  }
}

/** `--key`, or the first line of `--key-file` (so that the key need not be on a command line). */
async function registrationKey(v: Parameters<typeof optional>[0]): Promise<string | undefined> {
  const file = optional(v, 'key-file');
  if (!file) return optional(v, 'key');
  if (optional(v, 'key')) throw new UsageError('agent: give --key or --key-file, not both');
  const text = await readFile(file, 'utf8').catch((err: Error) => {
    throw new UsageError(`agent: cannot read --key-file ${file}: ${err.message}`);
  });
  const key = text.split('\n')[0]!.trim();
  if (!key) throw new UsageError(`agent: --key-file ${file} is empty`);
  return key;
}
