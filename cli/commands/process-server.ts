import { parseListen } from '../../core/http/serve.ts';
import { createLogger } from '../../core/log.ts';
import { startProcessServer, DEFAULT_MAX_SPOOL_BYTES } from '../../process-server/server.ts';
import { parse, required, optional, parseBytes, parseUrl } from '../args.ts';
import { runUntilSignal } from '../run-until-signal.ts';
import { tuneHeapForServer } from '../../core/server-heap.ts';
import { parseSchedule } from '../../process-server/wan/bandwidth.ts';
import { enrollServer, SERVER_ENROLLMENT_HELP, SERVER_ENROLLMENT_OPTIONS } from '../enroll-server.ts';
import { SERVER_ENVIRONMENT_HELP } from '../config.ts';
import { liveIdentity, processServerTls } from '../server-tls.ts';
import { startEnrollmentRenewal } from '../enrollment-renewal.ts';
import { UsageError } from '../../core/errors.ts';
import type { Command } from './command.ts';

export const processServerCommand: Command = {
  name: 'process-server',
  summary: 'run a process server: durable spool between agents and the master target',
  help: `Usage: tidemark process-server --data DIR --listen HOST:PORT --master-target URL [--token TOKEN]
                               [--spool-max-bytes-per-disk SIZE] [--spool-max-bytes SIZE] [--bandwidth SCHEDULE]
                               [--control-plane URL --key KEY [--name NAME] [--site NAME] [--url URL]]

Receives agents' batches, keeps them in a durable spool and ships them in order to the
master target, resuming wherever it stands after a restart or a dropped link.

  --data DIR              where the spool lives (created if missing)
  --listen HOST:PORT      address to serve agents on, e.g. 0.0.0.0:7401
  --master-target URL     the master target, e.g. http://dr-site:7402; an https:// one is called with
                          this server's certificate (so it must be enrolled) and only the vault CA trusted
  --spool-max-bytes-per-disk SIZE
                          pending bytes allowed per disk before agents are told to wait (default
                          ${DEFAULT_MAX_SPOOL_BYTES / 1024 ** 3}G; --max-spool-bytes, its former name, still works)
  --spool-max-bytes SIZE  limit of the whole spool, all disks together (default none): status and
                          the control plane are told at 80% and 95%, and when it is full agents get 507
  --bandwidth SCHEDULE    WAN limit to the master target by local time of day, e.g.
                          '08:00-18:00=20MB/s,*=unlimited' or just '50MB/s' (default unlimited)
  --token TOKEN           require this bearer token and send it on (default: $TIDEMARK_TOKEN)
  --agent-dir DIR         the agent bundle and install.sh for push installs (default: dist/agent of
                          this checkout, made by npm run bundle-agent); see tidemark push-install
${SERVER_ENROLLMENT_HELP}${SERVER_ENVIRONMENT_HELP}
With --control-plane, agents may also authenticate with their own credential: the control
plane confirms it, and the agent may then only touch its own machine's streams. Enrolled
with an https:// --url, it serves HTTPS and agents present their certificates.
`,
  async run(argv, env) {
    const { values: flags } = parse('process-server', argv, {
      data: { type: 'string' }, listen: { type: 'string' }, 'master-target': { type: 'string' }, 'spool-max-bytes-per-disk': { type: 'string' },
      'max-spool-bytes': { type: 'string' }, token: { type: 'string' },
      'spool-max-bytes': { type: 'string' }, bandwidth: { type: 'string' }, 'agent-dir': { type: 'string' },
      ...SERVER_ENROLLMENT_OPTIONS,
    });
    const values = { ...env.serverOptions, ...flags };
    const listen = parseListen(required('process-server', values, 'listen'));
    const spool = perDiskSpoolLimit(flags, env.serverOptions);
    const spoolTotal = optional(values, 'spool-max-bytes');
    const wan = {
      spoolMaxBytes: spoolTotal ? parseBytes('spool-max-bytes', spoolTotal) : undefined,
      bandwidth: optional(values, 'bandwidth') ? parseSchedule(optional(values, 'bandwidth')!) : undefined,
    };
    const dataDir = required('process-server', values, 'data');
    const masterTargetUrl = parseUrl('master target', required('process-server', values, 'master-target'));
    const log = createLogger('process-server', { level: env.logLevel });
    const enrolled = await enrollServer('process-server', 'process-server', values, dataDir, listen, log);
    const enrollment = enrolled?.enrollment;
    if (masterTargetUrl.startsWith('https:') && !enrolled?.identity) {
      throw new UsageError(`process-server: the master target ${masterTargetUrl} speaks TLS and wants this process server's certificate, which it has not got`, {
        hint: 'enroll it with --control-plane, --key and an https:// --url (TIDEMARK_CONTROL_PLANE, TIDEMARK_KEY, TIDEMARK_URL)',
      });
    }
    const live = enrolled?.identity && await liveIdentity(dataDir, enrolled.identity, enrolled.enrollment);
    tuneHeapForServer();
    const ps = await startProcessServer({
      dataDir,
      controlPlane: enrollment && {
        url: enrollment.controlPlaneUrl, credential: enrollment.credential, softwareVersion: '0.1.0',
        revocationPollIntervalMs: env.revocationPollSeconds && env.revocationPollSeconds * 1000,
      },
      host: listen.host,
      port: listen.port,
      masterTargetUrl,
      ...(live ? { revocations: live.revocations } : {}),
      ...(live && enrolled!.tls ? { tls: processServerTls(live.identity, enrolled!.enrollment) } : {}),
      // Enrolled over http but shipping to an https master target: it still presents its certificate there.
      ...(live && !enrolled!.tls ? { masterTargetTls: live.identity } : {}),
      token: optional(values, 'token') ?? env.token,
      maxSpoolBytes: spool && parseBytes(spool.option, spool.value),
      wan,
      agentDir: optional(values, 'agent-dir'),
      log,
    });
    const renewal = live && startEnrollmentRenewal(dataDir, enrolled!.enrollment, live.identity, { renewFraction: env.certificateRenewFraction, log });
    process.stdout.write(`process server listening on ${ps.url}\n`);
    return runUntilSignal(async () => {
      await renewal?.close();
      await ps.close();
    });
  },
};

/**
 * The per-disk spool limit, from `--spool-max-bytes-per-disk` or its former name
 * `--max-spool-bytes` (flag or environment; a flag wins over the environment, and one
 * source may not give both names, which would leave unclear which one counts).
 */
function perDiskSpoolLimit(flags: Record<string, unknown>, fromEnv: Partial<Record<string, string>>): { option: string; value: string } | undefined {
  for (const source of [flags, fromEnv]) {
    const current = source['spool-max-bytes-per-disk'] as string | undefined;
    const former = source['max-spool-bytes'] as string | undefined;
    if (current !== undefined && former !== undefined) {
      throw new UsageError('process-server: --spool-max-bytes-per-disk and --max-spool-bytes are one setting, given twice', { hint: 'keep --spool-max-bytes-per-disk (TIDEMARK_SPOOL_MAX_BYTES_PER_DISK)' });
    }
    if (current !== undefined) return { option: 'spool-max-bytes-per-disk', value: current };
    if (former !== undefined) return { option: 'max-spool-bytes', value: former };
  }
  return undefined;
}
