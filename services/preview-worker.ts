/**
 * Worker thread that turns DICOM bytes into the stored 8-bit preview. The decode (which for
 * compressed transfer syntaxes runs synchronous wasm codecs) stays off the main thread, so probes
 * and other requests are never blocked behind it.
 */
import { parentPort } from 'node:worker_threads';
import { decodeDicom } from '../core/dicom/decode.ts';
import { makePreview } from './preview-image.ts';
import type { PreviewJob, PreviewReply } from './preview.ts';


const port = parentPort;
if (!port) throw new Error('preview-worker must run in a worker thread');
port.on('message', async (job: PreviewJob) => {
  try {
    const image = await decodeDicom(job.dicom, { frame: job.frame, maxPixels: job.maxPixels });
    const p = makePreview(image, job.maxSide);
    port.postMessage({ id: job.id, ok: true, width: p.width, height: p.height, data: p.data } satisfies PreviewReply, [p.data.buffer as ArrayBuffer]);
  } catch (e) {
    port.postMessage({ id: job.id, ok: false, message: e instanceof Error ? e.message : String(e) } satisfies PreviewReply);
  }
});
