/**
 * Oracle for the shipped model through the segment CLI (issue 17, item 3): fresh synthetic SIIM images
 * (a seed the model was not trained on), `models/synthetic-pneumothorax/1` found through
 * MODEL_REPOSITORY, the submission scored against the generated train-rle.csv by this test's own
 * CSV reader, SIIM RLE decoder calls and Dice formula (not the CLI's parseSiimRleCsv/core/metrics),
 * and each post-processing flag checked for the change it must make against the run without it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeSiim } from '../core/rle/index.ts';
import { connectedComponents } from '../core/segmentation/components.ts';
import { TS } from '../core/dicom/transfer-syntax.ts';
import { encodeGrayDicom, generateSiimDataset, siimImage } from '../synth/index.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = fileURLToPath(new URL('./segment-cli.ts', import.meta.url));
const SHIPPED = join(root, 'models');
const SIZE = 256; // the shipped model's input size: no resampling between the model and the CSV
const SEED = 917_301; // not a seed the shipped model was trained on

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function segment(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    // The repository comes from MODEL_REPOSITORY (no --models); --model names the shipped model, since
    // models/ may hold others (the default model is the first by name).
    const p = spawn(process.execPath, ['--import', 'tsx', cli, ...args, '--model', 'synthetic-pneumothorax:1', '--workers', '1', '--no-progress'], {
      cwd: root,
      env: { ...process.env, MODEL_REPOSITORY: SHIPPED, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** id -> mask (null for a -1 row). Rows of one id are unioned (train-rle.csv has one per lesion). */
function readCsv(text: string, header: string): Map<string, Uint8Array | null> {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines[0], header);
  const out = new Map<string, Uint8Array | null>();
  for (const line of lines.slice(1)) {
    const comma = line.indexOf(',');
    assert.ok(comma > 0, `bad row ${line}`);
    const id = line.slice(0, comma).trim();
    const rle = line.slice(comma + 1).trim();
    if (rle === '-1') {
      if (!out.has(id)) out.set(id, null);
      continue;
    }
    const m = decodeSiim(rle, SIZE, SIZE).data;
    const prev = out.get(id);
    if (prev) for (let i = 0; i < m.length; i++) prev[i] = prev[i] || m[i] ? 1 : 0;
    else out.set(id, Uint8Array.from(m, (v) => (v ? 1 : 0)));
  }
  return out;
}

const area = (m: Uint8Array | null): number => (m ? m.reduce((a, v) => a + (v ? 1 : 0), 0) : 0);

/** 2|A∩B| / (|A|+|B|), 1 when both are empty (the SIIM leaderboard's rule). */
function diceOf(a: Uint8Array | null, b: Uint8Array | null): number {
  const na = area(a);
  const nb = area(b);
  if (na + nb === 0) return 1;
  let inter = 0;
  if (a && b) for (let i = 0; i < a.length; i++) inter += a[i] && b[i] ? 1 : 0;
  return (2 * inter) / (na + nb);
}

const full = (m: Uint8Array | null): Uint8Array => m ?? new Uint8Array(SIZE * SIZE);

function isSubset(a: Uint8Array | null, b: Uint8Array | null): boolean {
  const x = full(a);
  const y = full(b);
  for (let i = 0; i < x.length; i++) if (x[i] && !y[i]) return false;
  return true;
}

function sameMask(a: Uint8Array | null, b: Uint8Array | null): boolean {
  const x = full(a);
  const y = full(b);
  for (let i = 0; i < x.length; i++) if ((x[i] ? 1 : 0) !== (y[i] ? 1 : 0)) return false;
  return true;
}

function components(m: Uint8Array | null): { labels: Int32Array; areas: number[] } {
  const c = connectedComponents({ rows: SIZE, cols: SIZE, data: full(m) });
  return { labels: c.labels, areas: c.areas.slice(1) };
}

function hflip(m: Uint8Array | null): Uint8Array | null {
  if (!m) return null;
  const out = new Uint8Array(m.length);
  for (let y = 0; y < SIZE; y++) for (let x = 0; x < SIZE; x++) out[y * SIZE + x] = m[y * SIZE + SIZE - 1 - x]!;
  return out;
}

