import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '../core/engine/worker-pool.ts';
import type { Preview } from './store/types.ts';

export interface PreviewJob {
  id: number;
  dicom: Uint8Array;
  frame: number;
  maxPixels: number;
  maxSide: number;
}

export type PreviewReply = { id: number; ok: true; width: number; height: number; data: Uint8Array } | { id: number; ok: false; message: string };

const ENTRY = new URL(import.meta.url.endsWith('.ts') ? './preview-worker.ts' : './preview-worker.js', import.meta.url);

/**
 * Client for the preview worker. One thread is enough: a preview is a decode plus a box filter,
 * small next to the inference it runs beside. A worker that dies fails its pending jobs (the
 * results are then stored without a preview) and is replaced on the next job.
 */
export class PreviewMaker {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (p: Preview) => void; reject: (e: Error) => void }>();
  private closed = false;

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const w = spawnWorker(ENTRY, {}, 'preview');
    w.on('message', (r: PreviewReply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (r.ok) p.resolve({ width: r.width, height: r.height, data: r.data });
      else p.reject(new Error(r.message));
    });
    const fail = (e: Error) => {
      if (this.worker === w) this.worker = undefined;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`preview worker exited with code ${code}`)));
    // Idle preview thread must not keep the process alive on shutdown.
    w.unref();
    this.worker = w;
    return w;
  }

  /** Start the thread now (its module loading takes a moment) rather than on the first request. */
  warm(): void {
    if (!this.closed) this.ensureWorker();
  }

  /** Copies `dicom` to the worker (the engine holds its own copy), so the caller's bytes stay usable. */
  make(dicom: Uint8Array, frame: number, maxPixels: number, maxSide: number): Promise<Preview> {
    if (this.closed) return Promise.reject(new Error('preview maker closed'));
    const w = this.ensureWorker();
    const id = this.nextId++;
    return new Promise<Preview>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, dicom, frame, maxPixels, maxSide } satisfies PreviewJob);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }
}
