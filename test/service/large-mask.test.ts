/**
 * Issue 15, defect 6: reading large results must not block the event loop. A 4096x4096 result is
 * put in the store; 10 concurrent GETs (5 re-encoding its RLE to kaggle, 5 rendering mask.png) run
 * while /livez is probed every 25 ms. Before, the RLE and PNG work ran on the main thread (~0.8 s per
 * GET) and /livez took over a second; now it runs in a worker thread and every probe answers within
 * a generous bound. The answers are still right (the kaggle RLE decodes to the stored mask, the PNG
 * has the image's size).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { randomUUID } from 'node:crypto';
import { createMask, masksEqual } from '../../core/mask.ts';
import { decodeMask, encodeMask } from '../../core/rle/index.ts';
import type { StoredResult } from '../../services/store/index.ts';
import { modelRepository, startInProcess, type InProcess } from './helpers.ts';

/** 16 Mi pixels a mask: 16x the size handled inline, a quarter of the 8192x8192 to keep the test short. */
const N = 4096;

function bigMask() {
  const m = createMask(N, N);
  // 256-pixel checkerboard with a disc: 32 runs per column, 64 Mi pixels to decode.
  for (let y = 0; y < N; y++) for (let x = 0; x < N; x++) m.data[y * N + x] = ((x >> 8) + (y >> 8)) & 1 || Math.hypot(x - 2000, y - 2000) < 700 ? 1 : 0;
  return m;
}

describe('large-mask reads off the main thread', () => {
  let srv: InProcess;
  let repo: { remove: () => Promise<void> };
  const mask = bigMask();
  const id = randomUUID();
  before(async () => {
    const r = await modelRepository();
    repo = r;
    srv = await startInProcess({ MODEL_REPOSITORY: r.dir });
    const now = new Date();
    const record: StoredResult = {
      id,
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + 3600_000).toISOString(),
      model: { name: 'tiny', version: '1', executionProvider: 'cpu' },
      image: { rows: N, columns: N, frame: 0, numberOfFrames: 1, transferSyntax: { uid: '1.2.840.10008.1.2.1', name: 'Explicit VR Little Endian' }, sopInstanceUid: null, modality: null },
      masks: [{ label: 'foreground', rle: { format: 'coco-compressed', size: [N, N], counts: encodeMask(mask, 'coco-compressed') }, area: 1, bbox: [0, 0, N, N], empty: false, threshold: 0.5, minArea: 0 } as StoredResult['masks'][number]],
      timings: { decodeMs: 0, preprocessMs: 0, queueMs: 0, inferenceMs: 0, postprocessMs: 0, totalMs: 0 },
    };
    await srv.service.store.put(record, undefined);
  });
  after(async () => {
    await srv?.close();
    await repo?.remove();
  });

  it('/livez stays fast under 10 concurrent GETs of a 4096x4096 result, and the answers are right', async () => {
    const probes: number[] = [];
    let loading = true;
    const probing = (async () => {
      while (loading) {
        const t0 = performance.now();
        const r = await fetch(`${srv.url}/livez`);
        await r.arrayBuffer();
        probes.push(performance.now() - t0);
        await new Promise((res) => setTimeout(res, 25));
      }
    })();
    const t0 = performance.now();
    const reads = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const r = await fetch(`${srv.url}/segmentations/${id}${i % 2 ? '/mask.png' : '?rleFormat=kaggle'}`);
        return { status: r.status, type: r.headers.get('content-type') ?? '', buf: Buffer.from(await r.arrayBuffer()) };
      }),
    );
    const loadMs = performance.now() - t0;
    loading = false;
    await probing;
    for (const r of reads) assert.equal(r.status, 200, r.buf.toString('utf8', 0, 300));
    const sorted = [...probes].sort((a, b) => a - b);
    const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
    const worst = sorted[sorted.length - 1]!;
    console.log(`# 10 large reads in ${loadMs.toFixed(0)} ms; ${probes.length} /livez probes: median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, worst ${worst.toFixed(1)} ms`);
    assert.ok(probes.length >= 10, `probes ran during the load (${probes.length})`);
    // Generous: the kubelet's default timeout is 1 s; before the fix probes took over a second.
    assert.ok(worst < 500, `worst /livez ${worst.toFixed(0)} ms`);

    const json = JSON.parse(reads[0]!.buf.toString('utf8')) as { masks: Array<{ rle: { counts: string } }> };
    assert.ok(masksEqual(decodeMask(json.masks[0]!.rle.counts, 'kaggle', N, N), mask));
    const png = await sharp(reads[1]!.buf).metadata();
    assert.equal(reads[1]!.type, 'image/png');
    assert.equal(png.width, N);
    assert.equal(png.height, N);
  });
});
