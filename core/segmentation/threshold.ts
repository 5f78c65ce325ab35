/**
 * The threshold rule, the only place a probability is compared with the threshold: foreground where
 * p > threshold (a probability equal to the threshold is background, as in the seeds' `prob > 0.5`).
 * Every fused kernel (logits at model size, bilinear resampling back to the image grid, overlays)
 * calls this function, so the trainer's validation Dice and the service's masks cannot disagree on it.
 */
export function isForeground(probability: number, threshold: number): boolean {
  return probability > threshold;
}
