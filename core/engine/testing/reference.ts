/**
 * An independent reference for what the engine should return for one request, written without the
 * engine, its workers, its batcher or the segmentation processor: decode (core/dicom) -> toTensor ->
 * a plain `ort.InferenceSession` run of that ONE image (padded with zeros to a fixed batch) -> float64
 * sigmoid -> for TTA, the test's own horizontal flip of the input and un-flip of the output, averaged
 * -> the test's own float64 bilinear upsampling (pixel-centre aligned, edge clamped: PIL's and
 * torch's align_corners=False definition for enlarging) -> p > threshold.
 *
 * float32 vs float64 arithmetic and ORT's batch-size dependent kernels can move a probability by
 * ~1e-6, so a reference pixel within `NEAR` of the threshold may legitimately differ; `compareToReference`
 * reports every other difference as wrong.
 */
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { decodeDicom } from '../../dicom/decode.ts';
import type { ModelManifest } from '../../manifest.ts';
import type { Mask } from '../../mask.ts';
import { toTensor } from '../../preprocess/index.ts';

/** A reference probability this close to the threshold may fall either side of it in float32. */
export const NEAR = 1e-4;

export interface Reference {
  rows: number;
  cols: number;
  /** Model-size probabilities, C x H x W (float64). */
  modelProbs: Float64Array;
  height: number;
  width: number;
}

const sessions = new Map<string, Promise<ort.InferenceSession>>();
function session(onnxPath: string): Promise<ort.InferenceSession> {
  let s = sessions.get(onnxPath);
  if (!s) sessions.set(onnxPath, (s = ort.InferenceSession.create(onnxPath)));
  return s;
}

export async function releaseReferenceSessions(): Promise<void> {
  for (const s of sessions.values()) await (await s).release();
  sessions.clear();
}

/** Mirror every row of C x H x W (written here, not core's hflipCHW). */
function mirrorRows<T extends Float32Array | Float64Array>(x: T, rowsTotal: number, width: number): T {
  const out = new (x.constructor as { new (n: number): T })(x.length);
  for (let r = 0; r < rowsTotal; r++) for (let c = 0; c < width; c++) out[r * width + c] = x[r * width + (width - 1 - c)]!;
  return out;
}

/** One image (C x H x W) through the plain session, alone in its batch (zero-padded to a fixed N). */
async function runAlone(onnxPath: string, m: ModelManifest, tensor: Float32Array): Promise<Float32Array> {
  const [n, c, h, w] = m.input.shape;
  const batch = typeof n === 'number' ? n : 1;
  const data = new Float32Array(batch * c * h * w);
  data.set(tensor, 0);
  const s = await session(onnxPath);
  const out = (await s.run({ [m.input.name]: new ort.Tensor('float32', data, [batch, c, h, w]) }))[m.output.name] as ort.Tensor;
  const per = out.data.length / batch;
  return (out.data as Float32Array).slice(0, per);
}

export async function referenceProbabilities(onnxPath: string, m: ModelManifest, dicom: Uint8Array, o: { tta?: boolean } = {}): Promise<Reference> {
  assert.equal(m.output.activation, 'logits', 'the reference implements the sigmoid models the fixtures are');
  const image = await decodeDicom(dicom);
  const tensor = await toTensor(image, m.preprocessing);
  const [, classes, height, width] = m.output.shape;
  const [, channels, inH, inW] = m.input.shape;
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  const logits = await runAlone(onnxPath, m, tensor);
  const probs = Float64Array.from(logits, sig);
  if (o.tta) {
    const flippedIn = mirrorRows(tensor, channels * inH, inW);
    const flippedOut = Float64Array.from(await runAlone(onnxPath, m, flippedIn), sig);
    const unflipped = mirrorRows(flippedOut, classes * height, width);
    for (let i = 0; i < probs.length; i++) probs[i] = 0.5 * (probs[i]! + unflipped[i]!);
  }
  return { rows: image.rows, cols: image.columns, modelProbs: probs, height, width };
}

