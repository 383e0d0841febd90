// The recovery-point timeline of a machine, built from the points its master target reports
// (GET …/recovery-points): the kept range with its retention tiers as bands, the newest and the
// marked points as markers (circles crash-consistent, diamonds app-consistent, flags
// bookmarks), and the radio list under it, which is the keyboard way to pick: the latest point,
// one listed point, or any time in the kept range.
import { h } from './dom.js';
import { ago, POINT_KINDS, seconds, time } from './format.js';

/** The master target's names of kinds → the control plane's. */
const KIND = { crash: 'crash-consistent', app: 'app-consistent', group: 'group', bookmark: 'bookmark' };

/** Every reported point of the machine, oldest first, each with a key unique in the machine. */
export function reportedPoints(report) {
  const seen = new Map();
  for (const d of report.disks) {
    for (const p of [...d.recent, ...d.marked]) {
      const key = `${d.diskId}:${p.seq}`;
      if (!seen.has(key)) seen.set(key, { key, diskId: d.diskId, id: p.id, seq: p.seq, time: p.time, kind: KIND[p.kind] ?? p.kind, name: p.name ?? null });
    }
  }
  return [...seen.values()].sort((a, b) => a.time.localeCompare(b.time) || a.seq - b.seq);
}

/** Says when the master target last deleted points inside the retention window for space (docs/journal-format.md). */
function shortenedText(report) {
  const times = report.disks.map((d) => d.shortenedForSpaceTime).filter(Boolean).sort();
  return times.length ? ` Older points were deleted to stay within the master target's space limits, last ${time(times.at(-1))}.` : '';
}

/** The kept range of the machine: its oldest and newest point times (ms), and the tiers. */
export function keptRange(report) {
  const oldest = report.disks.map((d) => d.oldest && Date.parse(d.oldest.time)).filter(Number.isFinite);
  const newest = report.disks.map((d) => d.newest && Date.parse(d.newest.time)).filter(Number.isFinite);
  if (!oldest.length || !newest.length) return null;
  return { fromMs: Math.max(...oldest), toMs: Math.min(...newest), tiers: report.disks[0].tiers };
}

/** What the API takes for a selection: 'latest', { time } or { id, diskId }. */
export function pointChoice(selection, points) {
  if (selection.kind === 'time') return { time: new Date(selection.timeMs).toISOString() };
  const p = selection.kind === 'point' && points.find((x) => x.key === selection.key);
  return p ? { id: p.id, diskId: p.diskId } : 'latest';
}

/** A selection in words, for confirmations and announcements. */
export function choiceText(selection, points, diskName) {
  if (selection.kind === 'time') return `the newest kept point at or before ${time(new Date(selection.timeMs).toISOString())}`;
  const p = selection.kind === 'point' && points.find((x) => x.key === selection.key);
  if (!p) return 'the latest point';
  return `the point of ${time(p.time)} (${pointLabel(p)}, seq ${p.seq}${diskName(p.diskId) ? ` of ${diskName(p.diskId)}` : ''})`;
}

function pointLabel(p) {
  const kind = POINT_KINDS[p.kind]?.label ?? p.kind;
  return p.name ? `${kind} “${p.name}”` : kind;
}

/** A local date-time value for <input type="datetime-local"> (seconds precision). */
function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 19);
}

/**
 * @param {object} o
 * @param {object} o.report       the machine's recovery points as reported
 * @param {object[]} o.points     reportedPoints(report)
 * @param {{kind: 'latest'} | {kind: 'point', key: string} | {kind: 'time', timeMs: number}} o.selection
 * @param {(selection) => void} o.onPick
 * @param {(diskId: string) => string | null} o.diskName  a disk's name when the machine has several
 * @param {number} o.nowMs
 */
