/**
 * One plain onnxruntime-node session in its own worker thread (for raw.ts): ORT's defaults except
 * the intra-op thread count (graph optimisation 'all', one inter-op thread, sequential execution).
 * session.run occupies the calling JS thread, so each session needs a thread of its own to overlap.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

export interface RawWorkerData {
  onnxPath: string;
  inputName: string;
  shape: [number, number, number, number];
  intraOpThreads: number;
  /** Default cpu; cuda opens the session on `deviceId` with no fallback (bench/gpu's sessions-in-threads rows). */
  provider?: 'cpu' | 'cuda';
  deviceId?: number;
}

const d = workerData as RawWorkerData;
const port = parentPort!;
const session = await ort.InferenceSession.create(d.onnxPath, {
  executionProviders: d.provider === 'cuda' ? [{ name: 'cuda', deviceId: d.deviceId ?? 0 }] : ['cpu'],
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
  intraOpNumThreads: d.intraOpThreads,
  interOpNumThreads: 1,
});
const data = new Float32Array(d.shape.reduce((a, b) => a * b, 1)).map(() => Math.random());
const feeds = { [d.inputName]: new ort.Tensor('float32', data, d.shape) };
for (let i = 0; i < 2; i++) await session.run(feeds); // warm-up: allocation and planning
port.postMessage({ ready: true });
port.once('message', async (m: { startAt: number; endAt: number }) => {
  // Epoch ms (performance.now() is per thread). Start at startAt, start no run after endAt; every
  // run counts, and the window ends when the last one does.
  const now = () => performance.timeOrigin + performance.now();
  while (now() < m.startAt) await new Promise((r) => setTimeout(r, 1));
  const runMs: number[] = [];
  // At least 3 runs each, so a short rehearsal on a slow machine still measures something.
  while (now() < m.endAt || runMs.length < 3) {
    const t0 = now();
    await session.run(feeds);
    runMs.push(now() - t0);
  }
  const endedAt = now();
  await session.release();
  port.postMessage({ runMs, endedAt });
});
