/** The worker thread of mask-offload.ts: runs MaskTasks off the main thread (issue 15, defect 6). */
import { parentPort } from 'node:worker_threads';
import { runMaskTask, type MaskTask, type MaskTaskResult } from './mask-work.ts';

parentPort!.on('message', (msg: { id: number; task: MaskTask }) => {
  try {
    const result = runMaskTask(msg.task);
    const transfer = result.op === 'union' ? [result.pixels.buffer] : result.op === 'sample' ? result.masks.map((m) => m.buffer) : [];
    parentPort!.postMessage({ id: msg.id, result } satisfies { id: number; result: MaskTaskResult }, transfer as ArrayBuffer[]);
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, error: { name: (e as Error).name, message: (e as Error).message } });
  }
});
