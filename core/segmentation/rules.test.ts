/**
 * The post-processing rules after the threshold, on crafted probability maps: connected components
 * (against a flood fill written here), small-component removal, keep-largest, the SIIM triplet gate,
 * per-label overrides and request overrides through the processor.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createMask, maskArea, type Mask } from '../mask.ts';
import { connectedComponents, filterComponents } from './components.ts';
import { probabilitiesToMasks } from './postprocess.ts';
import { SegmentationProcessor } from './processor.ts';

/** Component areas by breadth-first flood fill (8-connectivity), sorted: the oracle. */
function floodAreas(m: Mask): number[] {
  const seen = new Uint8Array(m.data.length);
  const areas: number[] = [];
  for (let s = 0; s < m.data.length; s++) {
    if (!m.data[s] || seen[s]) continue;
    let area = 0;
    const queue = [s];
    seen[s] = 1;
    while (queue.length) {
      const i = queue.pop()!;
      area++;
      const y = Math.floor(i / m.cols);
      const x = i % m.cols;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const ny = y + dy;
          const nx = x + dx;
          if (ny < 0 || nx < 0 || ny >= m.rows || nx >= m.cols) continue;
          const j = ny * m.cols + nx;
          if (m.data[j] && !seen[j]) {
            seen[j] = 1;
            queue.push(j);
          }
        }
      }
    }
    areas.push(area);
  }
  return areas.sort((a, b) => a - b);
}

test('connected components equal a flood fill on random masks (8-connectivity)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 24 }), fc.integer({ min: 1, max: 24 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), (rows, cols, seed) => {
      let s = seed;
      const data = Uint8Array.from({ length: rows * cols }, () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) % 100 < 45 ? 1 : 0));
      const m = createMask(rows, cols, data);
      const { labels, areas } = connectedComponents(m);
      assert.deepEqual(areas.slice(1).sort((a, b) => a - b), floodAreas(m));
      for (let i = 0; i < data.length; i++) assert.equal(labels[i] !== 0, data[i] === 1);
    }),
    { numRuns: 200 },
  );
});

test('diagonal neighbours join one component; a gap splits', () => {
  const m = createMask(3, 5, Uint8Array.from([1, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0]));
  assert.deepEqual(floodAreas(m), [2, 3]);
  assert.deepEqual(connectedComponents(m).areas.slice(1).sort(), [2, 3]);
});

/** A probability map H x W with rectangles of given probability on a background of 0.05. */
function map(h: number, w: number, boxes: Array<[number, number, number, number, number]>): Float32Array {
  const p = new Float32Array(h * w).fill(0.05);
  for (const [y0, x0, bh, bw, v] of boxes) for (let y = y0; y < y0 + bh; y++) for (let x = x0; x < x0 + bw; x++) p[y * w + x] = v;
  return p;
}

const base = { channels: 1, height: 32, width: 32, rows: 32, cols: 32, labels: ['lesion'], threshold: 0.5, minArea: 0 };

test('minComponentArea drops small blobs and keeps large ones; keepLargest keeps one', async () => {
  const probs = map(32, 32, [[2, 2, 10, 10, 0.9], [20, 20, 3, 3, 0.9], [25, 2, 5, 6, 0.9]]);
  const [plain] = await probabilitiesToMasks(probs.slice(), base);
  assert.equal(plain!.area, 100 + 9 + 30);
  const [small] = await probabilitiesToMasks(probs.slice(), { ...base, minComponentArea: 10 });
  assert.equal(small!.area, 130);
  assert.equal(small!.minComponentArea, 10);
  const [largest] = await probabilitiesToMasks(probs.slice(), { ...base, keepLargest: true });
  assert.equal(largest!.area, 100);
  assert.deepEqual(largest!.bbox, [2, 2, 10, 10]);
  assert.equal(largest!.keepLargest, true);
  assert.equal(plain!.keepLargest, undefined, 'rules not in force are not reported');
});