test('segment CLI, shipped model, fresh synthetic SIIM images: Dice >= 0.8 recomputed from the CSVs, each rule flag moves the masks the way it must, failures -1 and exit 1 unless --allow-failures', { timeout: 15 * 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'segment-oracle-'));
  try {
    const data = await generateSiimDataset({ outDir: join(dir, 'data'), count: 16, size: SIZE, seed: SEED, secondLesionProbability: 0.6 });
    const images = join(dir, 'data', 'dicom-images-train');
    // Lossless image + its exact mirror image (no truth rows: not scored), for the TTA check.
    const flipDir = join(images, 'mirror');
    await mkdir(flipDir, { recursive: true });
    let pairs = 0;
    for (let i = 0; pairs < 2; i++) {
      const img = siimImage(SEED + 1, 'train', i, SIZE, { negativeFraction: 0 });
      const px = img.phantom.pixels;
      const mirrored = new Uint8Array(px.length);
      for (let y = 0; y < SIZE; y++) for (let x = 0; x < SIZE; x++) mirrored[y * SIZE + x] = px[y * SIZE + SIZE - 1 - x]!;
      const opts = { transferSyntaxUid: TS.ExplicitVRLittleEndian };
      await writeFile(join(flipDir, `pair${pairs}-a.dcm`), await encodeGrayDicom(px, SIZE, SIZE, img.meta, opts));
      await writeFile(join(flipDir, `pair${pairs}-b.dcm`), await encodeGrayDicom(mirrored, SIZE, SIZE, { ...img.meta, sopInstanceUid: `${img.meta.sopInstanceUid}.9` }, opts));
      pairs++;
    }
    await writeFile(join(images, 'corrupt.dcm'), 'not a DICOM file');
    const truth = readCsv(await readFile(data.csvPath, 'utf8'), 'ImageId, EncodedPixels');
    assert.equal(truth.size, 16);

    const runTo = async (name: string, flags: string[], env?: Record<string, string>): Promise<{ run: Run; masks: Map<string, Uint8Array | null>; out: string }> => {
      const out = join(dir, `${name}.csv`);
      const run = await segment([images, '--out', out, ...flags], env);
      const masks = readCsv(await readFile(out, 'utf8'), 'ImageId,EncodedPixels');
      assert.equal(masks.size, 16 + 2 * pairs + 1, `${name}: every image has a row`);
      return { run, masks, out };
    };

    // Base run: the model found through MODEL_REPOSITORY (no --models), manifest rules.
    const base = await runTo('base', ['--truth', data.csvPath]);
    const report = JSON.parse(await readFile(join(dir, 'base.report.json'), 'utf8'));

    await t.test('mean Dice >= 0.8 against train-rle.csv, and report.meanDice = the Dice recomputed from the two CSVs', () => {
      assert.deepEqual(report.model, { name: 'synthetic-pneumothorax', version: '1', executionProvider: 'cpu' });
      let sum = 0;
      const perImage = new Map<string, number>(report.perImage.map((p: { imageId: string; dice?: number }) => [p.imageId, p.dice]));
      for (const [id, want] of truth) {
        assert.ok(base.masks.has(id), `${id} missing from the submission`);
        const d = diceOf(base.masks.get(id)!, want);
        assert.ok(Math.abs(perImage.get(id)! - d) < 1e-12, `${id}: report ${perImage.get(id)} vs CSV ${d}`);
        sum += d;
      }
      const mean = sum / truth.size;
      assert.equal(report.scored, truth.size);
      assert.ok(Math.abs(report.meanDice - mean) < 1e-12, `report.meanDice ${report.meanDice} vs recomputed ${mean}`);
      assert.ok(mean >= 0.8, `mean Dice ${mean.toFixed(4)} < 0.8`);
      assert.match(base.run.stdout, new RegExp(`mean Dice ${mean.toFixed(4)} over 16 images`));
    });

    await t.test('a failed image is a -1 row, named on stderr and in the report, exit exactly 1 without --allow-failures', () => {
      assert.equal(base.run.code, 1, base.run.stderr);
      assert.equal(base.masks.get('corrupt'), null);
      assert.match(base.run.stderr, /failed: .*corrupt\.dcm: NOT_DICOM: .*\(written as corrupt,-1\)/);
      assert.match(base.run.stderr, /1 of 21 images failed/);
      assert.equal(report.failed, 1);
      assert.equal(report.failures[0].imageId, 'corrupt');
      assert.equal(report.failures[0].code, 'NOT_DICOM');
    });

    const baseAreas = [...base.masks.entries()].filter(([id]) => id !== 'corrupt').map(([id, m]) => [id, area(m)] as const);

    // The flagged runs only differ from the base run by their flag; they run side by side (each is
    // mostly engine start-up), then each subtest checks its own.
    const positive = baseAreas.filter(([, a]) => a > 0).map(([, a]) => a).sort((a, b) => a - b);
    const minArea = positive[Math.floor(positive.length / 2)]!; // a median mask survives, smaller ones must go
    const minComponentArea = 30;
    const lone = join(dir, 'lone');
    await mkdir(lone);
    await writeFile(join(lone, 'bad.dcm'), 'DICM?');
    const [hiRun, minAreaRun, minComponentRun, largestRun, ttaRun, loneRun] = await Promise.all([
      runTo('threshold', ['--threshold', '0.9', '--allow-failures']),
      runTo('min-area', ['--min-area', String(minArea), '--allow-failures']),
      runTo('min-component', ['--min-component-area', String(minComponentArea), '--allow-failures']),
      runTo('keep-largest', ['--keep-largest', '--allow-failures']),
      runTo('tta', ['--tta', '--allow-failures']),
      segment([lone, '--out', join(dir, 'lone.csv'), '--allow-failures']),
    ]);
    t.diagnostic(`mean Dice ${report.meanDice.toFixed(4)}; min-area ${minArea} over positive areas ${positive.join(',')}`);

    await t.test('--threshold 0.9 (manifest 0.5) never grows a mask and shrinks at least one; --allow-failures exits 0', async () => {
      const hi = hiRun;
      assert.equal(hi.run.code, 0, hi.run.stderr);
      for (const r of [minAreaRun, minComponentRun, largestRun, ttaRun]) assert.equal(r.run.code, 0, r.run.stderr);
      assert.doesNotMatch(hi.run.stderr, /exit code 1/);
      let shrunk = 0;
      for (const [id, m] of hi.masks) {
        assert.ok(isSubset(m, base.masks.get(id)!), `${id}: a pixel above 0.9 is not above 0.5`);
        if (area(m) < area(base.masks.get(id)!)) shrunk++;
      }
      assert.ok(shrunk > 0, 'no mask changed');
    });

    await t.test('--min-area N empties exactly the masks smaller than N and leaves the others as they were', async () => {
      const n = minArea;
      assert.ok(positive[0]! < n, 'the case needs masks on both sides of N');
      const r = minAreaRun;
      let emptied = 0;
      for (const [id, a] of baseAreas) {
        const m = r.masks.get(id)!;
        if (a < n) {
          assert.equal(m, null, `${id}: area ${a} < ${n} must be -1`);
          if (a > 0) emptied++;
        } else assert.ok(sameMask(m, base.masks.get(id)!), `${id}: area ${a} >= ${n} must be unchanged`);
      }
      assert.ok(emptied > 0);
    });

    await t.test('--min-component-area K removes exactly the components smaller than K', async () => {
      const k = minComponentArea;
      let small = 0;
      let kept = 0;
      const r = minComponentRun;
      for (const [id] of baseAreas) {
        const b = base.masks.get(id)!;
        const c = components(b);
        const want = new Uint8Array(SIZE * SIZE);
        for (let i = 0; i < want.length; i++) {
          const l = c.labels[i]!;
          if (l > 0 && c.areas[l - 1]! >= k) want[i] = 1;
        }
        small += c.areas.filter((a) => a < k).length;
        kept += c.areas.filter((a) => a >= k).length;
        assert.ok(sameMask(r.masks.get(id)!, want), `${id}: components ${c.areas.join(',')} with K=${k}`);
      }
      assert.ok(small > 0 && kept > 0, `the case needs components on both sides of K (small ${small}, kept ${kept})`);
    });

    await t.test('--keep-largest leaves one component per mask: the largest one of the mask without the flag', async () => {
      const r = largestRun;
      let multi = 0;
      for (const [id] of baseAreas) {
        const b = base.masks.get(id)!;
        const m = r.masks.get(id)!;
        const before = components(b).areas;
        const after = components(m).areas;
        if (before.length === 0) {
          assert.equal(m, null, id);
          continue;
        }
        if (before.length > 1) multi++;
        assert.equal(after.length, 1, `${id}: ${after.length} components with --keep-largest`);
        assert.equal(after[0], Math.max(...before), `${id}: kept ${after[0]} px, largest was ${Math.max(...before)}`);
        assert.ok(isSubset(m, b), `${id}: the kept component is not one of the mask's`);
      }
      assert.ok(multi > 0, 'the case needs a mask with several components');
    });

    await t.test('--tta makes the masks mirror-equivariant (mask of the mirrored image = mirrored mask) and changes some mask', async () => {
      const r = ttaRun;
      let changed = 0;
      for (const [id] of baseAreas) if (!sameMask(r.masks.get(id)!, base.masks.get(id)!)) changed++;
      assert.ok(changed > 0, 'TTA changed no mask');
      let baseEquivariant = true;
      for (let p = 0; p < pairs; p++) {
        const a = r.masks.get(`pair${p}-a`)!;
        const b = r.masks.get(`pair${p}-b`)!;
        assert.ok(area(a) > 0, `pair${p}: empty mask, the check would be vacuous`);
        assert.ok(sameMask(b, hflip(a)), `pair${p}: TTA mask of the mirrored image is not the mirrored TTA mask`);
        if (!sameMask(base.masks.get(`pair${p}-b`)!, hflip(base.masks.get(`pair${p}-a`)!))) baseEquivariant = false;
      }
      assert.ok(!baseEquivariant, 'without TTA the model is already mirror-equivariant on these pairs: the check would not need TTA');
    });

    await t.test('only failures: exit 1 even with --allow-failures (no image segmented)', async () => {
      assert.equal(loneRun.code, 1, loneRun.stderr);
      assert.equal(await readFile(join(dir, 'lone.csv'), 'utf8'), 'ImageId,EncodedPixels\nbad,-1\n');
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
