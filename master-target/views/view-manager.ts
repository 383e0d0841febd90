/**
 * Point-in-time views (docs/views.md): a disk at a recovery point served over NBD without
 * copying, read-only or with a copy-on-write scratch overlay. A view holds its reader (and so
 * the reader's journal pin) until it is closed; replication goes on underneath. Views live in
 * memory only: a restart of the master target ends them, and the store empties the scratch
 * folder at startup.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { TidemarkError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { NbdExport, NbdExportEntry, NbdExportSource } from '../../core/nbd/index.ts';
import { NbdError, NbdErrno } from '../../core/nbd/index.ts';
import type { DiskStream } from '../disk-stream.ts';
import type { PointInTimeReader } from '../point-reader.ts';
import type { Point } from '../points.ts';
import { ScratchOverlay } from './scratch-overlay.ts';

/** Default bound of one writable view's scratch overlay. */
export const DEFAULT_SCRATCH_BYTES = 1024 ** 3;

/** No view of that id. */
export class ViewNotFoundError extends TidemarkError {}
/** Views need an NBD listener. */
export class ViewsUnavailableError extends TidemarkError {}

/** A view as the HTTP API shows it. */
export interface ViewInfo {
  id: string;
  machine: string;
  disk: string;
  uri: string;
  exportName: string;
  writable: boolean;
  point: { id: string; seq: number; time: string; kind: string };
  sizeBytes: number;
  openedAt: string;
  /** Scratch bytes a writable view uses. */
  scratchBytes?: number;
  connections: number;
}

interface View {
  id: string;
  stream: DiskStream;
  point: Point;
  reader: PointInTimeReader;
  overlay?: ScratchOverlay;
  exportName: string;
  openedAt: Date;
  connections: number;
  nbd: NbdExport;
}

export interface ViewManagerOptions {
  /** Where scratch files go (emptied at startup by the store). */
  scratchDir: string;
  /** Bound of each writable view's overlay. */
  scratchBytes: number;
  log: Logger;
}

export class ViewManager {
  private readonly views = new Map<string, View>();
  private address?: { host: string; port: number };

  constructor(private readonly opts: ViewManagerOptions) {}

  /** Where clients reach the NBD server (set once it listens); without it views cannot open. */
  setAddress(host: string, port: number): void {
    this.address = { host: host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host, port };
  }

  get available(): boolean {
    return this.address !== undefined;
  }

  /** Opens a view of `stream` at `point`. Copies nothing: the cost is a pin and, if writable, an empty file. */
  async open(stream: DiskStream, point: Point, writable: boolean): Promise<ViewInfo> {
    if (!this.address) {
      throw new ViewsUnavailableError('this master target serves no views', { hint: 'start it with --nbd HOST:PORT' });
    }
    const id = `v${randomBytes(6).toString('hex')}`;
    const reader = stream.openReader(point.seq);
    let overlay: ScratchOverlay | undefined;
    try {
      if (writable) {
        await mkdir(this.opts.scratchDir, { recursive: true });
        overlay = await ScratchOverlay.create(join(this.opts.scratchDir, `${id}.scratch`), reader, this.opts.scratchBytes);
      }
    } catch (err) {
      await reader.close();
      throw err;
    }
    const exportName = `${stream.machine}.${stream.disk}.${id}`;
    const view: View = { id, stream, point, reader, overlay, exportName, openedAt: new Date(), connections: 0, nbd: undefined as unknown as NbdExport };
    view.nbd = viewExport(view);
    this.views.set(id, view);
    this.opts.log.info('view opened', { id, machine: stream.machine, disk: stream.disk, seq: point.seq, writable, exportName });
    return this.info(view);
  }

  get(id: string): ViewInfo {
    const v = this.views.get(id);
    if (!v) throw new ViewNotFoundError(`no view ${id}`, { hint: 'GET /v1/views lists the open views' });
    return this.info(v);
  }

  list(machine?: string): ViewInfo[] {
    return [...this.views.values()].filter((v) => !machine || v.stream.machine === machine).map((v) => this.info(v));
  }

  /** Closes a view: ends its pin and discards its overlay. Connected clients get errors from then on. */
  async close(id: string): Promise<ViewInfo> {
    const v = this.views.get(id);
    if (!v) throw new ViewNotFoundError(`no view ${id}`, { hint: 'GET /v1/views lists the open views' });
    const info = this.info(v);
    this.views.delete(id);
    await v.overlay?.close();
    await v.reader.close();
    this.opts.log.info('view closed', { id, machine: v.stream.machine, disk: v.stream.disk, seq: v.point.seq, connections: v.connections });
    return info;
  }

  /** Closes every view of `machine`; returns what it closed. */
  async closeMachine(machine: string): Promise<ViewInfo[]> {
    const ids = [...this.views.values()].filter((v) => v.stream.machine === machine).map((v) => v.id);
    const closed: ViewInfo[] = [];
    for (const id of ids) closed.push(await this.close(id));
    return closed;
  }

  async closeAll(): Promise<void> {
    for (const id of [...this.views.keys()]) await this.close(id);
  }

  /** Exports announced to NBD_OPT_LIST. */
  private exportEntries(): NbdExportEntry[] {
    return [...this.views.values()].map((v) => ({ name: v.exportName, description: `${v.stream.machine}/${v.stream.disk} at point ${v.point.id}${v.overlay ? ' (writable)' : ''}` }));
  }

  /** The NBD server's source: views are found by export name (or id) whenever a client connects. */
  nbdSource(): NbdExportSource {
    return {
      list: () => this.exportEntries(),
      open: (name) => {
        const v = [...this.views.values()].find((x) => x.exportName === name || x.id === name);
        if (!v) return undefined;
        v.connections++;
        return v.nbd;
      },
      release: (exp) => {
        const v = [...this.views.values()].find((x) => x.nbd === exp);
        if (v) v.connections--;
      },
    };
  }

  private info(v: View): ViewInfo {
    const a = this.address!;
    return {
      id: v.id,
      machine: v.stream.machine,
      disk: v.stream.disk,
      uri: `nbd://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}/${v.exportName}`,
      exportName: v.exportName,
      writable: v.overlay !== undefined,
      point: { id: v.point.id, seq: v.point.seq, time: v.point.time, kind: v.point.kind },
      sizeBytes: v.reader.sizeBytes,
      openedAt: v.openedAt.toISOString(),
      ...(v.overlay ? { scratchBytes: v.overlay.usedBytes } : {}),
      connections: v.connections,
    };
  }
}

/** The NBD face of a view: reads from the overlay or the reader; writes to the overlay, or EPERM. */
function viewExport(v: View): NbdExport {
  const overlay = v.overlay;
  const refuse = () => new NbdError(NbdErrno.EPERM, `view ${v.id} is read-only`);
  return {
    name: v.exportName,
    description: `${v.stream.machine}/${v.stream.disk} at point ${v.point.id}`,
    sizeBytes: v.reader.sizeBytes,
    readOnly: !overlay,
    multiConn: true,
    read: (offset, length) => (overlay ? overlay.read(offset, length) : v.reader.read(offset, length)),
    readInto: (offset, target) => (overlay ? overlay.readInto(target, offset) : v.reader.readInto(target, offset)),
    write: (offset, data) => {
      if (!overlay) throw refuse();
      return overlay.write(offset, data);
    },
    flush: () => undefined,
    trim: (offset, length) => {
      if (!overlay) throw refuse();
      return overlay.zero(offset, length);
    },
    writeZeroes: (offset, length) => {
      if (!overlay) throw refuse();
      return overlay.zero(offset, length);
    },
  };
}
