/**
 * `npm run import` (tools/import-model.ts) against the committed PyTorch exports in
 * test/fixtures/byom (made by make.py there; no PyTorch needed here):
 *   - the oracle: onnxruntime reproduces PyTorch's own output for a fixed input (independent of our code);
 *   - each fixture imports into a temp repository; the manifest validates and its sha256 is the file's;
 *   - refusals are one line on stderr with exit status 2;
 *   - served through the Engine, each imported model returns exactly the masks that thresholding the
 *     ONNX output, run directly through onnxruntime on toTensor's tensor, gives.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import pino from 'pino';
import { decodeDicom } from '../../core/dicom/decode.ts';
import { TS } from '../../core/dicom/transfer-syntax.ts';
import { Engine, readModelVersion } from '../../core/engine/index.ts';
import { parseManifest, type ModelManifest } from '../../core/manifest.ts';
import { toTensor } from '../../core/preprocess/index.ts';
import { chestDicom } from '../../synth/index.ts';
import { IMAGENET, main, type ImportReport } from '../../tools/import-model.ts';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const FIX = join(ROOT, 'test/fixtures/byom');
const fixture = (f: string) => join(FIX, f);

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Run {
  code: number;
  out: string;
  err: string;
}

/** The CLI in-process (same code as the binary; main's return value is the process exit status). */
async function cli(args: string[]): Promise<Run> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

