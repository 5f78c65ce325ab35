/**
 * Large-mask reads off the main thread (issue 15, defect 6). Re-encoding an 8192x8192 mask or building
 * its mask.png blocked the event loop ~0.8 s per GET, and /livez took over a second under 10 of them.
 * A task above `inlineMaxPixels` decoded pixels runs in one worker thread (started on first use,
 * restarted if it dies); at most `maxPending` such tasks wait or run at once (each holds its decoded
 * masks), beyond that the read is answered 503 OVERLOADED with Retry-After. Small results stay inline:
 * a round trip to a thread costs more than decoding them.
 */
import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '../../core/engine/worker-pool.ts';
import { Problem } from '../problem.ts';
import { runMaskTask, taskPixels, type MaskTask, type MaskTaskResult } from './mask-work.ts';

export interface MaskOffloadOptions {
  /** Tasks touching at most this many decoded pixels run inline. Default 1 Mi (a 1024x1024 mask). */
  inlineMaxPixels?: number;
  /** Offloaded tasks waiting or running at once; beyond it 503. Default 16. */
  maxPending?: number;
}

interface Pending {
  resolve: (r: MaskTaskResult) => void;
  reject: (e: Error) => void;
}

export class MaskOffload {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  readonly inlineMaxPixels: number;
  readonly maxPending: number;
  /** Tasks sent to the worker so far (tests check big reads went there). */
  offloaded = 0;

  constructor(opts: MaskOffloadOptions = {}) {
    this.inlineMaxPixels = opts.inlineMaxPixels ?? 1 << 20;
    this.maxPending = opts.maxPending ?? 16;
  }

  async run(task: MaskTask): Promise<MaskTaskResult> {
    if (taskPixels(task) <= this.inlineMaxPixels) return runMaskTask(task);
    if (this.closed) throw new Problem('not-ready', 'the service is shutting down', { code: 'NOT_READY', retryAfterSeconds: 1 });
    if (this.pending.size >= this.maxPending) {
      throw new Problem('overloaded', `too many large-mask reads in progress (${this.pending.size}); retry shortly`, { code: 'OVERLOADED', retryAfterSeconds: 1 });
    }
    const w = this.ensureWorker();
    const id = this.nextId++;
    this.offloaded++;
    return new Promise<MaskTaskResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, task });
    });
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const w = spawnWorker(new URL('./mask-worker' + (import.meta.url.endsWith('.ts') ? '.ts' : '.js'), import.meta.url), undefined, 'mask-worker');
    w.unref();
    w.on('message', (msg: { id: number; result?: MaskTaskResult; error?: { name: string; message: string } }) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.result) p.resolve(msg.result);
      else p.reject(Object.assign(new Error(msg.error?.message ?? 'mask worker failed'), { name: msg.error?.name ?? 'Error' }));
    });
    const fail = (err: Error) => {
      if (this.worker === w) this.worker = undefined;
      for (const [id, p] of this.pending) {
        this.pending.delete(id);
        p.reject(err);
      }
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`mask worker exited with code ${code}`)));
    this.worker = w;
    return w;
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }
}
