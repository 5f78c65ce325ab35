/**
 * One engine worker thread: holds one ORT session per loaded model and does the CPU-heavy steps
 * (DICOM decode incl. synchronous wasm codecs, preprocessing, session.run, postprocessing) so the main
 * thread never blocks on them. The same file runs the prepare workers, which hold no sessions and take
 * the 'prepare' and 'postprocess' tasks. Messages are answered one at a time, in order (see
 * worker-rpc.ts).
 */
import { createHash } from 'node:crypto';
import { workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { decodeDicom } from '../dicom/decode.ts';
import type { DecodedImage } from '../dicom/types.ts';
import type { ModelManifest } from '../manifest.ts';
import type { PreprocessSpec } from '../preprocess/index.ts';
import { averageWithUnflipped } from '../segmentation/postprocess.ts';
import { SegmentationProcessor } from '../segmentation/processor.ts';
import type { ImageFacts } from '../segmentation/records.ts';
import { InferenceError, ModelInvalidError } from './errors.ts';
import { makePreview } from './preview.ts';
import { checkSessionIo } from './repository.ts';
import { openSession, type Provider } from '../runtime/session.ts';
import { serve, type Reply } from './worker-rpc.ts';
import {
  epochMs,
  masksToWire,
  wantsOf,
  type InferMsg,
  type InferResult,
  type InferenceWorkerData,
  type LoadMsg,
  type LoadResult,
  type PrepareMsg,
  type Postprocessed,
  type PostprocessMsg,
  type PrepareResult,
  type WorkerMsg,
} from './worker-protocol.ts';

interface Loaded {
  session: ort.InferenceSession;
  provider: Provider;
  manifest: ModelManifest;
  /** The model's pre- and post-processing (built once from its manifest). */
  processor: SegmentationProcessor;
  /** Input C, H, W. */
  inShape: [number, number, number];
  /** A fixed batch dimension (runs are padded to it), or undefined when dynamic. */
  fixedBatch: number | undefined;
}

const cfg = (workerData as InferenceWorkerData).session;
const models = new Map<string, Loaded>();

/** Preprocessors by spec (a handful of models at most), so a spec is parsed once, not per request. */
const preprocessors = new Map<string, SegmentationProcessor>();
function preprocessorFor(spec: PreprocessSpec): SegmentationProcessor {
  const key = JSON.stringify(spec);
  let p = preprocessors.get(key);
  if (!p) {
    if (preprocessors.size >= 32) preprocessors.clear();
    p = new SegmentationProcessor({ preprocessing: spec, activation: 'logits', labels: [] });
    preprocessors.set(key, p);
  }
  return p;
}

/** A Float32Array that owns its whole buffer, so transferring it moves exactly these values. */
function owned(a: Float32Array): Float32Array {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && a.buffer instanceof ArrayBuffer ? a : a.slice();
}

async function runBatch(m: Loaded, images: Float32Array[]): Promise<{ outputs: Float32Array[]; dims: readonly number[]; runMs: number }> {
  const [c, h, w] = m.inShape;
  const plane = c * h * w;
  const chunk = m.fixedBatch ?? images.length;
  const outputs: Float32Array[] = [];
  let dims: readonly number[] = [];
  let runMs = 0;
  for (let start = 0; start < images.length; start += chunk) {
    const part = images.slice(start, start + chunk);
    const n = m.fixedBatch ?? part.length;
    // One copy into the batch tensor; a fixed batch dimension is padded with zeros.
    const data = new Float32Array(n * plane);
    part.forEach((t, i) => data.set(t, i * plane));
    const feeds = { [m.manifest.input.name]: new ort.Tensor('float32', data, [n, c, h, w]) };
    const t0 = performance.now();
    const res = await m.session.run(feeds, [m.manifest.output.name]);
    runMs += performance.now() - t0;
    const out = res[m.manifest.output.name] as ort.Tensor;
    dims = out.dims;
    const per = out.data.length / n;
    const all = out.data as Float32Array;
    for (let i = 0; i < part.length; i++) outputs.push(all.subarray(i * per, (i + 1) * per));
  }
  return { outputs, dims, runMs };
}

async function load(msg: LoadMsg): Promise<Reply<LoadResult>> {
  const t0 = performance.now();
  // Open only the bytes the main thread verified, and check they arrived as verified.
  const sha256 = createHash('sha256').update(msg.onnx).digest('hex');
  if (sha256 !== msg.sha256) throw new ModelInvalidError(msg.key, `${msg.key}: the model bytes handed to the worker hash to ${sha256.slice(0, 12)}…, not the verified ${msg.sha256.slice(0, 12)}…`);
  const opened = await openSession(msg.onnx, cfg);
  try {
    checkSessionIo(msg.key, msg.manifest, opened.session.inputMetadata, opened.session.outputMetadata);
  } catch (e) {
    await opened.session.release();
    throw e;
  }
  const shape = msg.manifest.input.shape;
  const m: Loaded = {
    session: opened.session,
    provider: opened.provider,
    manifest: msg.manifest,
    processor: SegmentationProcessor.fromManifest(msg.manifest),
    inShape: [shape[1], shape[2], shape[3]],
    fixedBatch: typeof shape[0] === 'number' ? shape[0] : undefined,
  };
  const loadMs = performance.now() - t0;
  // Warm-up: the first runs at a new batch size allocate and plan; do that before serving.
  const t1 = performance.now();
  const plane = m.inShape[0] * m.inShape[1] * m.inShape[2];
  const sizes = m.fixedBatch ? [m.fixedBatch] : [...new Set(msg.warmupBatches.filter((b) => b >= 1))];
  try {
    for (const b of sizes) {
      const { outputs, dims } = await runBatch(m, Array.from({ length: b }, () => new Float32Array(plane)));
      const outC = msg.manifest.output.shape[1];
      if (outputs.length !== b || dims[1] !== outC) {
        throw new InferenceError(`${msg.key}: warm-up at batch ${b} produced output dims [${dims.join(',')}], expected ${outC} channels`);
      }
    }
  } catch (e) {
    await m.session.release();
    throw new InferenceError(`${msg.key}: warm-up failed: ${(e as Error).message}`);
  }
  // Replace an older session of the same key only once the new one works.
  const old = models.get(msg.key);
  models.set(msg.key, m);
  if (old) await old.session.release();
  const result: LoadResult = { key: msg.key, sha256, provider: m.provider, loadMs, warmupMs: performance.now() - t1 };
  if (opened.fallbackReason) result.fallbackReason = opened.fallbackReason;
  return { result };
}

/** What a result says about its image (never patient attributes). */
function imageFacts(image: DecodedImage): ImageFacts {
  return {
    rows: image.rows,
    columns: image.columns,
    frame: image.frame,
    numberOfFrames: image.numberOfFrames,
    transferSyntax: { uid: image.transferSyntaxUid, name: image.transferSyntaxName },
    sopInstanceUid: image.sopInstanceUid ?? null,
    modality: image.modality ?? null,
  };
}

/**
 * Test hook, read only here and only when the environment says ENGINE_TEST_HOOKS=1 (never set in
 * production): a DICOM whose 128-byte preamble (ignored by every reader) starts with `STALL:<ms>;`
 * blocks this worker synchronously for that long before decoding, as a codec stuck in wasm would;
 * `EXIT:<code>;` ends the worker thread at once, as a fatal error in its JS would. They let tests
 * exercise deadlines and crashes deterministically, without killing a thread inside a native
 * onnxruntime call (which aborts the whole process).
 */
const TEST_HOOKS = process.env.ENGINE_TEST_HOOKS === '1';
function testStall(dicom: Uint8Array): void {
  if (!TEST_HOOKS) return;
  const head = Buffer.from(dicom.buffer, dicom.byteOffset, Math.min(16, dicom.length)).toString('latin1');
  const exit = /^EXIT:(\d{1,3});/.exec(head);
  if (exit) process.exit(Number(exit[1]));
  const m = /^STALL:(\d{1,7});/.exec(head);
  if (!m) return;
  const until = Date.now() + Number(m[1]);
  while (Date.now() < until);
}

async function prepare(msg: PrepareMsg): Promise<Reply<PrepareResult>> {
  testStall(msg.dicom);
  const t0 = performance.now();
  const image = await decodeDicom(msg.dicom, msg.frame === undefined ? { maxPixels: msg.maxPixels } : { frame: msg.frame, maxPixels: msg.maxPixels });
  const t1 = performance.now();
  const tensors = preprocessorFor(msg.spec).preprocess(image, { tta: msg.tta }).map(owned);
  const preview = msg.preview ? makePreview(image, msg.preview.maxSide) : undefined;
  const t2 = performance.now();
  const transfer: ArrayBuffer[] = tensors.map((t) => t.buffer as ArrayBuffer);
  if (preview) transfer.push(preview.data.buffer as ArrayBuffer);
  return {
    result: {
      image: imageFacts(image),
      tensors,
      ...(preview ? { preview } : {}),
      decodeMs: t1 - t0,
      preprocessMs: t2 - t1,
    },
    transfer,
  };
}

async function infer(msg: InferMsg): Promise<Reply<InferResult>> {
  const startedAt = epochMs();
  const m = models.get(msg.key);
  if (!m) throw new InferenceError(`model ${msg.key} is not loaded in this worker`);
  const [c, h, w] = m.inShape;
  const images: Float32Array[] = [];
  for (const e of msg.entries) {
    for (const t of e.tensors) {
      if (t.length !== c * h * w) throw new InferenceError(`${msg.key}: input tensor has ${t.length} values, expected ${c}x${h}x${w}`);
      images.push(t);
    }
  }
  const { outputs, dims, runMs } = await runBatch(m, images);
  const { height, width } = m.processor.outputSize;
  if (dims[1] !== m.processor.labels.length || dims[2] !== height || dims[3] !== width) {
    throw new InferenceError(`${msg.key}: output dims [${dims.join(',')}], expected ${m.processor.labels.length}x${height}x${width}`);
  }
  const entries: InferResult['entries'] = [];
  const transfer: ArrayBuffer[] = [];
  let k = 0;
  for (const e of msg.entries) {
    const own = outputs.slice(k, (k += e.tensors.length));
    if (msg.raw) {
      // Each entry's outputs in buffers of their own (the batch's output is one), to move on from here.
      const raw = own.map((o) => o.slice());
      transfer.push(...raw.map((o) => o.buffer as ArrayBuffer));
      entries.push({ masks: [], postprocessMs: 0, raw });
      continue;
    }
    const done = await postprocessEntry(m.processor, own, { rows: e.rows, cols: e.cols, rules: e.rules, wants: wantsOf(e) });
    transfer.push(...done.transfer);
    entries.push(done.result);
  }
  return { result: { startedAt, runMs, images: images.length, provider: m.provider, entries }, transfer };
}

/**
 * One entry's network output (and with TTA its flipped twin's) -> masks (as runs for the wire) and,
 * when asked for, probabilities: the same code whether it runs beside the session or in a prepare
 * worker. The reply's transfer list moves the runs and probabilities to the main thread.
 */
async function postprocessEntry(processor: SegmentationProcessor, outputs: Float32Array[], e: Pick<PostprocessMsg, 'rows' | 'cols' | 'rules' | 'wants'>): Promise<{ result: Postprocessed; transfer: ArrayBuffer[] }> {
  const t0 = performance.now();
  const [output, flipped] = outputs as [Float32Array, Float32Array | undefined];
  // Probabilities first: postprocess overwrites the outputs.
  const probabilities = e.wants.probabilities ? probabilitiesOf(processor, output, flipped) : undefined;
  const masks = e.wants.masks ? await processor.postprocess(output, flipped, { rows: e.rows, cols: e.cols, ...e.rules }) : [];
  const wire = masksToWire(masks);
  if (probabilities) wire.transfer.push(probabilities.buffer as ArrayBuffer);
  return { result: { masks: wire.masks, postprocessMs: performance.now() - t0, ...(probabilities ? { probabilities } : {}) }, transfer: wire.transfer };
}

/** Processors of the models whose outputs this worker post-processed (a handful at most), by key and bytes. */
const postprocessors = new Map<string, SegmentationProcessor>();
async function postprocess(msg: PostprocessMsg): Promise<Reply<Postprocessed>> {
  const id = `${msg.key}@${msg.sha256}`;
  let p = postprocessors.get(id);
  if (!p) {
    if (postprocessors.size >= 32) postprocessors.clear();
    p = SegmentationProcessor.fromManifest(msg.manifest);
    postprocessors.set(id, p);
  }
  const { height, width } = p.outputSize;
  const plane = p.labels.length * height * width;
  for (const o of msg.outputs) {
    if (o.length !== plane) throw new InferenceError(`${msg.key}: output has ${o.length} values, expected ${p.labels.length}x${height}x${width}`);
  }
  return postprocessEntry(p, msg.outputs, msg);
}

/**
 * One image's network output -> its probabilities (a new C x H x W array at the model's output size):
 * the processor's activation, and with TTA the mean with the flipped input's un-flipped probabilities,
 * as the masks are made from. `output` and `flipped` are left as they were.
 */
function probabilitiesOf(processor: SegmentationProcessor, output: Float32Array, flipped: Float32Array | undefined): Float32Array {
  const probs = processor.probabilities(output.slice());
  if (!flipped) return probs;
  const { height, width } = processor.outputSize;
  return averageWithUnflipped(probs, processor.probabilities(flipped.slice()), processor.labels.length, height, width);
}

serve<WorkerMsg>(async (msg) => {
  switch (msg.type) {
    case 'load':
      return load(msg);
    case 'unload': {
      const m = models.get(msg.key);
      models.delete(msg.key);
      if (m) await m.session.release();
      return { result: null };
    }
    case 'shutdown': {
      const all = [...models.values()];
      models.clear();
      await Promise.allSettled(all.map((m) => m.session.release()));
      return { result: null };
    }
    case 'prepare':
      return prepare(msg);
    case 'infer':
      return infer(msg);
    case 'postprocess':
      return postprocess(msg);
  }
});
