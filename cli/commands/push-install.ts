import { readFile } from 'node:fs/promises';
import { UsageError } from '../../core/errors.ts';
import { remoteError, requestJson } from '../../core/http/client.ts';
import type { PushInstallJob } from '../../process-server/push-install/push-installer.ts';
import { parse, required, optional, parseUrl } from '../args.ts';
import type { Command } from './command.ts';

const POLL_MS = 500;

export const pushInstallCommand: Command = {
  name: 'push-install',
  summary: 'install the agent on a host over SSH, from a process server',
  help: `Usage: tidemark push-install --process-server URL --host ADDR [--port N] --user USER --identity FILE
                             --control-plane URL (--key KEY | --key-file FILE) --disk PATH [--disk PATH ...]
                             [--machine NAME] [--site NAME] [--mode scan|tap] [--interval D] [--nbd HOST:PORT]
                             [--known-hosts FILE | --accept-new-host-key] [--sudo] [--remote-root DIR] [--token TOKEN]

The process server connects to the host with OpenSSH (key authentication only), copies the
single-file agent and install.sh there and runs the install, which enrolls the machine with
the control plane and sets up its systemd unit (docs/agent-install.md). Progress is printed
as it happens; the exit status is 0 only when the agent is installed.

  --process-server URL  the process server that pushes (it needs ssh and scp, and the agent
                        bundle: npm run bundle-agent, or its --agent-dir)
  --host ADDR           the host to install on, as the process server reaches it
  --port N              its SSH port (default 22)
  --user USER           the SSH user: root, or one with password-less sudo and --sudo
  --identity FILE       the private key (no passphrase) whose public key that user authorizes; it
                        is sent to the process server and kept there only during the push
  --known-hosts FILE    trust exactly these known_hosts lines for the host (e.g. from ssh-keyscan
                        run over a trusted path); default: the process server's own known_hosts
                        (DATA/push-install/known_hosts), where the host must already be
  --accept-new-host-key trust the host's key on first contact and remember it in that file; a
                        changed key is still refused
  --sudo                run install.sh through sudo -n
  --control-plane URL   the control plane the agent enrolls with, as the host reaches it
  --key KEY             a registration key; --key-file FILE reads it from a file instead
  --disk PATH           a disk on the host to protect (repeat for more)
  --machine NAME        the machine's name (default: the host's short name)
  --site, --mode, --interval, --nbd, --freeze-cmd, --thaw-cmd
                        passed to install.sh (see edge-agent/install.sh --help)
  --remote-root DIR     install.sh --root on the host (staging; nothing is started there)
  --remote-node PATH    install.sh --node on the host
  --token TOKEN         the process server's token (default: $TIDEMARK_TOKEN)
  --json                print the finished push as JSON
`,
  async run(argv, env) {
    const { values } = parse('push-install', argv, {
      'process-server': { type: 'string' }, host: { type: 'string' }, port: { type: 'string' }, user: { type: 'string' },
      identity: { type: 'string' }, 'known-hosts': { type: 'string' }, 'accept-new-host-key': { type: 'boolean' }, sudo: { type: 'boolean' },
      'control-plane': { type: 'string' }, key: { type: 'string' }, 'key-file': { type: 'string' }, disk: { type: 'string', multiple: true },
      machine: { type: 'string' }, site: { type: 'string' }, mode: { type: 'string' }, interval: { type: 'string' }, nbd: { type: 'string' },
      'freeze-cmd': { type: 'string' }, 'thaw-cmd': { type: 'string' }, 'remote-root': { type: 'string' }, 'remote-node': { type: 'string' },
      token: { type: 'string' }, json: { type: 'boolean' },
    });
    const cmd = 'push-install';
    const url = parseUrl('process server', required(cmd, values, 'process-server'));
    const port = Number(optional(values, 'port') ?? 22);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`invalid --port ${optional(values, 'port')}`, { hint: 'a TCP port from 1 to 65535' });
    const disks = (values.disk as string[] | undefined) ?? [];
    if (disks.length === 0) throw new UsageError(`give at least one --disk PATH (a disk on the host)`, { hint: "see 'tidemark push-install --help'" });
    if (optional(values, 'known-hosts') && values['accept-new-host-key']) throw new UsageError(`give --known-hosts or --accept-new-host-key, not both`);
    const identity = required(cmd, values, 'identity');
    const privateKey = await readFile(identity, 'utf8').catch((err: Error) => {
      throw new UsageError(`cannot read --identity ${identity}: ${err.message}`);
    });
    const knownHostsFile = optional(values, 'known-hosts');
    const knownHosts = knownHostsFile === undefined ? undefined : await readFile(knownHostsFile, 'utf8').catch((err: Error) => {
      throw new UsageError(`cannot read --known-hosts ${knownHostsFile}: ${err.message}`);
    });
    let key = optional(values, 'key');
    const keyFile = optional(values, 'key-file');
    if (key && keyFile) throw new UsageError(`give --key or --key-file, not both`);
    if (keyFile) key = (await readFile(keyFile, 'utf8').catch((err: Error) => { throw new UsageError(`cannot read --key-file ${keyFile}: ${err.message}`); })).split('\n')[0]!.trim();
    if (!key) throw new UsageError(`a registration key is required: --key KEY or --key-file FILE`, { hint: 'tidemark up prints one; an admin makes one with POST /api/v1/vaults/{id}/registration-keys' });
    const mode = optional(values, 'mode');
    if (mode !== undefined && mode !== 'scan' && mode !== 'tap') throw new UsageError(`unknown --mode ${mode}`, { hint: 'use --mode scan or --mode tap' });

    const body = {
      host: required(cmd, values, 'host'), port, user: required(cmd, values, 'user'), privateKey, knownHosts,
      acceptNewHostKey: values['accept-new-host-key'] === true, sudo: values.sudo === true,
      install: {
        controlPlaneUrl: parseUrl('control plane', required(cmd, values, 'control-plane')), registrationKey: key, disks,
        machine: optional(values, 'machine'), site: optional(values, 'site'), mode, interval: optional(values, 'interval'),
        nbd: optional(values, 'nbd'), freezeCmd: optional(values, 'freeze-cmd'), thawCmd: optional(values, 'thaw-cmd'),
        root: optional(values, 'remote-root'), node: optional(values, 'remote-node'),
      },
    };
    const token = optional(values, 'token') ?? env.token;
    const started = await requestJson<PushInstallJob>(url, 'POST', '/v1/push-installs', body, { token });
    if (started.status !== 202) throw remoteError(url, started);
    let job = started.body;
    const quiet = values.json === true;
    if (!quiet) process.stdout.write(`push install ${job.id}: ${job.user}@${job.host}:${job.port}\n`);
    let shown = 0;
    for (;;) {
      const r = await requestJson<PushInstallJob>(url, 'GET', `/v1/push-installs/${job.id}`, undefined, { token });
      if (r.status !== 200) throw remoteError(url, r);
      job = r.body;
      // The log keeps its last 500 lines: count from its end so that nothing repeats.
      const fresh = job.log.slice(Math.max(0, job.log.length - (job.logLines - shown)));
      if (!quiet) for (const line of fresh) process.stdout.write(`  ${line}\n`);
      shown = job.logLines;
      if (job.state !== 'running') break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    if (quiet) process.stdout.write(JSON.stringify(job, null, 2) + '\n');
    if (job.state === 'succeeded') {
      if (!quiet) process.stdout.write(`installed on ${job.host}\n`);
      return 0;
    }
    process.stderr.write(`tidemark push-install: ${job.error ?? 'failed'}\n`);
    if (job.hint) process.stderr.write(`  hint: ${job.hint}\n`);
    return 1;
  },
};
