/**
 * The segmentation processor: everything between a decoded image and the reported masks that depends
 * on the model, built once from its manifest (as transformers.js builds an image processor from a
 * model's config). `preprocess` is the model input (core/preprocess's one path, plus the flipped twin
 * for TTA); `postprocess` is the activation, TTA un-flip, resampling to the image, the threshold rule
 * and the area gate. The inference worker, the trainer's validation and export parity check, and the
 * segment CLI all go through one of these, so what the trainer measures is what the service returns.
 */
import type { DecodedImage } from '../dicom/types.ts';
import type { ModelManifest } from '../manifest.ts';
import { normalizeInPlace, parsePreprocessSpec, tensorFromImage, type PreprocessSpec } from '../preprocess/index.ts';
import { toProbabilitiesInPlace } from './activation.ts';
import { hflipCHW, outputToMasks } from './postprocess.ts';
import { PostprocessingSchema, type Activation, type MaskRules, type Postprocessing } from './postprocessing.ts';
import type { SegmentedMask } from './records.ts';

export interface ProcessorConfig {
  preprocessing: PreprocessSpec;
  activation: Activation;
  /** One per output channel. */
  labels: readonly string[];
  /** Defaults for postprocess(); a request may override them. */
  postprocessing?: Partial<Postprocessing>;
  /** The network output's H x W when it differs from the input's (default: preprocessing.size). */
  outputSize?: { height: number; width: number };
  /** Softmax models: the label of the background channel (no mask is reported for it). */
  background?: string;
}

export interface PostprocessOptions extends Partial<MaskRules> {
  /** The original image's size, which the masks are returned at. */
  rows: number;
  cols: number;
}

export class SegmentationProcessor {
  readonly spec: PreprocessSpec;
  readonly activation: Activation;
  readonly labels: readonly string[];
  readonly defaults: Postprocessing;
  readonly outputSize: { height: number; width: number };
  /** Softmax models: index of the background channel. */
  readonly background: number | undefined;

  constructor(config: ProcessorConfig) {
    this.spec = parsePreprocessSpec(config.preprocessing);
    this.activation = config.activation;
    this.labels = [...config.labels];
    this.defaults = PostprocessingSchema.parse(config.postprocessing ?? {});
    this.outputSize = config.outputSize ?? this.spec.size;
    this.background = config.background === undefined ? undefined : this.labels.indexOf(config.background);
    if (this.activation === 'softmax' && !(this.background !== undefined && this.background >= 0)) {
      throw new RangeError(`softmax models name their background label (one of ${this.labels.join(', ')}), got ${config.background}`);
    }
  }

  static fromManifest(m: Pick<ModelManifest, 'preprocessing' | 'output' | 'labels' | 'postprocessing' | 'background'>): SegmentationProcessor {
    const [, , height, width] = m.output.shape;
    return new SegmentationProcessor({
      preprocessing: m.preprocessing,
      activation: m.output.activation,
      labels: m.labels,
      postprocessing: m.postprocessing,
      outputSize: { height, width },
      ...(m.background !== undefined ? { background: m.background } : {}),
    });
  }

  /** Model input geometry (C x H x W of one image). */
  get inputShape(): [number, number, number] {
    return [this.spec.channels, this.spec.size.height, this.spec.size.width];
  }

  /** One decoded frame -> the C x H x W model input; with `tta`, [input, horizontally flipped input]. */
  preprocess(image: DecodedImage, o: { tta?: boolean } = {}): Float32Array[] {
    const tensor = tensorFromImage(image, this.spec);
    if (!o.tta) return [tensor];
    const [c, h, w] = this.inputShape;
    return [tensor, hflipCHW(tensor, c, h, w)];
  }

  /**
   * The normalisation step alone, in place, for tensors that were cached before it (the trainer
   * caches unnormalised inputs so augmentation sees [0, 1] intensities).
   */
  normalize(tensor: Float32Array): Float32Array {
    return this.spec.normalize ? normalizeInPlace(tensor, this.spec.channels, this.spec.normalize) : tensor;
  }

  /**
   * One image's network output (C x H x W at the model's size), plus the flipped input's output for
   * TTA, -> one mask per label at rows x cols. `output` and `flipped` are consumed (overwritten).
   */
  postprocess(output: Float32Array, flipped: Float32Array | undefined, o: PostprocessOptions): Promise<SegmentedMask[]> {
    const { height, width } = this.outputSize;
    const { rows, cols, ...asked } = o;
    return outputToMasks(output, flipped, {
      activation: this.activation,
      channels: this.labels.length,
      height,
      width,
      rows,
      cols,
      labels: this.labels,
      ...this.rules(asked),
      ...(this.background !== undefined ? { background: this.background } : {}),
    });
  }

  /**
   * The manifest's rules with a request's overrides: a rule the request sets applies to every label,
   * replacing the manifest's per-label value too (the request is the more specific instruction).
   */
  rules(asked: Partial<MaskRules>): Postprocessing {
    const set = (Object.keys(asked) as (keyof MaskRules)[]).filter((k) => asked[k] !== undefined);
    if (set.length === 0) return this.defaults;
    const out: Postprocessing = { ...this.defaults };
    for (const k of set) (out as Record<string, unknown>)[k] = asked[k];
    if (this.defaults.classes) {
      out.classes = Object.fromEntries(
        Object.entries(this.defaults.classes).map(([label, r]) => [label, Object.fromEntries(Object.entries(r).filter(([k]) => !set.includes(k as keyof MaskRules)))]),
      );
    }
    return out;
  }

  /** In place: the network's output (one or more C x H x W images) -> probabilities (for reports and parity checks). */
  probabilities(output: Float32Array): Float32Array {
    const { height, width } = this.outputSize;
    return toProbabilitiesInPlace(output, this.activation, this.labels.length, height * width);
  }

  /** The labels that get a mask (all of them, but a softmax model's background). */
  get maskLabels(): string[] {
    return this.labels.filter((_, c) => c !== this.background);
  }
}