/** Bilinear enlargement of one H x W plane to rows x cols, pixel centres aligned, edges clamped (float64). */
export function bilinearUp(src: Float64Array, h: number, w: number, rows: number, cols: number): Float64Array {
  assert.ok(rows >= h && cols >= w, 'the reference only enlarges (shrinking would need the antialiasing filter)');
  const taps = (outSize: number, inSize: number) =>
    Array.from({ length: outSize }, (_, j) => {
      const x = Math.min(inSize - 1, Math.max(0, (j + 0.5) * (inSize / outSize) - 0.5));
      const i0 = Math.floor(x);
      const i1 = Math.min(inSize - 1, i0 + 1);
      return { i0, i1, f: x - i0 };
    });
  const ty = taps(rows, h);
  const tx = taps(cols, w);
  const out = new Float64Array(rows * cols);
  for (let y = 0; y < rows; y++) {
    const { i0: y0, i1: y1, f: fy } = ty[y]!;
    for (let x = 0; x < cols; x++) {
      const { i0: x0, i1: x1, f: fx } = tx[x]!;
      const top = src[y0 * w + x0]! * (1 - fx) + src[y0 * w + x1]! * fx;
      const bot = src[y1 * w + x0]! * (1 - fx) + src[y1 * w + x1]! * fx;
      out[y * cols + x] = top * (1 - fy) + bot * fy;
    }
  }
  return out;
}

/** Channel `c`'s probabilities at the image's own size. */
export function referenceImageProbs(ref: Reference, c = 0): Float64Array {
  const plane = ref.height * ref.width;
  const p = ref.modelProbs.subarray(c * plane, (c + 1) * plane);
  return ref.rows === ref.height && ref.cols === ref.width ? Float64Array.from(p) : bilinearUp(p, ref.height, ref.width, ref.rows, ref.cols);
}

export function referenceMask(ref: Reference, threshold: number, c = 0): { data: Uint8Array; probs: Float64Array } {
  const probs = referenceImageProbs(ref, c);
  return { data: Uint8Array.from(probs, (p) => (p > threshold ? 1 : 0)), probs };
}

/**
 * Asserts `actual` is the reference mask: same size, and every differing pixel has a reference
 * probability within NEAR of the threshold (there may be a handful; more than 0.1 % fails too).
 */
export function assertMatchesReference(actual: Mask, ref: Reference, threshold: number, what: string, c = 0): void {
  assert.deepEqual([actual.rows, actual.cols], [ref.rows, ref.cols], `${what}: mask size`);
  const want = referenceMask(ref, threshold, c);
  let near = 0;
  let far = 0;
  let firstFar = -1;
  for (let i = 0; i < want.data.length; i++) {
    if (actual.data[i] === want.data[i]) continue;
    if (Math.abs(want.probs[i]! - threshold) < NEAR) near++;
    else {
      far++;
      if (firstFar < 0) firstFar = i;
    }
  }
  const at = firstFar < 0 ? '' : ` (first at row ${Math.floor(firstFar / ref.cols)}, col ${firstFar % ref.cols}: reference p = ${want.probs[firstFar]!.toFixed(4)})`;
  assert.equal(far, 0, `${what}: ${far} pixels differ from the reference away from the threshold${at}`);
  assert.ok(near <= want.data.length * 1e-3, `${what}: ${near} pixels differ near the threshold`);
}

/** Area strictly between 5 % and 95 % of the image, and not mirror-symmetric (so flips and swaps show). */
export function assertPartialAsymmetric(data: Uint8Array, rows: number, cols: number, what: string): void {
  let area = 0;
  let asym = 0;
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < cols; x++) {
      const v = data[y * cols + x]!;
      area += v;
      if (v !== data[y * cols + (cols - 1 - x)]) asym++;
    }
  }
  const n = rows * cols;
  assert.ok(area > 0.05 * n && area < 0.95 * n, `${what}: mask area ${area} of ${n} is not partial: pick another threshold`);
  assert.ok(asym > 0.01 * n, `${what}: only ${asym} of ${n} pixels differ from the mirror image: a flip error would not show`);
}

/**
 * A threshold that leaves every reference partial: the median of all their model-size
 * probabilities, rounded to 3 decimals (so it is a plain number a request can carry).
 */
export function partialThreshold(refs: Reference[]): number {
  const all = Float64Array.from(refs.flatMap((r) => [...r.modelProbs])).sort();
  return Math.round(all[all.length >> 1]! * 1000) / 1000;
}
