/**
 * A stream's health as an operator reads it: state, lag behind the source, backlog.
 * Thresholds are named here so that the console and the docs can quote them.
 */
import { FrameFlag } from '../core/wire/frame.ts';
import type { Stream } from './stream.ts';

export type StreamState = 'INITIAL_SYNC' | 'CONTINUOUS' | 'BACKLOG' | 'RESYNC' | 'PAUSED' | 'STALLED' | 'DISCONNECTED' | 'FAILED_OVER' | 'REPROTECTING';

/** Backlog above which a stream counts as BACKLOG rather than CONTINUOUS. */
export const BACKLOG_STATE_BYTES = 256 * 1024 * 1024;
/** Lag above which a stream counts as BACKLOG. */
export const BACKLOG_STATE_LAG_SECONDS = 120;
/** Shipping failing for this long makes a stream STALLED. */
export const STALLED_AFTER_SECONDS = 30;
/** No word from the agent for this long (or three intervals, if longer) makes it DISCONNECTED. */
export const DISCONNECTED_AFTER_SECONDS = 60;

export interface DiskStatus {
  machine: string;
  disk: string;
  state: StreamState;
  lagSeconds: number;
  backlogBytes: number;
  receivedSeq: number;
  appliedSeq: number;
  lastContactTime: string | null;
  lastAppliedTime: string | null;
  initialSync?: { doneBytes: number; totalBytes: number };
  error?: string;
}

export function diskStatus(s: Stream, nowMs: number): DiskStatus {
  const pending = s.spool.pending();
  const applied = (s.appliedNextSeq ?? 1) - 1;
  const waiting = pending.filter((e) => e.lastSeq > applied);
  const backlogBytes = waiting.reduce((n, e) => n + e.bytes, 0);
  const lagSeconds = waiting.length ? Math.max(0, (nowMs - waiting[0].timeMs) / 1000) : 0;
  const initialPending = waiting.some((e) => (e.flags & FrameFlag.INITIAL_SYNC) !== 0);
  const silentLimit = Math.max(DISCONNECTED_AFTER_SECONDS, 3 * (s.agent?.intervalSeconds ?? 0)) * 1000;

  let state: StreamState;
  if (s.shipError && nowMs - s.shipErrorSinceMs > STALLED_AFTER_SECONDS * 1000) state = 'STALLED';
  else if (s.lastContactMs === 0 || nowMs - s.lastContactMs > silentLimit) state = 'DISCONNECTED';
  else if (s.agent?.phase === 'RESYNC') state = 'RESYNC';
  else if (s.agent?.phase === 'INITIAL_SYNC' || initialPending) state = 'INITIAL_SYNC';
  else if (backlogBytes > BACKLOG_STATE_BYTES || lagSeconds > BACKLOG_STATE_LAG_SECONDS) state = 'BACKLOG';
  else state = 'CONTINUOUS';

  const received = (s.spool.nextSeq ?? s.appliedNextSeq ?? 1) - 1;
  return {
    machine: s.machine,
    disk: s.disk,
    state,
    lagSeconds: Math.round(lagSeconds * 1000) / 1000,
    backlogBytes,
    receivedSeq: received,
    appliedSeq: applied,
    lastContactTime: s.lastContactMs ? new Date(s.lastContactMs).toISOString() : null,
    lastAppliedTime: s.lastAppliedTimeMs ? new Date(s.lastAppliedTimeMs).toISOString() : null,
    ...(s.agent?.phase === 'INITIAL_SYNC' && s.agent.totalBytes
      ? { initialSync: { doneBytes: s.agent.doneBytes ?? 0, totalBytes: s.agent.totalBytes } }
      : {}),
    ...(s.shipError ? { error: s.shipError } : {}),
  };
}
