/** A master target and a process server as real child processes on 127.0.0.1, restartable on the same ports. */
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { freePort } from './ports.ts';
import { startTidemark, type Running } from './tidemark-process.ts';

import type { Point } from '../../cli/commands/points.ts';

/** A recovery point as the master target lists it. */
export type PointInfo = Point;

export class TestStack {
  mt!: Running;
  ps!: Running;
  mtUrl = '';
  psUrl = '';
  private mtArgs: string[] = [];
  private psArgs: string[] = [];

  constructor(readonly dir: string, readonly env: Record<string, string>) {}

  async start(): Promise<this> {
    const [psPort, mtPort] = [await freePort(), await freePort()];
    this.psUrl = `http://127.0.0.1:${psPort}`;
    this.mtUrl = `http://127.0.0.1:${mtPort}`;
    this.mtArgs = ['master-target', '--data', join(this.dir, 'mt'), '--listen', `127.0.0.1:${mtPort}`];
    this.psArgs = ['process-server', '--data', join(this.dir, 'ps'), '--listen', `127.0.0.1:${psPort}`, '--master-target', this.mtUrl];
    await this.startMasterTarget();
    await this.startProcessServer();
    return this;
  }

  async startMasterTarget(): Promise<void> {
    this.mt = startTidemark(this.mtArgs, this.env);
    await this.mt.waitFor(/listening on/);
  }

  async startProcessServer(): Promise<void> {
    this.ps = startTidemark(this.psArgs, this.env);
    await this.ps.waitFor(/listening on/);
  }

  private auth(): Record<string, string> {
    return this.env.TIDEMARK_TOKEN ? { authorization: `Bearer ${this.env.TIDEMARK_TOKEN}` } : {};
  }

  async points(machine: string, disk = 'disk0', query = ''): Promise<PointInfo[]> {
    const res = await fetch(`${this.mtUrl}/v1/machines/${machine}/disks/${disk}/points${query}`, { headers: this.auth() });
    if (res.status === 404) return [];
    if (!res.ok) throw new Error(`points: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { points: PointInfo[] }).points;
  }

  /** SHA-256 of a disk exported at a point, streamed from the master target. */
  async imageHash(machine: string, pointId: string, disk = 'disk0'): Promise<string> {
    const res = await fetch(`${this.mtUrl}/v1/machines/${machine}/disks/${disk}/image?at=${pointId}`, { headers: this.auth() });
    if (res.status !== 200) throw new Error(`export of ${machine}/${disk} at ${pointId}: ${res.status} ${await res.text()}`);
    const h = createHash('sha256');
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) h.update(chunk);
    return h.digest('hex');
  }

  async status(): Promise<Array<{ machine: string; disk: string; state: string; appliedSeq: number; receivedSeq: number; backlogBytes: number; lagSeconds: number }>> {
    const res = await fetch(`${this.psUrl}/v1/status`, { headers: this.auth() });
    if (!res.ok) throw new Error(`status: ${res.status}`);
    return ((await res.json()) as { disks: [] }).disks;
  }

  async stop(): Promise<void> {
    await this.ps?.stop();
    await this.mt?.stop();
  }

  logs(): string {
    return `--- master target ---\n${this.mt?.stderr().slice(-3000)}\n--- process server ---\n${this.ps?.stderr().slice(-3000)}`;
  }
}
