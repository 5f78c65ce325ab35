/** Ground truths sent with POST /segment: checked against the model's labels, then scored with Dice. */
import type { ModelInfo } from '../../core/engine/index.ts';
import type { Mask } from '../../core/mask.ts';
import { dice } from '../../core/metrics/index.ts';
import { decodeMask, type RleFormat } from '../../core/rle/index.ts';
import type { SegmentResult } from '../../core/segmentation/records.ts';
import { Problem } from '../problem.ts';
import type { GroundTruth } from './body.ts';

/** Catches a ground truth for a label the model lacks before an inference is spent on it. */
export function checkTruthLabels(truths: GroundTruth[], model: ModelInfo | undefined): void {
  if (!model) return;
  for (const t of truths) {
    if (t.label !== null && !model.manifest.labels.includes(t.label)) {
      throw new Problem('bad-request', `ground truth for unknown label ${JSON.stringify(t.label)}; model ${model.name} labels: ${model.manifest.labels.join(', ')}`);
    }
  }
}

/** 'coco' counts travel in a text field as a JSON array or whitespace/comma separated integers. */
function parseCounts(counts: string, format: RleFormat): string | number[] {
  if (format !== 'coco') return counts;
  const text = counts.startsWith('[') ? counts.slice(1, counts.endsWith(']') ? -1 : undefined) : counts;
  const parts = text.split(/[\s,]+/).filter((s) => s.length > 0);
  const out = parts.map(Number);
  if (out.some((n) => !Number.isInteger(n))) throw new Problem('bad-rle', 'coco ground truth must be a list of integers (JSON array or space separated)', { code: 'BAD_RLE' });
  return out;
}

/** Decodes every ground truth at the image size and pairs it with the predicted mask of its label; undefined when none was sent. */
export function diceScores(result: SegmentResult, truths: GroundTruth[], format: RleFormat): Record<string, number> | undefined {
  if (truths.length === 0) return undefined;
  const out: Record<string, number> = {};
  const labels = result.masks.map((m) => m.label);
  for (const t of truths) {
    const label = t.label ?? labels[0]!;
    const pred = result.masks.find((m) => m.label === label);
    if (!pred) throw new Problem('bad-request', `ground truth for unknown label ${JSON.stringify(label)}; model labels: ${labels.join(', ')}`);
    let truth: Mask;
    try {
      truth = decodeMask(parseCounts(t.counts, format), format, result.image.rows, result.image.columns);
    } catch (e) {
      if (e instanceof Problem) throw e;
      throw new Problem('bad-rle', `ground truth${t.label ? ` for ${t.label}` : ''} (${format}, ${result.image.rows}x${result.image.columns}): ${(e as Error).message}`, {
        code: 'BAD_RLE',
      });
    }
    out[label] = dice(pred.mask, truth);
  }
  return out;
}
