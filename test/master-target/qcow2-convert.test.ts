import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nbdIsCheaper, planInputs, type ConvertInput } from '../../master-target/views/qcow2-convert.ts';

const MiB = 1024 * 1024;

/** Inputs must cover the disk end to end, alternate kinds, and hold every data byte in a data input. */
function assertCovers(inputs: ConvertInput[], sizeBytes: number, data: Array<[number, number]>): void {
  assert.equal(inputs[0].start, 0);
  assert.equal(inputs.at(-1)!.end, sizeBytes);
  for (let i = 1; i < inputs.length; i++) {
    assert.equal(inputs[i].start, inputs[i - 1].end, 'contiguous');
    assert.notEqual(inputs[i].kind, inputs[i - 1].kind, 'neighbours of one kind are merged');
  }
  for (const [s, t] of data) {
    const holder = inputs.find((i) => i.start <= s && t <= i.end);
    assert.equal(holder?.kind, 'data', `data ${s}-${t} is read`);
  }
}

describe('planInputs', () => {
  it('reads a fully written disk as one input', () => {
    assert.deepEqual(planInputs(1024 * MiB, [[0, 1024 * MiB]]), [{ kind: 'data', start: 0, end: 1024 * MiB }]);
  });

  it('skips long holes and reads short ones with their data', () => {
    const data: Array<[number, number]> = [
      [0, MiB],
      [2 * MiB, 3 * MiB],
      [500 * MiB, 501 * MiB],
    ];
    const inputs = planInputs(1024 * MiB, data);
    assert.deepEqual(inputs, [
      { kind: 'data', start: 0, end: 3 * MiB },
      { kind: 'zero', start: 3 * MiB, end: 500 * MiB },
      { kind: 'data', start: 500 * MiB, end: 501 * MiB },
      { kind: 'zero', start: 501 * MiB, end: 1024 * MiB },
    ]);
    assertCovers(inputs, 1024 * MiB, data);
  });

  it('keeps to the most inputs allowed on a fragmented disk, skipping the longest holes', () => {
    const data: Array<[number, number]> = [];
    for (let at = 0; at < 64 * 1024 * MiB; at += 100 * MiB + 64 * 1024) data.push([at, at + 64 * 1024]);
    data.push([40 * 1024 * MiB - 64 * 1024, 40 * 1024 * MiB]);
    data.sort((x, y) => x[0] - y[0]);
    const inputs = planInputs(64 * 1024 * MiB, data, 64 * MiB, 64);
    assert.ok(inputs.length <= 64, `${inputs.length} inputs`);
    assertCovers(inputs, 64 * 1024 * MiB, data);
    assert.equal(inputs.filter((i) => i.kind === 'zero').length, 31);
    // The holes before 40 GiB were cut short by the extra range: the longer ones are skipped first.
    const shortest = Math.min(...inputs.filter((i) => i.kind === 'zero').map((i) => i.end - i.start));
    assert.ok(shortest >= 100 * MiB, `a skipped hole of ${shortest} bytes`);
    assert.equal(nbdIsCheaper(inputs, data.length * 64 * 1024), false, 'most of what NBD would read is holes');
  });

  it('prefers NBD while the holes it reads stay under three times the data', () => {
    assert.equal(nbdIsCheaper([{ kind: 'data', start: 0, end: 4 * MiB }], MiB), true);
    assert.equal(nbdIsCheaper([{ kind: 'data', start: 0, end: 5 * MiB }], MiB), false);
    assert.equal(nbdIsCheaper([{ kind: 'zero', start: 0, end: 1024 * MiB }], 0), true);
  });

  it('gives an empty or never-written disk zero inputs only', () => {
    assert.deepEqual(planInputs(0, []), [{ kind: 'zero', start: 0, end: 0 }]);
    assert.deepEqual(planInputs(16 * 1024 * MiB, []), [{ kind: 'zero', start: 0, end: 16 * 1024 * MiB }]);
    assert.deepEqual(planInputs(MiB, []), [{ kind: 'data', start: 0, end: MiB }], 'a hole shorter than the minimum is read');
  });
});
