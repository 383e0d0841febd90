import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../../core/errors.ts';
import { writeFileAtomic } from '../../core/fsutil.ts';
import { parse, required, optional, parseDurationSeconds } from '../args.ts';
import { startUpStack } from '../local-stack.ts';
import { rememberIdentity } from '../operator-identity.ts';
import { runUntilSignal } from '../run-until-signal.ts';
import { tuneHeapForServer } from '../../core/server-heap.ts';
import type { Command } from './command.ts';

export const DEFAULT_UP_PORT = 7400;

/** The stack's token: kept in DIR/token so that restarts and the CLI keep working. */
async function stackToken(dataDir: string, fromEnv?: string): Promise<string> {
  if (fromEnv) return fromEnv;
  const file = join(dataDir, 'token');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const t = randomBytes(24).toString('base64url');
    await writeFileAtomic(file, t);
    return t;
  }
}

export const upCommand: Command = {
  name: 'up',
  summary: 'run the local stack in one process (control plane, process server, master target)',
  help: `Usage: tidemark up --data DIR [--port N] [--retention DURATION] [--schedule-interval DURATION]

Runs, on 127.0.0.1 and in one process, the control plane (API and console) on port N
(default ${DEFAULT_UP_PORT}), a process server on N+1 and a master target on N+2, keeping all
state under DIR. The master target serves point-in-time views over NBD on N+3: a plan's test
failover or drill opens writable views of each machine's disks and, when the plan asks for the
boot check, boots the replica under QEMU (isolated network) from them and waits for its serial
console (docs/views.md). Without qemu-system-x86_64 the views still open; the boot check fails.

On first start it creates a vault ("local") and a replication policy ("default") through the
control plane's API, and enrolls the process server and the master target; their credentials
are kept under DIR (mode 0600) and reused by later starts. Every start makes a registration
key (valid 24 h) for agents and prints how to install one.

The process server and the master target serve HTTPS with certificates of the vault's own
CA and accept only clients with certificates of it (mutual TLS; docs/security.md): agents
get theirs when they enroll, and the CLI uses DIR/operator. Up records, under
$XDG_CONFIG_HOME/tidemark/identities (or ~/.config/...), that these addresses go with
DIR/operator, so tidemark status, points, export, view, failover, cleanup and bookmark find it.

  DIR/admin.token   admin API token (Authorization: Bearer ...), mode 0600
  DIR/operator/     operator certificate for the CLI (key.pem 0600, cert.pem, ca.pem)
  DIR/token         shared token, used only by data folders made before certificates
  DIR/up.json       the vault and policy made on first start

  --data DIR                    where everything lives (created if missing)
  --port N                      control plane port; N+1, N+2 and N+3 (views) follow (default ${DEFAULT_UP_PORT})
  --retention D                 how far back recovery points reach (default 24h)
  --schedule-interval D         how often scheduled drills, job deadlines and stale reports are checked (default 60s)
`,
  async run(argv, env) {
    const { values } = parse('up', argv, {
      data: { type: 'string' }, port: { type: 'string' }, retention: { type: 'string' }, 'schedule-interval': { type: 'string' },
    });
    const dataDir = required('up', values, 'data');
    const port = Number(optional(values, 'port') ?? DEFAULT_UP_PORT);
    if (!Number.isInteger(port) || port < 1 || port > 65532) throw new UsageError(`up: invalid --port ${optional(values, 'port')}`, { hint: 'use a port from 1 to 65532 (N+1, N+2 and N+3 are used too)' });
    const retention = optional(values, 'retention');
    const schedule = optional(values, 'schedule-interval');
    const token = await stackToken(dataDir, env.token);
    tuneHeapForServer();
    const stack = await startUpStack({
      dataDir, port, token, logLevel: env.logLevel,
      renewFraction: env.certificateRenewFraction,
      revocationPollIntervalMs: env.revocationPollSeconds && env.revocationPollSeconds * 1000,
      retentionSeconds: retention ? parseDurationSeconds('retention', retention) : undefined,
      scheduleIntervalMs: schedule ? parseDurationSeconds('schedule-interval', schedule) * 1000 : undefined,
    });
    if (stack.operatorIdentityDir) await rememberIdentity(env.configDir, [stack.processServerUrl, stack.masterTargetUrl], stack.operatorIdentityDir);
    const cp = stack.controlPlaneUrl;
    process.stdout.write(`Tidemark is up.
  control plane   ${cp}  (console ${cp}/console/, API ${cp}/api/v1)
  process server  ${stack.processServerUrl}
  master target   ${stack.masterTargetUrl}  (views ${stack.nbdUrl})
  vault           ${stack.vaultId}  (policy ${stack.policyId})
  admin token     ${stack.adminTokenPath}
  ${stack.secure ? `TLS             mutual, vault CA pinned; operator certificate ${stack.operatorIdentityDir}` : `stack token     ${join(dataDir, 'token')} (no TLS: this data folder predates certificates)`}

Install an agent (registration key valid until ${stack.registrationKeyExpiresAt}):
  npx tidemark agent --control-plane ${cp} --key ${stack.registrationKey} \\
    --state ./agent-state --machine $(hostname) --disk /path/to/disk.img --mode scan --interval 60

Then enable its protection (the machine id is in GET /api/v1/vaults/${stack.vaultId}/machines):
  curl -X PUT -H "Authorization: Bearer $(cat ${stack.adminTokenPath})" -H 'content-type: application/json' \\
    -d '{"policyId":"${stack.policyId}"}' ${cp}/api/v1/vaults/${stack.vaultId}/machines/MACHINE_ID/protection

Stop with Ctrl-C.
`);
    return runUntilSignal(() => stack.close());
  },
};