export function pointTimeline(o) {
  const range = keptRange(o.report);
  const points = o.points;
  const first = Math.min(range?.fromMs ?? Infinity, ...points.map((p) => Date.parse(p.time)));
  const last = Math.max(range?.toMs ?? -Infinity, ...points.map((p) => Date.parse(p.time)));
  const span = Math.max(1, last - first);
  const at = (ms) => (points.length === 1 && !range ? 100 : ((ms - first) / span) * 100);
  const selectedKey = o.selection.kind === 'point' ? o.selection.key : null;

  const bands = [];
  if (range) {
    const full = range.tiers.fullSeconds === null ? -Infinity : o.nowMs - range.tiers.fullSeconds * 1000;
    const minute = o.nowMs - range.tiers.minuteTierSeconds * 1000;
    const band = (cls, fromMs, toMs) => {
      const a = Math.max(first, fromMs);
      const b = Math.min(last, toMs);
      if (b <= a) return;
      const el = h('div', { class: `tier ${cls}` });
      el.style.left = `${at(a)}%`;
      el.style.width = `${at(b) - at(a)}%`;
      bands.push(el);
    };
    band('tier-hour', -Infinity, minute);
    band('tier-minute', minute, full);
    band('tier-full', full, Infinity);
  }
  const strip = h('div', { class: 'timeline-strip', 'aria-hidden': 'true' }, bands,
    points.map((p) => {
      const marker = h('button', {
        type: 'button', tabindex: '-1', class: `marker ${p.kind}${p.key === selectedKey ? ' selected' : ''}`,
        title: `${time(p.time)} · ${pointLabel(p)}`, onclick: () => o.onPick({ kind: 'point', key: p.key }),
      });
      marker.style.left = `${at(Date.parse(p.time))}%`;
      return marker;
    }));
  const legend = h('ul', { class: 'legend' },
    ['crash-consistent', 'app-consistent', 'bookmark'].map((k) => h('li', {}, h('span', { class: `marker-key ${k}`, 'aria-hidden': 'true' }), POINT_KINDS[k].label)),
    range ? [['tier-full', 'every point kept'], ['tier-minute', 'one a minute'], ['tier-hour', 'one an hour']]
      .map(([cls, text]) => h('li', {}, h('span', { class: `band-key ${cls}`, 'aria-hidden': 'true' }), text)) : null);

  const tiers = range?.tiers;
  const kept = range ? h('p', { class: 'help', id: 'kept-range' },
    `The master target keeps points from ${time(new Date(range.fromMs).toISOString())} to ${time(new Date(range.toMs).toISOString())}`,
    tiers.fullSeconds === null ? ': every point.' : `: every point of the last ${seconds(tiers.fullSeconds)}, then one a minute up to ${seconds(tiers.minuteTierSeconds)} old, then one an hour.`,
    shortenedText(o.report),
    o.report.reportedAt ? ` Reported ${ago(o.report.reportedAt, o.nowMs)}.` : '') : null;

  const radio = (id, selection, checked, label, extra = null) => h('li', {},
    h('input', { type: 'radio', name: 'point', id, value: id, checked, onchange: () => o.onPick(selection()) }),
    h('label', { for: id, class: 'point' }, label), extra);
  const timeInput = range && h('input', {
    type: 'datetime-local', id: 'point-time-value', step: '1', 'aria-label': 'Time to recover to',
    min: localInput(range.fromMs), max: localInput(range.toMs),
    value: localInput(o.selection.kind === 'time' ? o.selection.timeMs : range.toMs),
    onchange: (e) => {
      const ms = new Date(e.target.value).getTime();
      if (Number.isFinite(ms)) o.onPick({ kind: 'time', timeMs: ms });
    },
  });
  const newestKey = points.length ? points[points.length - 1].key : null;
  const list = h('fieldset', { class: 'points' },
    h('legend', {}, 'Recovery point to use'),
    h('ol', {},
      radio('point-latest', () => ({ kind: 'latest' }), o.selection.kind === 'latest',
        [h('span', { class: 'point-time' }, 'Latest'), h('span', { class: 'muted' }, 'the newest point when the job starts')]),
      [...points].reverse().map((p) => {
        const id = `point-${p.key.replace(/\W/g, '-')}`;
        return radio(id, () => ({ kind: 'point', key: p.key }), p.key === selectedKey, [
          h('span', { class: `marker-key ${p.kind}`, 'aria-hidden': 'true' }),
          h('span', { class: 'point-time' }, time(p.time)),
          h('span', { class: 'point-kind' }, pointLabel(p)),
          h('span', { class: 'muted' }, [`seq ${p.seq}`, o.diskName(p.diskId), ago(p.time, o.nowMs)].filter(Boolean).join(' · ')),
          p.key === newestKey ? h('span', { class: 'badge good' }, 'newest reported') : null,
        ]);
      }),
      range ? radio('point-time', () => ({ kind: 'time', timeMs: new Date(timeInput.value).getTime() || range.toMs }), o.selection.kind === 'time',
        [h('span', { class: 'point-time' }, 'At a time'), h('span', { class: 'muted' }, 'the newest kept point at or before it')], timeInput) : null));
  return [strip, legend, kept, list];
}
