/** Helpers for the hypervisor tests: a qemu-nbd server, file hashes, short temporary folders. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/ports.ts';
import type { HypervisorAdapter, MachineRecord } from '../../master-target/hypervisor/adapter.ts';

/** A short temporary folder (QMP socket paths must stay under 108 bytes). */
export function scratchDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'tm-hv-'));
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface NbdServer {
  uri: string;
  close(): Promise<void>;
}

/** Serves `image` read-only over NBD with qemu-nbd on 127.0.0.1, export name `disk`. */
export async function serveReadOnly(image: string): Promise<NbdServer> {
  const port = await freePort();
  const child: ChildProcess = spawn('qemu-nbd', ['--read-only', '--format=raw', '--bind', '127.0.0.1', '--port', String(port),
    '--persistent', '--shared', '4', '--export-name', 'disk', image], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.1', () => { s.destroy(); r(true); });
      s.once('error', () => r(false));
    });
    if (ok) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`qemu-nbd did not listen on port ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    uri: `nbd://127.0.0.1:${port}/disk`,
    close: async () => { if (child.exitCode === null) child.kill('SIGTERM'); await exited; },
  };
}

/** Waits until the machine's process has ended by itself (for example after `poweroff -f`). */
export async function waitStopped(hv: HypervisorAdapter, name: string, timeoutMs: number): Promise<MachineRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const record = await hv.get(name);
    if (!record || record.state !== 'running') return record as MachineRecord;
    if (Date.now() > deadline) throw new Error(`machine ${name} still runs after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
