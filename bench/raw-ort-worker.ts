/**
 * One raw onnxruntime session in its own thread, for bench/raw-ort.ts. onnxruntime-node's
 * session.run executes synchronously on the calling JS thread (the binding call is only deferred
 * with setImmediate), so two sessions driven from one thread never overlap: each session needs a
 * thread of its own, exactly as the engine gives each worker one.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { openSession, type SessionConfig } from '../core/runtime/session.ts';

export interface RawWorkerData {
  onnxPath: string;
  inputName: string;
  shape: [number, number, number, number];
  session: SessionConfig;
}

const d = workerData as RawWorkerData;
const port = parentPort!;
const { session } = await openSession(d.onnxPath, d.session);
const data = new Float32Array(d.shape.reduce((a, b) => a * b, 1)).map(() => Math.random());
const feeds = { [d.inputName]: new ort.Tensor('float32', data, d.shape) };
for (let i = 0; i < 2; i++) await session.run(feeds); // warm-up: allocation and planning
port.postMessage({ ready: true });
port.once('message', async (m: { endAt: number }) => {
  // endAt is an epoch ms (performance.now() is per thread).
  const now = () => performance.timeOrigin + performance.now();
  let batches = 0;
  let runMs = 0;
  while (now() < m.endAt) {
    const t0 = performance.now();
    await session.run(feeds);
    runMs += performance.now() - t0;
    batches++;
  }
  await session.release();
  port.postMessage({ batches, runMs });
});
