import { Graph, makeTensor } from '../graph/builder.ts';
import { encodeModel } from '../graph/onnx/encode.ts';
import type { UNetConfig } from './unet.ts';
import { buildUNetForward, foldBatchNorm, initUNetParams, unetParamSpecs, validateUNetConfig } from './unet.ts';

export const EXPORT_OPSET = 17;
export const INPUT_NAME = 'image';
export const OUTPUT_NAME = 'logits';
/** The symbolic batch dimension of the exported model's input and output. */
export const BATCH_DIM = 'N';

export interface ExportOptions {
  /** Fold BatchNorm into the convs (fewer ops) instead of keeping BatchNormalization nodes. */
  foldBatchNorm?: boolean;
  metadata?: Record<string, string>;
}

/**
 * The inference graph: input 'image' [N, C, H, W] (N dynamic), output 'logits' [N, classes, H, W],
 * weights as initializers, BatchNorm in inference form (running statistics) or folded.
 */
export function buildInferenceOnnx(
  cfg: UNetConfig,
  height: number,
  width: number,
  tensors: ReadonlyMap<string, Float32Array>,
  opts: ExportOptions = {},
): Uint8Array {
  validateUNetConfig(cfg, height, width);
  const fold = opts.foldBatchNorm ?? false;
  const weights = fold ? foldBatchNorm(cfg, tensors) : new Map(tensors);
  const g = new Graph('unet', EXPORT_OPSET);
  const image = g.input(INPUT_NAME, 'float32', [BATCH_DIM, cfg.inChannels, height, width]);
  const dimsOf = new Map(unetParamSpecs(cfg).map((s) => [s.name, s.dims]));
  const param = (name: string) => {
    const t = weights.get(name);
    if (!t) throw new Error(`export: missing tensor ${name}`);
    // Folded conv biases are new tensors of length Cout; everything else keeps its spec dims.
    const dims = dimsOf.get(name) ?? [t.length];
    return g.values.get(name) ?? g.initializer(name, makeTensor('float32', dims, t));
  };
  const { logits } = buildUNetForward(g, cfg, image, param, fold ? 'folded' : 'inference', OUTPUT_NAME);
  g.output(logits);
  return encodeModel(g, {
    docString: `UNet depth ${cfg.depth}, base ${cfg.baseChannels}, ${cfg.upsample} upsampling; input NCHW float32, output logits`,
    metadata: {
      architecture: JSON.stringify({ kind: 'unet', ...cfg }),
      batchNorm: fold ? 'folded' : 'inference',
      ...(opts.metadata ?? {}),
    },
  });
}

/** Random-weight export without training: used by service tests before a trained model exists. */
export function buildUNetOnnx(unet: UNetConfig, height: number, width: number, seed: number): Uint8Array {
  validateUNetConfig(unet, height, width);
  return buildInferenceOnnx(unet, height, width, initUNetParams(unet, seed));
}
