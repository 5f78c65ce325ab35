import { maskFromRuns, rowRunsToRuns } from '../../rle/runs.ts';
import { bilinearAboveThresholdRuns } from '../resample.ts';

/** The threshold pass's foreground painted as an outH x outW 0/1 image, to compare with byte-mask references. */
export function aboveThresholdBytes(src: Float32Array, inH: number, inW: number, outH: number, outW: number, threshold: number): Uint8Array {
  return maskFromRuns(rowRunsToRuns(bilinearAboveThresholdRuns(src, inH, inW, outH, outW, threshold), outH, outW), outH, outW).data;
}
