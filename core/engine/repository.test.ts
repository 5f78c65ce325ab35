import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { makeModelRepository } from '../../test/helpers/model-fixture.ts';
import { ModelInvalidError } from './errors.ts';
import { checkSessionIo, compareVersions, listRepository, parseModelRef, readModelVersion } from './repository.ts';
import { openSession, planThreads } from '../runtime/session.ts';

async function tempRepo(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'engine-repo-'));
}

function invalid(pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof ModelInvalidError, `expected ModelInvalidError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  };
}

test('versions sort numerically: 2 < 10, 1.9.0 < 1.10.0, newest last', async () => {
  assert.deepEqual(['10', '2', '1'].sort(compareVersions), ['1', '2', '10']);
  assert.deepEqual(['1.10.0', '1.9.0', '1.2.3'].sort(compareVersions), ['1.2.3', '1.9.0', '1.10.0']);
  assert.deepEqual(['v10', 'v9'].sort(compareVersions), ['v9', 'v10']);
  const dir = await tempRepo();
  try {
    for (const v of ['1', '10', '2', '.staging']) await mkdir(join(dir, 'unet', v), { recursive: true });
    await mkdir(join(dir, 'empty'), { recursive: true });
    const listing = await listRepository(dir);
    assert.deepEqual([...listing.keys()], ['unet'], 'a name with no versions is left out');
    assert.deepEqual(listing.get('unet'), ['1', '2', '10'], 'hidden directories are ignored');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('parseModelRef splits name:version', () => {
  assert.deepEqual(parseModelRef('unet'), { name: 'unet' });
  assert.deepEqual(parseModelRef('unet:3'), { name: 'unet', version: '3' });
  assert.deepEqual(parseModelRef('unet:'), { name: 'unet' });
});

test('a valid fixture version reads back with its manifest', async () => {
  const dir = await tempRepo();
  try {
    await makeModelRepository(dir, [{ name: 'unet', version: '1', size: 32 }]);
    const e = await readModelVersion(dir, 'unet', '1');
    assert.equal(e.key, 'unet:1');
    assert.equal(e.manifest.input.name, 'image');
    assert.deepEqual(e.manifest.input.shape, ['N', 1, 32, 32]);
    assert.ok(e.onnxPath.endsWith(join('unet', '1', 'model.onnx')));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('repository validation names each fault', async () => {
  const dir = await tempRepo();
  try {
    await makeModelRepository(dir, [
      { name: 'badschema', version: '1', size: 32, editManifest: (m) => (m.input.layout = 'NHWC') },
      { name: 'badchannels', version: '1', size: 32, editManifest: (m) => (m.labels = ['a', 'b']) },
      { name: 'sha', version: '1', size: 32, replaceOnnx: new Uint8Array([1, 2, 3]) },
      { name: 'noonnx', version: '1', size: 32, omit: 'model.onnx' },
      { name: 'nojson', version: '1', size: 32, omit: 'model.json' },
      { name: 'wrongname', version: '1', size: 32, editManifest: (m) => (m.name = 'other') },
      { name: 'wrongversion', version: '1', size: 32, editManifest: (m) => (m.version = '2') },
      { name: 'escape', version: '1', size: 32, editManifest: (m) => (m.onnx.file = '../../x.onnx') },
    ]);
    await assert.rejects(readModelVersion(dir, 'badschema', '1'), invalid(/invalid manifest at input\.layout/));
    await assert.rejects(readModelVersion(dir, 'badchannels', '1'), invalid(/1 channels but 2 labels/));
    await assert.rejects(readModelVersion(dir, 'sha', '1'), (e: unknown) => {
      invalid(/sha256 mismatch for model\.onnx/)(e);
      assert.equal((e as ModelInvalidError).manifest?.name, 'sha', 'the parsed manifest travels with the error');
      return true;
    });
    await assert.rejects(readModelVersion(dir, 'noonnx', '1'), invalid(/missing ONNX file model\.onnx/));
    await assert.rejects(readModelVersion(dir, 'nojson', '1'), invalid(/missing model\.json/));
    await assert.rejects(readModelVersion(dir, 'wrongname', '1'), invalid(/manifest name 'other' does not match directory 'wrongname'/));
    await assert.rejects(readModelVersion(dir, 'wrongversion', '1'), invalid(/manifest version '2' does not match directory '1'/));
    await assert.rejects(readModelVersion(dir, 'escape', '1'), invalid(/points outside the version directory/));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the opened session is checked against the manifest: names and shapes', async () => {
  const dir = await tempRepo();
  try {
    const [pt, plain] = await makeModelRepository(dir, [
      // A PyTorch-style export: input named 'input'. Its manifest says so, so it is servable.
      { name: 'torch', version: '1', size: 32, ioNames: { input: 'input', output: 'out' } },
      { name: 'plain', version: '1', size: 32 },
    ]);
    const cfg = { provider: 'cpu' as const, deviceId: 0, intraOpThreads: 1 };
    const torch = await openSession(pt!.onnxPath, cfg);
    const io = (s: typeof torch.session) => [s.inputMetadata, s.outputMetadata] as const;
    try {
      assert.deepEqual(torch.session.inputNames, ['input']);
      checkSessionIo('torch:1', pt!.manifest, ...io(torch.session));
      // The same graph against the plain manifest (input 'image'): mismatch, named.
      assert.throws(() => checkSessionIo('torch:1', plain!.manifest, ...io(torch.session)), invalid(/manifest input 'image' is not an input of the ONNX graph \(inputs: 'input'\)/));
      const wrongOut = { ...pt!.manifest, output: { ...pt!.manifest.output, name: 'logits' } };
      assert.throws(() => checkSessionIo('torch:1', wrongOut, ...io(torch.session)), invalid(/manifest output 'logits' is not an output .*'out'/));
      const wrongSize = { ...pt!.manifest, input: { ...pt!.manifest.input, shape: ['N', 1, 64, 64] as typeof pt.manifest.input.shape } };
      // Our UNet export declares fixed H and W: a manifest claiming 64 is caught.
      const declared = torch.session.inputMetadata[0]!;
      if (declared.isTensor && typeof declared.shape[2] === 'number') {
        assert.throws(() => checkSessionIo('torch:1', wrongSize, ...io(torch.session)), invalid(/input 'input' shape mismatch at dim 2 \(H\): manifest 64, ONNX 32/));
      }
      const fixedBatch = { ...pt!.manifest, input: { ...pt!.manifest.input, shape: [4, 1, 32, 32] as typeof pt.manifest.input.shape } };
      checkSessionIo('torch:1', fixedBatch, ...io(torch.session)); // a symbolic ONNX batch accepts a fixed manifest batch
    } finally {
      await torch.session.release();
    }
    // Shapes synthesised directly: a fixed ONNX batch cannot be served as dynamic.
    assert.throws(
      () =>
        checkSessionIo(
          'x:1',
          plain!.manifest,
          [{ name: 'image', isTensor: true, type: 'float32', shape: [1, 1, 32, 32] }],
          [{ name: 'logits', isTensor: true, type: 'float32', shape: [1, 1, 32, 32] }],
        ),
      invalid(/dim 0 \(N\): manifest "N", ONNX 1/),
    );
    assert.throws(
      () => checkSessionIo('x:1', plain!.manifest, [{ name: 'image', isTensor: true, type: 'uint8', shape: [] }], [{ name: 'logits', isTensor: true, type: 'float32', shape: [] }]),
      invalid(/is uint8, expected float32/),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('CUDA requested on a machine without it: the session opens on CPU and says why', async () => {
  const dir = await tempRepo();
  try {
    const [m] = await makeModelRepository(dir, [{ name: 'unet', version: '1', size: 32 }]);
    const opened = await openSession(m!.onnxPath, { provider: 'cuda', deviceId: 0, intraOpThreads: 1 });
    try {
      if (opened.provider === 'cuda') {
        assert.equal(opened.fallbackReason, undefined, 'this machine has CUDA: no fallback');
      } else {
        assert.equal(opened.provider, 'cpu');
        assert.match(opened.fallbackReason ?? '', /^CUDA session on device 0 could not be created: \S/);
        assert.doesNotMatch(opened.fallbackReason!, /\n/, 'one line');
        // ORT's own message only says a library failed to load; the warning must name what to install.
        if (!existsSync(join(dirname(createRequire(import.meta.url).resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', 'linux', 'x64', 'libonnxruntime_providers_cuda.so'))) {
          assert.match(opened.fallbackReason!, /CUDA execution provider is not installed: reinstall with ONNXRUNTIME_NODE_INSTALL=cuda12/);
        }
      }
    } finally {
      await opened.session.release();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('planThreads keeps workers x intra-op threads within the cores', () => {
  assert.deepEqual(planThreads({ workers: 2, intraOpThreads: 1 }, 2), { workers: 2, intraOpThreads: 1, prepareWorkers: 0, maxBatch: 4 });
  assert.deepEqual(planThreads({ workers: 2, intraOpThreads: 0 }, 8), { workers: 2, intraOpThreads: 4, prepareWorkers: 0, maxBatch: 4 });
  const p = planThreads({ workers: 2, intraOpThreads: 4 }, 2);
  assert.equal(p.intraOpThreads, 1);
  assert.match(p.adjusted ?? '', /exceeds 2 cores/);
  assert.equal(planThreads({ workers: 4, intraOpThreads: 1 }, 2).intraOpThreads, 1, 'never below one thread');
});

test('planThreads, automatic: sessions per core on cpu (capped), decode workers around 2 sessions on cuda', () => {
  const auto = (cores: number, provider: 'cpu' | 'cuda') => planThreads({ workers: 0, intraOpThreads: 0, provider }, cores);
  assert.deepEqual(auto(1, 'cpu'), { workers: 1, intraOpThreads: 1, prepareWorkers: 0, maxBatch: 4 });
  assert.deepEqual(auto(2, 'cpu'), { workers: 2, intraOpThreads: 1, prepareWorkers: 0, maxBatch: 4 });
  assert.deepEqual(auto(16, 'cpu'), { workers: 8, intraOpThreads: 2, prepareWorkers: 0, maxBatch: 4 });
  assert.deepEqual(auto(64, 'cpu'), { workers: 8, intraOpThreads: 8, prepareWorkers: 0, maxBatch: 4 });
  assert.deepEqual(auto(2, 'cuda'), { workers: 1, intraOpThreads: 1, prepareWorkers: 1, maxBatch: 8 });
  assert.deepEqual(auto(16, 'cuda'), { workers: 2, intraOpThreads: 1, prepareWorkers: 14, maxBatch: 8 });
  // Explicit figures win over the rule.
  assert.deepEqual(planThreads({ workers: 1, intraOpThreads: 0, prepareWorkers: 1 }, 2), { workers: 1, intraOpThreads: 2, prepareWorkers: 1, maxBatch: 4 });
  assert.deepEqual(planThreads({ workers: 0, intraOpThreads: 0, prepareWorkers: 0, maxBatch: 16, provider: 'cuda' }, 16), { workers: 2, intraOpThreads: 1, prepareWorkers: 0, maxBatch: 16 });
});