function assertOneLineError(r: Run, pattern: RegExp): void {
  assert.equal(r.code, 2, `exit status (stderr: ${r.err})`);
  assert.equal(r.out, '');
  const lines = r.err.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one line on stderr, got: ${JSON.stringify(r.err)}`);
  assert.match(lines[0]!, /^error: /);
  assert.match(lines[0]!, pattern);
}

describe('torch -> onnxruntime oracle (committed .io.bin files)', () => {
  for (const name of ['binary_1ch', 'imagenet_3ch', 'multiclass_3ch']) {
    test(`${name}: onnxruntime reproduces PyTorch within 1e-4`, async () => {
      const meta = JSON.parse(await readFile(fixture(`${name}.io.json`), 'utf8')) as {
        data: string;
        input: { name: string; shape: number[] };
        output: { name: string; shape: number[] };
        sha256: string;
      };
      const raw = await readFile(fixture(meta.data));
      assert.equal(sha256(raw), meta.sha256, 'the .io.bin is the one make.py wrote');
      const n = (s: number[]) => s.reduce((a, b) => a * b, 1);
      const all = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      const x = all.subarray(0, n(meta.input.shape));
      const want = all.subarray(n(meta.input.shape));
      assert.equal(want.length, n(meta.output.shape));
      const session = await ort.InferenceSession.create(fixture(`${name}.onnx`));
      try {
        const got = (await session.run({ [meta.input.name]: new ort.Tensor('float32', x, meta.input.shape) }))[meta.output.name]!;
        assert.deepEqual([...got.dims], meta.output.shape);
        const g = got.data as Float32Array;
        let worst = 0;
        for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(g[i]! - want[i]!));
        assert.ok(worst <= 1e-4, `max |ort - torch| = ${worst}`);
      } finally {
        await session.release();
      }
    });
  }
});

describe('npm run import', () => {
  let repo: string;
  const reports = new Map<string, ImportReport>();
  const IMPORTS: Record<string, string[]> = {
    bin: ['binary_1ch.onnx', '--name', 'bin'],
    rgb: ['imagenet_3ch.onnx', '--name', 'rgb', '--imagenet', '--version', '2'],
    multi: ['multiclass_3ch.onnx', '--name', 'multi', '--imagenet', '--size', '64', '--labels', 'background,lung,heart,lesion'],
    softmax: ['multiclass_3ch.onnx', '--name', 'classes', '--imagenet', '--size', '64', '--labels', 'background,lung,heart,lesion', '--activation', 'softmax'],
  };

  before(async () => {
    repo = await mkdtemp(join(tmpdir(), 'import-test-'));
    for (const [key, [file, ...args]] of Object.entries(IMPORTS)) {
      const r = await cli([fixture(file!), ...args, '--repository', repo, '--json']);
      assert.equal(r.code, 0, `import ${key}: ${r.err}`);
      reports.set(key, JSON.parse(r.out) as ImportReport);
    }
  });
  after(async () => {
    await rm(repo, { recursive: true, force: true });
  });

  test('each fixture installs a version the repository accepts: manifest valid, sha256 of the copied file', async () => {
    for (const [key, [file]] of Object.entries(IMPORTS)) {
      const report = reports.get(key)!;
      const { name, version } = report.manifest;
      const entry = await readModelVersion(repo, name, version); // schema, names, file present, sha256
      const json = JSON.parse(await readFile(join(repo, name, version, 'model.json'), 'utf8'));
      const m = parseManifest(json);
      const original = await readFile(fixture(file!));
      assert.equal(m.onnx.sha256, sha256(original));
      assert.deepEqual(await readFile(entry.onnxPath), original);
      assert.equal(m.onnx.opset, 17);
      assert.deepEqual((await readdir(join(repo, name))).sort(), [version], 'no staging directory left behind');
    }
  });

  test('shapes, names, labels, activation and preprocessing are inferred from the graph and the flags', () => {
    const bin = reports.get('bin')!.manifest;
    assert.deepEqual(bin.input, { name: 'image', layout: 'NCHW', dtype: 'float32', shape: ['batch', 1, 64, 64] });
    assert.deepEqual(bin.output, { name: 'logits', activation: 'logits', shape: ['batch', 1, 64, 64] });
    assert.deepEqual(bin.labels, ['mask']);
    assert.equal(bin.version, '1');
    assert.deepEqual(bin.preprocessing, { size: { height: 64, width: 64 }, resize: 'bilinear', intensity: { kind: 'minmax' }, channels: 1 });

    const rgb = reports.get('rgb')!.manifest;
    assert.equal(rgb.version, '2');
    assert.deepEqual(rgb.input.shape, ['batch', 3, 64, 64]);
    assert.equal(rgb.output.name, 'probs');
    assert.equal(rgb.output.activation, 'sigmoid', 'the graph ends in Sigmoid');
    assert.equal(rgb.preprocessing.channels, 3);
    assert.deepEqual(rgb.preprocessing.normalize, { mean: [...IMAGENET.mean], std: [...IMAGENET.std] });
    assert.deepEqual(rgb.preprocessing.intensity, { kind: 'minmax' });

    const multi = reports.get('multi')!.manifest;
    assert.deepEqual(multi.input.shape, ['batch', 3, 64, 64], 'dynamic H/W served at --size');
    assert.deepEqual(multi.output.shape, ['batch', 4, 64, 64]);
    assert.deepEqual(multi.labels, ['background', 'lung', 'heart', 'lesion']);
    assert.equal(multi.output.activation, 'logits');

    const classes = reports.get('softmax')!.manifest;
    assert.equal(classes.output.activation, 'softmax');
    assert.equal(classes.background, 'background', 'the first label by default');
  });

  test('the report carries the test inference: one mask per label on the synthetic DICOM, with areas and time', () => {
    for (const report of reports.values()) {
      assert.deepEqual(
        report.test.masks.map((m) => m.label),
        report.manifest.labels.filter((l) => l !== report.manifest.background),
        'one mask per label; softmax models none for the background',
      );
      assert.match(report.test.source, /synthetic chest DICOM/);
      assert.ok(report.test.totalMs > 0);
      for (const m of report.test.masks) assert.ok(m.area >= 0 && m.area <= report.test.rows * report.test.columns);
    }
  });

  test('default labels: class1..N for a multi-channel output', async () => {
    const r = await cli([fixture('multiclass_3ch.onnx'), '--name', 'multi-default', '--channels', '3', '--size', '32x48', '--repository', repo, '--json']);
    assert.equal(r.code, 0, r.err);
    const m = (JSON.parse(r.out) as ImportReport).manifest;
    assert.deepEqual(m.labels, ['class1', 'class2', 'class3', 'class4']);
    assert.deepEqual(m.input.shape, ['batch', 3, 32, 48]);
    assert.deepEqual(m.output.shape, ['batch', 4, 32, 48]);
    assert.equal(m.preprocessing.normalize, undefined);
  });

  test('the human report is a table naming what was written', async () => {
    const r = await cli([fixture('binary_1ch.onnx'), '--name', 'bin', '--version', 'table', '--repository', repo]);
    assert.equal(r.code, 0, r.err);
    for (const word of ['sha256', 'input', 'output', 'labels', 'preprocessing', 'test image', 'area px', 'wrote', 'model.json']) assert.ok(r.out.includes(word), `${word} in\n${r.out}`);
  });

  describe('refusals: one line on stderr, exit status 2, nothing written', () => {
    const cases: Array<[string, string[], RegExp]> = [
      ['two inputs', [fixture('two_inputs.onnx'), '--name', 'x'], /has 2 inputs \('a', 'b'\).*exactly one float32 NCHW/],
      ['int64 input', [fixture('int64_input.onnx'), '--name', 'x'], /input 'image' is int64, not float32/],
      ['labels vs output channels', [fixture('binary_1ch.onnx'), '--name', 'x', '--labels', 'lung,heart'], /has 1 channel\(s\).*--labels names 2 \(lung, heart\)/],
      ['missing file', [fixture('nope.onnx'), '--name', 'x'], /model file not found or unreadable: .*nope\.onnx \(ENOENT\)/],
      ['not ONNX', [fixture('binary_1ch.io.json'), '--name', 'x'], /not an ONNX model/],
      ['bad flag value', [fixture('binary_1ch.onnx'), '--name', 'x', '--activation', 'tanh'], /--activation.*tanh.*Allowed choices are logits, sigmoid/],
      ['unknown flag', [fixture('binary_1ch.onnx'), '--name', 'x', '--colour'], /unknown option '--colour'/],
      ['no --name', [fixture('binary_1ch.onnx')], /required option '--name <name>' not specified/],
      ['bad name', [fixture('binary_1ch.onnx'), '--name', 'no spaces'], /--name.*letters, digits/],
      ['dynamic size without --size', [fixture('multiclass_3ch.onnx'), '--name', 'x', '--imagenet'], /dynamic spatial size \[batch, 3, height, width\].*--size/],
      ['--size contradicting a fixed size', [fixture('binary_1ch.onnx'), '--name', 'x', '--size', '128'], /--size 128x128 contradicts.*fixed at 64x64/],
      ['--imagenet on a 1-channel model', [fixture('binary_1ch.onnx'), '--name', 'x', '--imagenet'], /--imagenet needs a 3-channel input.*1 channel/],
      ['--channels contradicting the graph', [fixture('imagenet_3ch.onnx'), '--name', 'x', '--channels', '1'], /--channels 1 contradicts input 'input', which has 3/],
      ['--mean without --std', [fixture('imagenet_3ch.onnx'), '--name', 'x', '--mean', '0.5'], /--mean and --std go together/],
      ['--mean of the wrong length', [fixture('imagenet_3ch.onnx'), '--name', 'x', '--mean', '0.5,0.5', '--std', '0.2,0.2'], /needs 1 or 3/],
      ['logits on a Sigmoid output', [fixture('imagenet_3ch.onnx'), '--name', 'x', '--activation', 'logits'], /comes out of a Sigmoid node.*--activation sigmoid/],
      ['bad intensity', [fixture('binary_1ch.onnx'), '--name', 'x', '--intensity', 'window:40'], /--intensity.*window:CENTER:WIDTH/],
    ];
    for (const [what, args, pattern] of cases) {
      test(what, async () => {
        assertOneLineError(await cli([...args, '--repository', repo]), pattern);
        assert.ok(!(await readdir(repo)).includes('x'), 'nothing written');
      });
    }

    test('an existing version without --force', async () => {
      assertOneLineError(await cli([fixture('binary_1ch.onnx'), '--name', 'bin', '--repository', repo]), /bin\/1 already exists.*--force/);
    });

    test('--force replaces it', async () => {
      const r = await cli([fixture('binary_1ch.onnx'), '--name', 'bin', '--repository', repo, '--force', '--json']);
      assert.equal(r.code, 0, r.err);
    });

    test('as a process: the exit status and stderr of `npm run import` itself', () => {
      const run = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'tools/import-model.ts'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
      for (const [args, pattern] of [
        [[fixture('missing.onnx'), '--name', 'x'], /^error: model file not found/],
        [[fixture('binary_1ch.onnx'), '--name', 'x', '--threshold', '2'], /^error: option '--threshold <p>' argument '2' is invalid\./],
      ] as Array<[string[], RegExp]>) {
        const p = run([...args, '--repository', repo]);
        assert.equal(p.status, 2, p.stderr);
        assert.equal(p.stdout, '');
        assert.equal(p.stderr.trimEnd().split('\n').length, 1, p.stderr);
        assert.match(p.stderr, pattern);
      }
    });
  });

  test('served through the Engine, each model returns the masks that thresholding a direct onnxruntime run gives', async () => {
    // The DICOM is made at the models' size (64 x 64), so the masks are compared pixel for pixel with
    // no resampling in between; the tensor is toTensor's, the run is a plain onnxruntime session.
    const dicom = await chestDicom(11, { size: 64, transferSyntaxUid: TS.ExplicitVRLittleEndian });
    const image = await decodeDicom(dicom.bytes);
    assert.equal(image.rows, 64);
    const engine = await Engine.start({ modelRepository: repo, provider: 'cpu', workers: 1, intraOpThreads: 1, maxBatch: 1, maxDelayMs: 0 }, pino({ level: 'silent' }));
    try {
      for (const key of ['bin', 'rgb', 'multi', 'softmax']) {
        const m: ModelManifest = reports.get(key)!.manifest;
        const served = await engine.segment({ dicom: dicom.bytes, model: m.name, version: m.version });
        const tensor = await toTensor(image, m.preprocessing);
        const [, c, h, w] = m.input.shape;
        const session = await ort.InferenceSession.create(join(repo, m.name, m.version, 'model.onnx'));
        let out: Float32Array;
        try {
          out = (await session.run({ [m.input.name]: new ort.Tensor('float32', tensor, [1, c, h, w]) }))[m.output.name]!.data as Float32Array;
        } finally {
          await session.release();
        }
        const plane = h * w;
        if (m.output.activation === 'softmax') {
          // Each pixel belongs to the channel with the largest logit (softmax is monotonic); near-ties skipped.
          const classes = m.labels.filter((l) => l !== m.background);
          assert.deepEqual(served.masks.map((x) => x.label), classes);
          let counted = 0;
          for (let i = 0; i < plane; i++) {
            const logits = m.labels.map((_, k) => out[k * plane + i]!);
            const sorted = [...logits].sort((a, b) => b - a);
            if (sorted[0]! - sorted[1]! < 1e-5) continue;
            const winner = m.labels[logits.indexOf(sorted[0]!)]!;
            for (const x of served.masks) assert.equal(x.mask.data[i], x.label === winner ? 1 : 0, `${key}/${x.label} at ${i}`);
            counted++;
          }
          assert.ok(counted > plane * 0.99);
          const area = served.masks.reduce((a, x) => a + x.area, 0);
          assert.ok(area > 0 && area < plane, `softmax: non-background area ${area} is partial`);
          continue;
        }
        assert.equal(served.masks.length, m.labels.length);
        let foreground = 0;
        for (let k = 0; k < m.labels.length; k++) {
          const mask = served.masks[k]!;
          assert.equal(mask.label, m.labels[k]);
          assert.equal(mask.mask.rows, 64);
          assert.equal(mask.mask.cols, 64);
          let mismatches = 0;
          for (let i = 0; i < plane; i++) {
            const v = out[k * plane + i]!;
            const p = m.output.activation === 'logits' ? 1 / (1 + Math.exp(-v)) : v;
            // A probability within 1e-6 of the threshold could round either way between two sessions.
            if (Math.abs(p - m.postprocessing.threshold) < 1e-6) continue;
            if ((p > m.postprocessing.threshold ? 1 : 0) !== (mask.mask.data[i]! ? 1 : 0)) mismatches++;
          }
          assert.equal(mismatches, 0, `${key}/${mask.label}: served mask differs from the direct run in ${mismatches} pixels`);
          foreground += mask.area;
        }
        // The fixtures are calibrated so masks are neither empty nor full: the comparison means something.
        assert.ok(foreground > 0 && foreground < plane * m.labels.length, `${key}: foreground ${foreground}`);
      }
    } finally {
      await engine.close();
    }
  });
});
