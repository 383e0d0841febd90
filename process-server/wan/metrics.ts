/** The process server's /metrics families (docs/metrics.md). */
import { single, type MetricFamily } from '../../core/metrics.ts';
import type { Stream } from '../stream.ts';
import { diskStatus } from '../status.ts';
import type { WanLink } from './wan-link.ts';

const P = 'tidemark_process_server_';

export function processServerMetrics(streams: readonly Stream[], wan: WanLink | undefined, nowMs: number): MetricFamily[] {
  const t = wan?.totals;
  const spool = wan?.budget.status();
  const per = streams.map((s) => ({ labels: { machine: s.machine, disk: s.disk }, st: diskStatus(s, nowMs) }));
  const families: MetricFamily[] = [
    single(`${P}received_bytes_total`, 'counter', 'Bytes of batches accepted from agents.', t?.receivedBytes ?? 0),
    single(`${P}received_batches_total`, 'counter', 'Batches accepted from agents.', t?.receivedBatches ?? 0),
    single(`${P}sent_bytes_total`, 'counter', 'Bytes sent to the master target (what crossed the WAN, resends included).', t?.sentBytes ?? 0),
    single(`${P}shipped_batches_total`, 'counter', 'Batches the master target acknowledged.', t?.shippedBatches ?? 0),
    single(`${P}changed_bytes_total`, 'counter', 'Disk bytes changed by the batches the master target acknowledged.', t?.changedBytes ?? 0),
    single(`${P}shipped_wire_bytes_total`, 'counter', 'Bytes of the acknowledged batches as they crossed the WAN.', t?.wireBytes ?? 0),
    single(`${P}referenced_bytes_total`, 'counter', 'Changed bytes sent as references to blocks the master target holds.', t?.referencedBytes ?? 0),
    single(`${P}zero_bytes_total`, 'counter', 'Changed bytes sent as zero ranges.', t?.zeroBytes ?? 0),
    single(`${P}missing_blocks_total`, 'counter', 'References the master target could not resolve (sent again as data).', t?.missingBlocks ?? 0),
    single(`${P}held_blocks`, 'gauge', 'Blocks the master target is believed to hold (references may name them).', wan?.held.size ?? 0),
    single(`${P}bandwidth_limit_bytes_per_second`, 'gauge', 'WAN bandwidth limit in force (+Inf when unlimited).', wan?.currentRate ?? Infinity),
    single(`${P}ship_waiting_streams`, 'gauge', 'Streams waiting for their turn at the link to the master target.', wan?.turns.waiting ?? 0),
    single(`${P}spool_used_bytes`, 'gauge', 'Bytes in the spool, all streams.', spool?.usedBytes ?? streams.reduce((n, s) => n + s.spool.bytes, 0)),
    single(`${P}spool_limit_bytes`, 'gauge', 'Limit of the whole spool (+Inf when none).', spool?.limitBytes ?? Infinity),
    single(`${P}spool_refused_batches_total`, 'counter', 'Batches refused with 507 by the whole-spool limit.', wan?.budget.refusedBatches ?? 0),
    { name: `${P}stream_backlog_bytes`, type: 'gauge', help: 'Spooled bytes the master target has not applied yet, per stream.', samples: per.map((p) => ({ labels: p.labels, value: p.st.backlogBytes })) },
    { name: `${P}stream_lag_seconds`, type: 'gauge', help: 'Age of the oldest change not yet applied at the master target, per stream.', samples: per.map((p) => ({ labels: p.labels, value: p.st.lagSeconds })) },
    { name: `${P}stream_received_seq`, type: 'gauge', help: 'Newest sequence number received, per stream.', samples: per.map((p) => ({ labels: p.labels, value: p.st.receivedSeq })) },
    { name: `${P}stream_applied_seq`, type: 'gauge', help: 'Newest sequence number the master target acknowledged, per stream.', samples: per.map((p) => ({ labels: p.labels, value: p.st.appliedSeq })) },
  ];
  return families;
}
