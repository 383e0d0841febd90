// Line charts as inline SVG: a time axis, a value axis from zero, one line per series and an
// optional threshold. The chart is one image to assistive technology, described by its summary.
import { h } from './dom.js';
import { clock } from './format.js';

const H = 200;
const PAD = { left: 56, right: 12, top: 14, bottom: 28 };

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

/**
 * @param {object} o
 * @param {string} o.title        shown above the chart and read by screen readers
 * @param {{ name: string, cls: string, points: { t: number, v: number }[] }[]} o.series
 * @param {number} o.fromMs       start of the time window
 * @param {number} o.toMs         end of the time window
 * @param {(v: number) => string} o.format   value labels
 * @param {{ value: number, label: string }} [o.threshold]
 * @param {string} o.summary      a sentence saying what the chart shows (its text alternative)
 * @param {number} [o.width]     drawing width in CSS pixels, so that text keeps its size
 */
export function lineChart(o) {
  const W = Math.max(260, Math.round(o.width ?? 640));
  const all = o.series.flatMap((s) => s.points.map((p) => p.v));
  const maxV = niceMax(Math.max(o.threshold?.value ?? 0, ...all, 0) * 1.1);
  const x = (t) => PAD.left + ((t - o.fromMs) / (o.toMs - o.fromMs)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / maxV) * (H - PAD.top - PAD.bottom);
  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const v = f * maxV;
    return h('g', { class: 'grid' },
      h('line', { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }),
      h('text', { x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, o.format(v)));
  });
  const ticks = [0, 0.5, 1].map((f) => {
    const t = o.fromMs + f * (o.toMs - o.fromMs);
    return h('text', { class: 'tick', x: x(t), y: H - 8, 'text-anchor': f === 0 ? 'start' : f === 1 ? 'end' : 'middle' }, clock(t));
  });
  const lines = o.series.map((s) => {
    const pts = s.points.filter((p) => p.t >= o.fromMs && p.t <= o.toMs).sort((a, b) => a.t - b.t);
    if (pts.length === 0) return null;
    if (pts.length === 1) return h('circle', { class: `series ${s.cls}`, cx: x(pts[0].t), cy: y(pts[0].v), r: 3.5 });
    const d = pts.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
    return h('path', { class: `series ${s.cls}`, d });
  });
  const threshold = o.threshold && h('g', { class: 'threshold' },
    h('line', { x1: PAD.left, x2: W - PAD.right, y1: y(o.threshold.value), y2: y(o.threshold.value) }),
    h('text', { x: W - PAD.right - 4, y: y(o.threshold.value) - 5, 'text-anchor': 'end' }, o.threshold.label));
  const empty = all.length === 0 && h('text', { class: 'empty', x: (PAD.left + W) / 2, y: H / 2, 'text-anchor': 'middle' }, 'no reports in this window yet');
  const svg = h('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${o.title}. ${o.summary}`, class: 'chart' },
    grid, ticks, threshold, lines, empty);
  const legend = h('ul', { class: 'legend' },
    o.series.map((s) => h('li', {}, h('span', { class: `swatch ${s.cls}`, 'aria-hidden': 'true' }), s.name)),
    o.threshold ? h('li', {}, h('span', { class: 'swatch threshold', 'aria-hidden': 'true' }), o.threshold.label) : null);
  return h('figure', { class: 'chart-box' }, h('figcaption', {}, o.title), svg, legend, h('p', { class: 'visually-hidden' }, o.summary));
}

/** A toggle between the last hour and the last day; calls `onChange('hour' | 'day')`. */
/** The drawing width of each chart in `container`, which holds `count` side by side on wide screens. */
export function chartWidth(container, count = 2) {
  const cols = window.matchMedia('(max-width: 760px)').matches ? 1 : count;
  const width = container.clientWidth || container.parentElement?.clientWidth || 640;
  return (width - (cols - 1) * 13) / cols - 30;
}

export function windowToggle(current, onChange, label) {
  const btn = (value, text) => h('button', {
    type: 'button', class: 'toggle', 'aria-pressed': String(current === value),
    onclick: () => onChange(value),
  }, text);
  return h('div', { class: 'toggles', role: 'group', 'aria-label': label }, btn('hour', 'Last hour'), btn('day', 'Last day'));
}
