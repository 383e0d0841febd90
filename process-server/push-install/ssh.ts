/**
 * Debian's OpenSSH client (`ssh`, `scp`) run non-interactively: key authentication only
 * (BatchMode), no user or system ssh configuration, and a known_hosts file and policy chosen by
 * the operator. Its errors become messages with a hint.
 */
import { spawn } from 'node:child_process';

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  /** A private key file of mode 0600. */
  identityFile: string;
  /** The known_hosts file checked (and, with `accept-new`, added to). */
  knownHostsFile: string;
  /** `yes`: the host key must already be known; `accept-new`: learn a new host's key, refuse a changed one. */
  strictHostKeyChecking: 'yes' | 'accept-new';
  connectTimeoutSeconds?: number;
}

export interface SshResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Options common to ssh and scp. */
function commonOptions(t: SshTarget): string[] {
  return [
    '-F', '/dev/null',
    '-o', 'BatchMode=yes',
    '-o', 'IdentitiesOnly=yes',
    '-o', `IdentityFile=${t.identityFile}`,
    '-o', `UserKnownHostsFile=${t.knownHostsFile}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', `StrictHostKeyChecking=${t.strictHostKeyChecking}`,
    '-o', `ConnectTimeout=${t.connectTimeoutSeconds ?? 15}`,
    '-o', 'ServerAliveInterval=15',
    '-o', 'LogLevel=ERROR',
  ];
}

/** `user@host`, with an IPv6 address in brackets for scp. */
function remote(t: SshTarget, forScp: boolean): string {
  const host = forScp && t.host.includes(':') ? `[${t.host}]` : t.host;
  return `${t.user}@${host}`;
}

/** Quotes one word for the remote POSIX shell. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

function runProcess(cmd: string, args: string[], o: { input?: string; onLine?: (line: string, stream: 'stdout' | 'stderr') => void; signal?: AbortSignal }): Promise<SshResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], signal: o.signal });
    const out = { stdout: '', stderr: '' };
    const partial = { stdout: '', stderr: '' };
    for (const stream of ['stdout', 'stderr'] as const) {
      child[stream].on('data', (b: Buffer) => {
        const text = b.toString();
        out[stream] += text;
        if (out[stream].length > 1_000_000) out[stream] = out[stream].slice(-500_000);
        const lines = (partial[stream] + text).split('\n');
        partial[stream] = lines.pop()!;
        for (const line of lines) o.onLine?.(line, stream);
      });
    }
    child.on('error', (err) => reject((err as NodeJS.ErrnoException).code === 'ENOENT'
      ? Object.assign(new Error(`${cmd} is not installed`), { hint: 'install the OpenSSH client on the process server (Debian: apt-get install openssh-client)' })
      : err));
    child.on('close', (code) => {
      for (const stream of ['stdout', 'stderr'] as const) if (partial[stream]) o.onLine?.(partial[stream], stream);
      resolve({ code, ...out });
    });
    child.stdin.on('error', () => {}); // the remote side may end before it reads its input
    child.stdin.end(o.input ?? '');
  });
}

/** Runs `command` (one string for the remote shell) on the target. */
export function sshRun(t: SshTarget, command: string, o: { input?: string; onLine?: (line: string, stream: 'stdout' | 'stderr') => void; signal?: AbortSignal } = {}): Promise<SshResult> {
  return runProcess('ssh', [...commonOptions(t), '-p', String(t.port), '--', remote(t, false), command], o);
}

/** Copies local files into a remote directory. */
export function scpTo(t: SshTarget, files: string[], remoteDir: string, o: { signal?: AbortSignal } = {}): Promise<SshResult> {
  return runProcess('scp', [...commonOptions(t), '-q', '-P', String(t.port), '--', ...files, `${remote(t, true)}:${remoteDir}/`], o);
}

/** What an ssh or scp failure means for an operator, from the client's own words. */
export function explainSshFailure(what: string, r: SshResult): { message: string; hint: string } {
  const said = r.stderr.trim().split('\n').filter(Boolean).pop() ?? `exit ${r.code}`;
  const e = r.stderr;
  let hint = 'check the address, the port and that sshd runs there';
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No .* host key is known/i.test(e)) {
    hint = "the host's key is not known to the process server: give its known_hosts line (--known-hosts FILE, e.g. from ssh-keyscan over a trusted path) or, to trust it on first use, --accept-new-host-key";
  } else if (/Permission denied|Too many authentication failures/i.test(e)) {
    hint = 'the user or the key was refused: check --user, and that the public key of --identity is in that user\'s authorized_keys';
  } else if (/Connection refused/i.test(e)) {
    hint = 'nothing listens there: check --host and --port';
  } else if (/timed out|No route to host|Could not resolve hostname|Name or service not known/i.test(e)) {
    hint = 'the host cannot be reached from the process server: check the address, DNS and firewalls';
  } else if (/invalid format|error in libcrypto|Load key/i.test(e)) {
    hint = 'the private key could not be read: give an OpenSSH or PEM private key without a passphrase';
  }
  return { message: `${what} failed: ${said}`, hint };
}
