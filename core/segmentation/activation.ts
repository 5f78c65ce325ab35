/**
 * The output activation, applied only here: the manifest says what the network emits
 * (`output.activation`), and the processor turns it into probabilities with these functions. The
 * trainer's predict graph emits logits too, so validation goes through the same code as serving.
 */
import type { Activation } from './postprocessing.ts';

/** The logistic function in float64; callers that store into a Float32Array round as they store. */
export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/**
 * In place: the network's output -> probabilities. `x` holds C x H x W images back to back (`plane` =
 * H*W values per channel; default: one image). A no-op for a network that emits probabilities;
 * softmax runs over the channel axis at each pixel.
 */
export function toProbabilitiesInPlace(x: Float32Array, activation: Activation, channels = 1, plane = x.length / channels): Float32Array {
  if (activation === 'logits') for (let i = 0; i < x.length; i++) x[i] = sigmoid(x[i]!);
  else if (activation === 'softmax') softmaxChannelsInPlace(x, channels, plane);
  return x;
}

/** Softmax over the channel axis, max-subtracted so that large logits cannot overflow. */
function softmaxChannelsInPlace(x: Float32Array, channels: number, plane: number): void {
  const image = channels * plane;
  if (!Number.isInteger(plane) || plane < 1 || x.length % image !== 0) throw new RangeError(`softmax: ${x.length} values are not whole ${channels}x${plane} images`);
  const e = new Float64Array(channels);
  for (let o = 0; o < x.length; o += image) {
    for (let i = 0; i < plane; i++) {
      let max = -Infinity;
      for (let c = 0; c < channels; c++) max = Math.max(max, x[o + c * plane + i]!);
      let sum = 0;
      for (let c = 0; c < channels; c++) sum += e[c] = Math.exp(x[o + c * plane + i]! - max);
      for (let c = 0; c < channels; c++) x[o + c * plane + i] = e[c]! / sum;
    }
  }
}
