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

/** In place: the network's output -> probabilities (a no-op for a network that emits probabilities). */
export function toProbabilitiesInPlace(x: Float32Array, activation: Activation): Float32Array {
  if (activation === 'logits') for (let i = 0; i < x.length; i++) x[i] = sigmoid(x[i]!);
  return x;
}
