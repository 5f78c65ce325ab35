/**
 * Export into the model repository layout the service reads: <out>/<name>/<version>/model.onnx +
 * model.json. Nothing is written until the exported graph has been run in a fresh onnxruntime
 * session and matched the training session's own inference-mode predictions (parity), and the
 * manifest has validated against the shared schema.
 */
import { createHash } from 'node:crypto';
import { access, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { parseManifest, type ModelManifest } from '../core/manifest.ts';
import type { PreprocessSpec } from '../core/preprocess/spec.ts';
import { openSession } from '../core/runtime/session.ts';
import { toProbabilitiesInPlace } from '../core/segmentation/activation.ts';
import { decodeModel } from './graph/onnx/encode.ts';
import type { TrainingSession } from './session/types.ts';

export class ParityError extends Error {
  constructor(
    message: string,
    readonly maxAbsDiff: number,
  ) {
    super(message);
    this.name = 'ParityError';
  }
}

export interface ParityResult {
  maxAbsDiff: number;
  meanAbsDiff: number;
  images: number;
  tolerance: number;
}

/** What the exported network emits: logits for per-channel sigmoids, or logits over softmax classes. */
export type ExportActivation = 'logits' | 'softmax';

/**
 * Run `onnx` in a fresh InferenceSession (CPU, as the service's fallback) on `images` and compare its
 * output with `session.predict`'s, both as probabilities (core/segmentation's activation: the
 * tolerance is on what the threshold, or for softmax models the argmax, sees).
 */
export async function checkParity(onnx: Uint8Array, session: TrainingSession, images: Float32Array, n: number, tolerance: number, threads?: number, activation: ExportActivation = 'logits'): Promise<ParityResult> {
  const info = decodeModel(onnx);
  const input = info.inputs[0]!;
  const output = info.outputs[0]!;
  const per = images.length / n;
  const [, c, h, w] = input.shape as [unknown, number, number, number];
  if (c * h * w !== per) throw new ParityError(`exported input is ${c}x${h}x${w} but validation images have ${per} values`, Infinity);
  const [, classes, oh, ow] = output.shape as [unknown, number, number, number];
  const plane = oh * ow;
  const ref = toProbabilitiesInPlace((await session.predict(images, n)).slice(), activation, classes, plane);
  // Opened exactly as the service's CPU fallback opens it.
  const { session: fresh } = await openSession(onnx, { provider: 'cpu', ...(threads ? { intraOpThreads: threads } : {}) });
  let max = 0;
  let sum = 0;
  try {
    // One image per run: the batch dimension is dynamic, and this also exercises N=1 as the service sends it.
    for (let k = 0; k < n; k++) {
      const x = new ort.Tensor('float32', images.slice(k * per, (k + 1) * per), [1, c, h, w]);
      const out = await fresh.run({ [input.name]: x });
      const probs = toProbabilitiesInPlace((out[output.name]!.data as Float32Array).slice(), activation, classes, plane);
      const r = ref.subarray(k * probs.length, (k + 1) * probs.length);
      if (r.length !== probs.length) throw new ParityError(`exported model gives ${probs.length} outputs per image, the session ${r.length}`, Infinity);
      for (let i = 0; i < probs.length; i++) {
        const d = Math.abs(probs[i]! - r[i]!);
        if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
        sum += d;
      }
    }
  } finally {
    await fresh.release();
  }
  return { maxAbsDiff: max, meanAbsDiff: sum / ref.length, images: n, tolerance };
}

export interface ManifestInput {
  name: string;
  version: string;
  description: string;
  intendedUse: string;
  spec: PreprocessSpec;
  threshold: number;
  minArea: number;
  labels: string[];
  /** Default 'logits' (per-channel sigmoid); 'softmax' needs `background`, one of the labels. */
  activation?: ExportActivation;
  background?: string;
  training: NonNullable<ModelManifest['training']>;
}

/** The manifest for an exported model: names, shapes and opset are read from the ONNX bytes. */
export function buildManifest(onnx: Uint8Array, m: ManifestInput): ModelManifest {
  const info = decodeModel(onnx);
  const input = info.inputs[0]!;
  const output = info.outputs[0]!;
  return parseManifest(
    {
      schemaVersion: 1,
      name: m.name,
      version: m.version,
      description: m.description,
      intendedUse: m.intendedUse,
      input: { name: input.name, layout: 'NCHW', dtype: 'float32', shape: input.shape },
      output: { name: output.name, activation: m.activation ?? 'logits', shape: output.shape },
      preprocessing: m.spec,
      postprocessing: { threshold: m.threshold, minArea: m.minArea },
      labels: m.labels,
      ...(m.background !== undefined ? { background: m.background } : {}),
      training: m.training,
      onnx: { file: 'model.onnx', sha256: createHash('sha256').update(onnx).digest('hex'), opset: info.opset },
      createdAt: new Date().toISOString(),
    },
    `${m.name}/${m.version}/model.json`,
  );
}

export interface ExportResult {
  dir: string;
  onnxPath: string;
  manifestPath: string;
  manifest: ModelManifest;
  parity: ParityResult;
  bytes: number;
}

export class ModelExistsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelExistsError';
  }
}

const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

/** A version already in the repository (the service may be serving it) is replaced only when asked. */
export async function assertVersionFree(out: string, name: string, version: string, force: boolean): Promise<void> {
  if (!force && (await exists(join(out, name, version)))) {
    throw new ModelExistsError(`${name}:${version} already exists in ${out}; pass --force to replace it, or choose another --version`);
  }
}

export async function exportModel(
  session: TrainingSession,
  o: { out: string; manifest: ManifestInput; parityImages: Float32Array; parityCount: number; tolerance: number; threads?: number; force?: boolean },
): Promise<ExportResult> {
  const onnx = session.exportOnnx({ foldBatchNorm: true });
  const parity = await checkParity(onnx, session, o.parityImages, o.parityCount, o.tolerance, o.threads, o.manifest.activation ?? 'logits');
  if (!(parity.maxAbsDiff <= o.tolerance)) {
    throw new ParityError(
      `export parity FAILED: exported ONNX differs from the training session by ${parity.maxAbsDiff.toExponential(2)} (tolerance ${o.tolerance.toExponential(0)}); no model written`,
      parity.maxAbsDiff,
    );
  }
  const manifest = buildManifest(onnx, o.manifest);
  const dir = join(o.out, o.manifest.name, o.manifest.version);
  await assertVersionFree(o.out, o.manifest.name, o.manifest.version, o.force ?? false);
  // Written beside, then renamed into place: a served version is replaced whole or not at all.
  const staging = `${dir}.staging-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  await writeFile(join(staging, 'model.onnx'), onnx);
  await writeFile(join(staging, 'model.json'), JSON.stringify(manifest, null, 2) + '\n');
  const old = `${dir}.replaced-${process.pid}`;
  if (await exists(dir)) await rename(dir, old);
  await rename(staging, dir);
  await rm(old, { recursive: true, force: true });
  return { dir, onnxPath: join(dir, 'model.onnx'), manifestPath: join(dir, 'model.json'), manifest, parity, bytes: onnx.byteLength };
}
