/**
 * Shared pieces of the NBD tests: scratch images, a server over file exports on a loopback
 * port, and running the Debian NBD clients with a time limit.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNbdServer, fixedExports, openFileExport } from '../../core/nbd/index.ts';
import type { FileExport, NbdExport, NbdExportSource, NbdLog, NbdServer, NbdServerOptions } from '../../core/nbd/index.ts';

/** A scratch directory removed by `cleanup`. */
export async function scratchDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'tidemark-nbd-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Deterministic, non-repeating bytes (so a misplaced block is caught). */
export function patternBytes(sizeBytes: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(sizeBytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < sizeBytes; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    if (i + 4 <= sizeBytes) out.writeUInt32LE(x, i);
    else for (let j = i; j < sizeBytes; j++) out[j] = (x >>> (8 * (j - i))) & 0xff;
  }
  return out;
}

export async function writeImage(path: string, content: Buffer): Promise<void> {
  await writeFile(path, content);
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  return sha256(await readFile(path));
}

/** Collects log lines so a test can assert on them or print them when it fails. */
export function memoryLog(): NbdLog & { lines: { level: string; message: string; fields?: Record<string, unknown> }[] } {
  const lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  return {
    lines,
    info: (message, fields) => void lines.push({ level: 'info', message, fields }),
    warn: (message, fields) => void lines.push({ level: 'warn', message, fields }),
  };
}

export interface TestServer {
  server: NbdServer;
  port: number;
  exports: FileExport[];
  log: ReturnType<typeof memoryLog>;
  /** nbd://127.0.0.1:PORT/NAME */
  uri(name: string): string;
  close(): Promise<void>;
}

/** A server on 127.0.0.1, port 0, over file exports (or a given source). */
export async function startFileServer(
  files: { name: string; path: string; readOnly?: boolean; description?: string; syncMaxBytes?: number }[],
  options: Partial<NbdServerOptions> & { source?: NbdExportSource } = {},
): Promise<TestServer> {
  const exports: FileExport[] = [];
  for (const f of files) exports.push(await openFileExport(f.path, f));
  const log = memoryLog();
  const server = createNbdServer({ log, ...options, exports: options.source ?? fixedExports(exports) });
  const { port } = await server.listen('127.0.0.1', 0);
  return {
    server,
    port,
    exports,
    log,
    uri: (name) => `nbd://127.0.0.1:${port}/${name}`,
    async close() {
      await server.close();
      for (const e of exports) await e.close();
    },
  };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command with a time limit; never throws for a non-zero exit. */
export function run(command: string, args: string[], timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/**
 * Runs qemu-io on a raw NBD URI with the given `-c` commands. The cache mode is writeback:
 * qemu-io's default (writethrough) would send every write with FUA.
 */
export function qemuIo(uri: string, commands: string[], extra: string[] = []): Promise<RunResult> {
  return run('qemu-io', ['-f', 'raw', '-t', 'writeback', ...extra, uri, ...commands.flatMap((c) => ['-c', c])]);
}

/** A string for assertion messages: what the command printed. */
export function describeRun(r: RunResult): string {
  return `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

export interface SpyCall {
  op: 'read' | 'write' | 'flush' | 'trim' | 'writeZeroes';
  offset?: number;
  length?: number;
  fua?: boolean;
  mayTrim?: boolean;
}

/** Wraps an export and records every call the server makes, then delegates. */
export function spyExport(exp: NbdExport): { exp: NbdExport; calls: SpyCall[] } {
  const calls: SpyCall[] = [];
  const spied: NbdExport = {
    name: exp.name,
    description: exp.description,
    sizeBytes: exp.sizeBytes,
    readOnly: exp.readOnly,
    multiConn: exp.multiConn,
    read(offset, length) {
      calls.push({ op: 'read', offset, length });
      return exp.read(offset, length);
    },
    readInto: exp.readInto
      ? (offset, target) => {
          calls.push({ op: 'read', offset, length: target.length });
          return exp.readInto!(offset, target);
        }
      : undefined,
    write(offset, data, fua) {
      calls.push({ op: 'write', offset, length: data.length, fua });
      return exp.write(offset, data, fua);
    },
    flush() {
      calls.push({ op: 'flush' });
      return exp.flush();
    },
    trim(offset, length, fua) {
      calls.push({ op: 'trim', offset, length, fua });
      return exp.trim(offset, length, fua);
    },
    writeZeroes(offset, length, fua, mayTrim) {
      calls.push({ op: 'writeZeroes', offset, length, fua, mayTrim });
      return exp.writeZeroes(offset, length, fua, mayTrim);
    },
  };
  return { exp: spied, calls };
}