test('the triplet keeps a faint lesion with a confident core and drops a diffuse one that a single threshold keeps', async () => {
  // A: 64 px at 0.45 around a 16 px core at 0.95. B: 120 px at 0.45, nothing confident.
  const withCore = map(32, 32, [[4, 4, 8, 8, 0.45], [6, 6, 4, 4, 0.95]]);
  const diffuse = map(32, 32, [[4, 4, 10, 12, 0.45]]);
  const triplet = { ...base, topThreshold: 0.9, minArea: 10, threshold: 0.4 };
  const [a] = await probabilitiesToMasks(withCore.slice(), triplet);
  assert.equal(a!.area, 64, 'the bottom threshold draws the whole lesion');
  assert.equal(a!.topThreshold, 0.9);
  const [b] = await probabilitiesToMasks(diffuse.slice(), triplet);
  assert.equal(b!.empty, true, 'no pixel above the top threshold: no finding');
  // One threshold cannot do both: at 0.4 it keeps B, at 0.9 it draws only A's core.
  const [b1] = await probabilitiesToMasks(diffuse.slice(), { ...base, threshold: 0.4, minArea: 10 });
  assert.equal(b1!.area, 120);
  const [a1] = await probabilitiesToMasks(withCore.slice(), { ...base, threshold: 0.9, minArea: 10 });
  assert.equal(a1!.area, 16);
});

test('rules apply at the original resolution (after resampling) and per label', async () => {
  const lesion = map(16, 16, [[2, 2, 2, 2, 0.95], [10, 10, 5, 5, 0.95]]);
  const organ = map(16, 16, [[1, 1, 1, 1, 0.95], [8, 1, 6, 6, 0.95]]);
  const probs = new Float32Array(2 * 256);
  probs.set(lesion, 0);
  probs.set(organ, 256);
  const masks = await probabilitiesToMasks(probs, {
    ...base,
    channels: 2,
    height: 16,
    width: 16,
    rows: 64,
    cols: 64,
    labels: ['lesion', 'organ'],
    classes: { organ: { keepLargest: true } },
  });
  const [l, o] = masks;
  assert.ok(l!.keepLargest === undefined && o!.keepLargest === true);
  // Lesion keeps both blobs; organ only its big one (24x24 at 4x, give or take the bilinear edge).
  const blobs = (m: Mask): number => floodAreas(m).length;
  assert.equal(blobs(l!.mask), 2);
  assert.equal(blobs(o!.mask), 1);
  assert.ok(o!.bbox![0] >= 0 && o!.bbox![1] >= 28, `organ bbox ${o!.bbox}`);
});

test('processor: a request rule overrides the manifest for every label, including per-label values', async () => {
  const processor = new SegmentationProcessor({
    preprocessing: { size: { height: 32, width: 32 }, intensity: { kind: 'minmax' } } as never,
    activation: 'sigmoid',
    labels: ['lesion'],
    postprocessing: { threshold: 0.5, minArea: 0, classes: { lesion: { minComponentArea: 50 } } },
  });
  const probs = map(32, 32, [[2, 2, 10, 10, 0.9], [20, 20, 3, 3, 0.9]]);
  const [manifestRules] = await processor.postprocess(probs.slice(), undefined, { rows: 32, cols: 32 });
  assert.equal(manifestRules!.area, 100, 'manifest per-label rule removes the 9 px blob');
  const [asked] = await processor.postprocess(probs.slice(), undefined, { rows: 32, cols: 32, minComponentArea: 0 });
  assert.equal(asked!.area, 109, 'the request turned the rule off for every label');
  assert.equal(maskArea(asked!.mask), 109);
});

test('filterComponents leaves a mask alone when no rule is set', () => {
  const m = createMask(2, 2, Uint8Array.from([1, 0, 0, 1]));
  assert.equal(filterComponents(m, {}), m);
  assert.deepEqual(Array.from(m.data), [1, 0, 0, 1]);
});

test('manifest: per-label rules must name a label', async () => {
  const { readFile } = await import('node:fs/promises');
  const { parseManifest } = await import('../manifest.ts');
  const json = JSON.parse(await readFile(new URL('../../models/synthetic-pneumothorax/1/model.json', import.meta.url), 'utf8'));
  const label = json.labels[0];
  assert.doesNotThrow(() => parseManifest({ ...json, postprocessing: { ...json.postprocessing, classes: { [label]: { keepLargest: true } } } }));
  assert.throws(() => parseManifest({ ...json, postprocessing: { ...json.postprocessing, classes: { heart: { keepLargest: true } } } }), /postprocessing\.classes\.heart: rules for "heart"/);
});
