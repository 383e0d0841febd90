/** The master target's /metrics families (docs/metrics.md) and the counters its ingest keeps. */
import { single, type MetricFamily } from '../../core/metrics.ts';
import { RecordType } from '../../core/wire/frame.ts';
import type { PreparedBatch } from '../batch.ts';
import type { StreamStore } from '../store.ts';
import type { ViewManager } from '../views/view-manager.ts';
import type { ReferenceResolver } from './references.ts';
import type { SpaceLimits } from '../space-limits.ts';

const P = 'tidemark_master_target_';

export class IngestCounters {
  receivedBytes = 0;
  receivedBatches = 0;
  appliedBatches = 0;
  appliedRecords = 0;
  /** Disk bytes written, zeroed or trimmed by applied batches. */
  appliedBytes = 0;
  applySeconds = 0;
  referencedBytes = 0;
  refusedBatches = 0;

  applied(batch: PreparedBatch, seconds: number, referencedBytes: number): void {
    this.appliedBatches++;
    this.appliedRecords += batch.records.length;
    for (const r of batch.records) if (r.type !== RecordType.TAG) this.appliedBytes += r.lengthBytes;
    this.applySeconds += seconds;
    this.referencedBytes += referencedBytes;
  }
}

export function masterTargetMetrics(c: IngestCounters, store: StreamStore, views: ViewManager | undefined, refs: ReferenceResolver, space?: SpaceLimits): MetricFamily[] {
  const streams = store.list();
  const labels = (s: { machine: string; disk: string }) => ({ machine: s.machine, disk: s.disk });
  return [
    single(`${P}received_bytes_total`, 'counter', 'Bytes of batches received from process servers (what crossed the WAN).', c.receivedBytes),
    single(`${P}received_batches_total`, 'counter', 'Batches received from process servers.', c.receivedBatches),
    single(`${P}applied_batches_total`, 'counter', 'Batches applied (journaled, written and committed).', c.appliedBatches),
    single(`${P}applied_records_total`, 'counter', 'Records applied.', c.appliedRecords),
    single(`${P}applied_bytes_total`, 'counter', 'Disk bytes changed by applied batches.', c.appliedBytes),
    single(`${P}apply_seconds_total`, 'counter', 'Time spent applying batches (applied_bytes_total over this is the apply rate).', c.applySeconds),
    single(`${P}referenced_bytes_total`, 'counter', 'Applied bytes that arrived as references to blocks held here.', c.referencedBytes),
    single(`${P}references_resolved_total`, 'counter', 'Distinct references resolved.', refs.resolvedCount),
    single(`${P}references_missing_total`, 'counter', 'References that could not be resolved (asked for again).', refs.missingCount),
    single(`${P}refused_batches_total`, 'counter', 'Batches refused (bad frames, missing blocks, no room).', c.refusedBatches),
    single(`${P}content_index_blocks`, 'gauge', 'Blocks in the content index.', refs.index.size),
    single(`${P}open_views`, 'gauge', 'Point-in-time views open.', views?.list().length ?? 0),
    single(`${P}space_deleted_segments_total`, 'counter', 'Journal segments deleted inside the retention window to keep the space limits.', space?.droppedSegments ?? 0),
    single(`${P}space_retried_batches_total`, 'counter', 'Batches applied on a second try after the file system was full and room was made.', space?.retriedBatches ?? 0),
    { name: `${P}stream_applied_seq`, type: 'gauge', help: 'Newest applied sequence number, per stream.', samples: streams.map((s) => ({ labels: labels(s), value: s.nextSeq - 1 })) },
    { name: `${P}stream_disk_bytes`, type: 'gauge', help: 'Size of each replica disk.', samples: streams.map((s) => ({ labels: labels(s), value: s.diskBytes })) },
    { name: `${P}stream_journal_bytes`, type: 'gauge', help: 'Bytes of undo journal, per stream.', samples: streams.map((s) => ({ labels: labels(s), value: s.journalBytes })) },
    { name: `${P}stream_open_readers`, type: 'gauge', help: 'Point-in-time readers (views, exports) open, per stream.', samples: streams.map((s) => ({ labels: labels(s), value: s.openReaders })) },
  ];
}
