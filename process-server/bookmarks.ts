/**
 * Bookmarks asked for by operators, waiting for the agent: the process server cannot add a
 * record to an agent's stream (the agent owns its sequence numbers), so it hands the request
 * to the agent in the answer to its next heartbeat, and the agent reports the point it tagged
 * on each disk. Kept in memory: a bookmark not yet taken when the process server restarts is
 * asked for again by the operator.
 */
import { randomUUID } from 'node:crypto';

export interface BookmarkRequest {
  id: string;
  machine: string;
  name: string;
  requestedAt: string;
  /** Per disk, the point the agent tagged (or why it could not). */
  disks: Record<string, { seq?: number; error?: string }>;
}

/** Requests older than this are forgotten. */
const KEEP_MS = 24 * 3600 * 1000;

export class BookmarkBook {
  private readonly byId = new Map<string, BookmarkRequest & { atMs: number }>();

  request(machine: string, name: string): BookmarkRequest {
    this.prune();
    const b = { id: randomUUID(), machine, name, requestedAt: new Date().toISOString(), disks: {}, atMs: Date.now() };
    this.byId.set(b.id, b);
    return strip(b);
  }

  get(id: string): BookmarkRequest | undefined {
    const b = this.byId.get(id);
    return b && strip(b);
  }

  /** Requests of a machine that its agent has not answered yet. */
  pendingFor(machine: string): Array<{ id: string; name: string }> {
    return [...this.byId.values()].filter((b) => b.machine === machine && Object.keys(b.disks).length === 0).map((b) => ({ id: b.id, name: b.name }));
  }

  /** Records the agent's answer for one disk; answers for unknown ids are ignored. */
  complete(machine: string, id: string, disk: string, result: { seq?: number; error?: string }): void {
    const b = this.byId.get(id);
    if (b && b.machine === machine) b.disks[disk] = result;
  }

  private prune(): void {
    const cutoff = Date.now() - KEEP_MS;
    for (const [id, b] of this.byId) if (b.atMs < cutoff) this.byId.delete(id);
  }
}

function strip(b: BookmarkRequest & { atMs: number }): BookmarkRequest {
  return { id: b.id, machine: b.machine, name: b.name, requestedAt: b.requestedAt, disks: { ...b.disks } };
}
