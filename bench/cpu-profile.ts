/**
 * `node --import tsx bench/cpu-profile.ts FILE.cpuprofile [TOP] [FROM_US..TO_US]`: a V8 CPU
 * profile (from `node --cpu-prof`) summed by function, self time and inclusive time, so that a
 * benchmark's hot spots can be named without a browser. A window in monotonic microseconds
 * (what `process.hrtime.bigint() / 1000n` gives, e.g. printed by the wan benchmark) keeps
 * only the samples taken within it, leaving out start-up.
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, topText, windowText] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: cpu-profile.ts FILE.cpuprofile [TOP]\n');
  process.exit(2);
}
const top = Number(topText ?? 30);
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const [fromUs, toUs] = windowText ? windowText.split('..').map(Number) : [-Infinity, Infinity];
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const selfUs = new Map<number, number>();
let atUs = p.startTime;
p.samples.forEach((id, i) => {
  atUs += p.timeDeltas[i] ?? 0;
  if (atUs >= fromUs && atUs <= toUs) selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
});

const short = (url: string) => url.replace(/^file:\/\//, '').replace(/.*\/node_modules\//, 'nm:').replace(/.*\/(core|process-server|master-target|bench|cli)\//, '$1/');
const keyOf = (n: Node) => {
  const where = short(n.callFrame.url);
  return `${n.callFrame.functionName || '(anonymous)'} ${where}${where ? `:${n.callFrame.lineNumber + 1}:${n.callFrame.columnNumber + 1}` : ''}`;
};
const inclusive = new Map<string, number>();
for (const [id, us] of selfUs) {
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const k = keyOf(byId.get(at)!);
    if (seen.has(k)) continue;
    seen.add(k);
    inclusive.set(k, (inclusive.get(k) ?? 0) + us);
  }
}
const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
let totalUs = 0;
let idleUs = 0;
for (const [id, us] of selfUs) {
  const n = byId.get(id)!;
  totalUs += us;
  if (n.callFrame.functionName === '(idle)') idleUs += us;
  const where = short(n.callFrame.url);
  const key = keyOf(n);
  byFunction.set(key, (byFunction.get(key) ?? 0) + us);
  const f = where.replace(/:.*$/, '') || n.callFrame.functionName;
  byFile.set(f, (byFile.get(f) ?? 0) + us);
}
const busyUs = totalUs - idleUs;
const line = (name: string, us: number) => `${(us / 1e6).toFixed(2).padStart(8)} s ${((100 * us) / busyUs).toFixed(1).padStart(5)}%  ${name}\n`;
process.stdout.write(`${file}: ${(totalUs / 1e6).toFixed(1)} s sampled, ${(busyUs / 1e6).toFixed(1)} s not idle (percentages of that)\n\nby function (self):\n`);
for (const [k, us] of [...byFunction].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(line(k, us));
process.stdout.write('\nby file (self):\n');
for (const [k, us] of [...byFile].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, 15)) process.stdout.write(line(k, us));
process.stdout.write('\nby function (inclusive):\n');
for (const [k, us] of [...inclusive].filter(([k]) => !k.startsWith('(idle)') && !k.startsWith('(root)')).sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(line(k, us));
