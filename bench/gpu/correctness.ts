/**
 * GPU results against the CPU reference for the same synthetic DICOMs: probabilities from raw sessions
 * (max |difference|), and the service's masks (Engine on the measured provider) against masks made on
 * CPU with the same postprocessing the engine's workers use. A mask pixel may differ only where the
 * CPU probability lies within the measured probability difference of the threshold.
 */
import * as ort from 'onnxruntime-node';
import { decodeDicom } from '../../core/dicom/decode.ts';
import { toProbabilitiesInPlace } from '../../core/segmentation/activation.ts';
import { probabilitiesToMasks } from '../../core/segmentation/postprocess.ts';
import type { ModelManifest } from '../../core/manifest.ts';
import { resampleFloat32, toTensor } from '../../core/preprocess/index.ts';

export interface PreparedImage {
  rows: number;
  cols: number;
  tensor: Float32Array;
}

/** DICOM bytes -> model input, exactly as the engine's workers do it (decodeDicom + toTensor). */
export async function prepareImages(dicoms: Uint8Array[], manifest: ModelManifest): Promise<PreparedImage[]> {
  const out: PreparedImage[] = [];
  for (const d of dicoms) {
    const image = await decodeDicom(d);
    out.push({ rows: image.rows, cols: image.columns, tensor: await toTensor(image, manifest.preprocessing) });
  }
  return out;
}

/** Sigmoid probabilities (one C x H x W array per image) from one batched run. */
export async function probabilities(session: ort.InferenceSession, manifest: ModelManifest, images: PreparedImage[]): Promise<Float32Array[]> {
  const [, c, h, w] = manifest.input.shape as [unknown, number, number, number];
  const plane = c * h * w;
  const data = new Float32Array(images.length * plane);
  images.forEach((im, i) => data.set(im.tensor, i * plane));
  const out = await session.run({ [manifest.input.name]: new ort.Tensor('float32', data, [images.length, c, h, w]) });
  const all = (out[manifest.output.name] as ort.Tensor).data as Float32Array;
  const per = all.length / images.length;
  return images.map((_, i) => {
    const p = all.slice(i * per, (i + 1) * per);
    return toProbabilitiesInPlace(p, manifest.output.activation);
  });
}

export function maxAbsDiff(a: readonly Float32Array[], b: readonly Float32Array[]): { max: number; mean: number } {
  let max = 0;
  let sum = 0;
  let n = 0;
  a.forEach((x, i) => {
    const y = b[i]!;
    for (let k = 0; k < x.length; k++) {
      const d = Math.abs(x[k]! - y[k]!);
      if (d > max) max = d;
      sum += d;
      n++;
    }
  });
  return { max, mean: n ? sum / n : 0 };
}

/** Reference masks (first label) from CPU probabilities, through the engine's own postprocessing. */
export async function referenceMasks(probs: Float32Array[], images: PreparedImage[], manifest: ModelManifest): Promise<Uint8Array[]> {
  const [, c, h, w] = manifest.output.shape as [unknown, number, number, number];
  const out: Uint8Array[] = [];
  for (let i = 0; i < probs.length; i++) {
    const masks = await probabilitiesToMasks(probs[i]!.slice(), {
      channels: c,
      height: h,
      width: w,
      rows: images[i]!.rows,
      cols: images[i]!.cols,
      labels: manifest.labels,
      threshold: manifest.postprocessing.threshold,
      minArea: manifest.postprocessing.minArea,
    });
    out.push(masks[0]!.mask.data);
  }
  return out;
}

export interface MaskComparison {
  pixels: number;
  differing: number;
  /** Differing pixels whose CPU probability is farther from the threshold than `tolerance`: real disagreements. */
  unexplained: number;
}

/**
 * Compare the service's masks with the reference masks. `refProbs` are the CPU probabilities (first
 * channel, model resolution); they are resampled to the image size the same way the engine does.
 */
export function compareMasks(served: Uint8Array[], reference: Uint8Array[], refProbs: Float32Array[], images: PreparedImage[], manifest: ModelManifest, tolerance: number): MaskComparison {
  const [, , h, w] = manifest.output.shape as [unknown, number, number, number];
  const thr = manifest.postprocessing.threshold;
  let pixels = 0;
  let differing = 0;
  let unexplained = 0;
  served.forEach((s, i) => {
    const r = reference[i]!;
    const im = images[i]!;
    const p = resampleFloat32(refProbs[i]!.subarray(0, h * w), h, w, im.rows, im.cols, 'bilinear');
    pixels += r.length;
    for (let k = 0; k < r.length; k++) {
      if ((s[k] !== 0) === (r[k] !== 0)) continue;
      differing++;
      if (Math.abs(p[k]! - thr) > tolerance + 1e-7) unexplained++;
    }
  });
  return { pixels, differing, unexplained };
}
