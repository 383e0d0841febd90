import { parseListen } from '../../core/http/serve.ts';
import { createLogger } from '../../core/log.ts';
import { startMasterTarget } from '../../master-target/server.ts';
import { parse, required, optional, parseDurationSeconds, parseBytes } from '../args.ts';
import { runUntilSignal } from '../run-until-signal.ts';
import { tuneHeapForServer } from '../../core/server-heap.ts';
import { ControlPlaneClient } from '../../core/control-plane/client.ts';
import { startMasterTargetSiteLink } from '../../master-target/site-link/site-link.ts';
import { enrollServer, SERVER_ENROLLMENT_HELP, SERVER_ENROLLMENT_OPTIONS } from '../enroll-server.ts';
import { SERVER_ENVIRONMENT_HELP } from '../config.ts';
import { liveIdentity, masterTargetTls } from '../server-tls.ts';
import { startEnrollmentRenewal } from '../enrollment-renewal.ts';
import type { Command } from './command.ts';

export const masterTargetCommand: Command = {
  name: 'master-target',
  summary: 'run a master target: replica disks, undo journal, recovery points',
  help: `Usage: tidemark master-target --data DIR --listen HOST:PORT [--retention DURATION] [--token TOKEN]
                              [--control-plane URL --key KEY [--name NAME] [--site NAME] [--url URL]]

Holds the replica disks and the undo journal at the secondary site, and serves recovery
points and exports to the CLI.

  --data DIR          where replicas and journals live (created if missing)
  --listen HOST:PORT  address to serve on, e.g. 0.0.0.0:7402
  --retention D       how far back recovery points reach (default 24h; e.g. 90m, 7d)
  --token TOKEN       require this bearer token (default: $TIDEMARK_TOKEN)
  --retention-full D  keep every point this long, then one a minute to 24h, then one an hour (default 1h)
  --nbd HOST:PORT     serve point-in-time views over NBD on this address, e.g. 127.0.0.1:10809
  --scratch-bytes N   bound of each writable view's scratch overlay (default 1G; e.g. 512M)
  --keep-free N       free space kept on the data directory's file system: below it the oldest
                      journal segments are deleted, even inside --retention (default 2G; 0: never,
                      and a full disk then stops replication until space is freed)
  --journal-max N     cap on all journals together, kept the same way (default: none; e.g. 500G)
${SERVER_ENROLLMENT_HELP}${SERVER_ENVIRONMENT_HELP}
With --control-plane it runs test failovers and cleanups sent by the control plane: each disk
is exported at the chosen point into DIR/test-failovers/JOB/MACHINE/ and hashed. Enrolled with
an https:// --url, it serves HTTPS: process servers present their certificates and may ship
only the machines assigned to them; the CLI needs an operator certificate (--identity).
`,
  async run(argv, env) {
    const { values: flags } = parse('master-target', argv, {
      data: { type: 'string' }, listen: { type: 'string' }, retention: { type: 'string' }, token: { type: 'string' },
      'retention-full': { type: 'string' }, nbd: { type: 'string' }, 'scratch-bytes': { type: 'string' },
      'keep-free': { type: 'string' }, 'journal-max': { type: 'string' },
      ...SERVER_ENROLLMENT_OPTIONS,
    });
    const values = { ...env.serverOptions, ...flags };
    const nbd = optional(values, 'nbd');
    const scratchBytes = optional(values, 'scratch-bytes');
    const retentionFull = optional(values, 'retention-full');
    const keepFree = optional(values, 'keep-free');
    const journalMax = optional(values, 'journal-max');
    const listen = parseListen(required('master-target', values, 'listen'));
    const dataDir = required('master-target', values, 'data');
    const token = optional(values, 'token') ?? env.token;
    const log = createLogger('master-target', { level: env.logLevel });
    const enrolled = await enrollServer('master-target', 'master-target', values, dataDir, listen, log);
    const enrollment = enrolled?.enrollment;
    const live = enrolled?.tls ? await liveIdentity(dataDir, enrolled.identity!, enrolled.enrollment) : undefined;
    const secure = live
      ? await masterTargetTls(dataDir, live.identity, enrolled!.enrollment, new URL(enrolled!.url).hostname.replace(/^\[|\]$/g, ''))
      : undefined;
    tuneHeapForServer();
    const mt = await startMasterTarget({
      dataDir,
      host: listen.host,
      port: listen.port,
      token,
      retentionSeconds: parseDurationSeconds('retention', optional(values, 'retention') ?? '24h'),
      log,
      ...(secure ? { tls: secure.tls, peers: secure.peers, revocations: live!.revocations } : {}),
      ...(nbd ? { nbd: parseListen(nbd) } : {}),
      ...(scratchBytes ? { scratchBytes: parseBytes('scratch-bytes', scratchBytes) } : {}),
      ...(retentionFull ? { retentionFullSeconds: parseDurationSeconds('retention-full', retentionFull) } : {}),
      ...(keepFree ? { keepFreeBytes: parseBytes('keep-free', keepFree) } : {}),
      ...(journalMax ? { journalMaxBytes: parseBytes('journal-max', journalMax) } : {}),
    });
    const link = enrollment && await startMasterTargetSiteLink({
      client: new ControlPlaneClient({ url: enrollment.controlPlaneUrl, credential: enrollment.credential }),
      masterTargetUrl: mt.url, token, tls: secure?.siteLinkTls, ingestAssignments: secure?.ingestAssignments, dataDir, log, softwareVersion: '0.1.0',
      revocations: live?.revocations, revocationPollIntervalMs: env.revocationPollSeconds && env.revocationPollSeconds * 1000,
    });
    const renewal = live && startEnrollmentRenewal(dataDir, enrolled!.enrollment, live.identity, { renewFraction: env.certificateRenewFraction, log });
    process.stdout.write(`master target listening on ${mt.url}${enrollment ? `, enrolled with ${enrollment.controlPlaneUrl}` : ''}\n`);
    if (mt.nbd) process.stdout.write(`views served on nbd://${mt.nbd.host}:${mt.nbd.port}\n`);
    return runUntilSignal(async () => {
      await renewal?.close();
      await link?.close();
      await mt.close();
    });
  },
};
