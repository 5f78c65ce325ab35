/**
 * Test model repositories: random-weight UNets (the trainer's buildUNetOnnx) written as
 * `<dir>/<name>/<version>/model.onnx + model.json` with a manifest that validates and a correct sha256.
 * Options bend one thing at a time so tests can exercise each repository error.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelManifest } from '../../core/manifest.ts';
import type { Intensity, ResizeMethod } from '../../core/preprocess/spec.ts';
import { ModelProto } from '../../trainer/graph/onnx/schema.ts';
import { buildUNetOnnx } from '../../trainer/session/training-session.ts';
import type { UpsampleMode } from '../../trainer/session/types.ts';

export interface FixtureModel {
  name: string;
  version: string;
  /** Model input H = W, or { height, width }. Must be divisible by 2^depth. */
  size: number | { height: number; width: number };
  depth?: number;
  baseChannels?: number;
  inChannels?: number;
  classes?: number;
  upsample?: UpsampleMode;
  seed?: number;
  labels?: string[];
  intensity?: Intensity;
  /** The manifest's resize method (default bilinear). */
  resize?: ResizeMethod;
  threshold?: number;
  minArea?: number;
  /**
   * A fixed batch dimension: the graph's input and output declare N = fixedBatch (instead of the
   * symbolic 'N') and so does the manifest, so the engine pads every run to exactly this many images.
   */
  fixedBatch?: number;
  /** Rename the graph's input/output (e.g. { input: 'input', output: 'logits' } as a PyTorch export). */
  ioNames?: { input?: string; output?: string };
  /** Edit the manifest object just before it is written (after the sha256 is set). */
  editManifest?: (m: Record<string, any>) => void;
  /** Write these bytes as model.onnx instead of the UNet (the manifest still carries the UNet's sha). */
  replaceOnnx?: Uint8Array;
  /** Leave out one of the two files. */
  omit?: 'model.onnx' | 'model.json';
}

export interface FixtureEntry {
  name: string;
  version: string;
  dir: string;
  onnxPath: string;
  manifestPath: string;
  manifest: ModelManifest;
  onnx: Uint8Array;
}

/** Rename graph input/output through the trainer's ONNX schema (protobufjs decode/encode, no hand-written bytes). */
export function renameGraphIo(bytes: Uint8Array, names: { input?: string; output?: string }): Uint8Array {
  const model = ModelProto.toObject(ModelProto.decode(bytes), { defaults: false }) as Record<string, any>;
  const g = model.graph as { input: Array<{ name: string }>; output: Array<{ name: string }>; node: Array<{ input?: string[]; output?: string[] }> };
  const swap = (from: string, to: string) => {
    for (const n of g.node) {
      n.input = (n.input ?? []).map((x) => (x === from ? to : x));
      n.output = (n.output ?? []).map((x) => (x === from ? to : x));
    }
  };
  if (names.input) {
    swap(g.input[0]!.name, names.input);
    g.input[0]!.name = names.input;
  }
  if (names.output) {
    swap(g.output[0]!.name, names.output);
    g.output[0]!.name = names.output;
  }
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}

/** Fix the batch dimension of the graph's input and output to `n` (dim_value instead of dim_param 'N'). */
export function fixGraphBatch(bytes: Uint8Array, n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`fixed batch must be a positive integer, got ${n}`);
  const model = ModelProto.toObject(ModelProto.decode(bytes), { defaults: false }) as Record<string, any>;
  for (const io of [...model.graph.input, ...model.graph.output]) io.type.tensor_type.shape.dim[0] = { dim_value: n };
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export function fixtureManifest(m: FixtureModel, onnxSha256: string): ModelManifest {
  const { height, width } = typeof m.size === 'number' ? { height: m.size, width: m.size } : m.size;
  const inChannels = m.inChannels ?? 1;
  const classes = m.classes ?? 1;
  return {
    schemaVersion: 1,
    name: m.name,
    version: m.version,
    description: `random-weight UNet fixture (${height}x${width})`,
    intendedUse: 'tests only',
    input: { name: m.ioNames?.input ?? 'image', layout: 'NCHW', dtype: 'float32', shape: [m.fixedBatch ?? 'N', inChannels, height, width] },
    output: { name: m.ioNames?.output ?? 'logits', activation: 'logits', shape: [m.fixedBatch ?? 'N', classes, height, width] },
    preprocessing: { size: { height, width }, resize: m.resize ?? 'bilinear', intensity: m.intensity ?? { kind: 'minmax' }, channels: inChannels },
    postprocessing: { threshold: m.threshold ?? 0.5, minArea: m.minArea ?? 0 },
    labels: m.labels ?? Array.from({ length: classes }, (_, i) => (classes === 1 ? 'pneumothorax' : `class${i}`)),
    onnx: { file: 'model.onnx', sha256: onnxSha256, opset: 17 },
    createdAt: new Date(0).toISOString(),
  };
}

/** A small softmax model with a background channel: labels background, lung, heart (mutually exclusive classes). */
export function softmaxFixture(name: string): FixtureModel {
  return {
    name,
    version: '1',
    size: 64,
    depth: 2,
    baseChannels: 4,
    classes: 3,
    labels: ['background', 'lung', 'heart'],
    seed: 3,
    editManifest: (m) => {
      m.output.activation = 'softmax';
      m.background = 'background';
    },
  };
}

/** Build each model (deterministic for a given seed) and write it under `dir`. */
export async function makeModelRepository(dir: string, models: FixtureModel[]): Promise<FixtureEntry[]> {
  const out: FixtureEntry[] = [];
  for (const m of models) {
    const { height, width } = typeof m.size === 'number' ? { height: m.size, width: m.size } : m.size;
    let onnx = buildUNetOnnx(
      { depth: m.depth ?? 2, baseChannels: m.baseChannels ?? 4, inChannels: m.inChannels ?? 1, classes: m.classes ?? 1, upsample: m.upsample ?? 'nearest' },
      height,
      width,
      m.seed ?? 1,
    );
    if (m.fixedBatch !== undefined) onnx = fixGraphBatch(onnx, m.fixedBatch);
    if (m.ioNames) onnx = renameGraphIo(onnx, m.ioNames);
    const manifest = fixtureManifest(m, sha256(onnx)) as ModelManifest & Record<string, any>;
    m.editManifest?.(manifest);
    const vdir = join(dir, m.name, m.version);
    await mkdir(vdir, { recursive: true });
    const onnxPath = join(vdir, 'model.onnx');
    const manifestPath = join(vdir, 'model.json');
    const written = m.replaceOnnx ?? onnx;
    if (m.omit !== 'model.onnx') await writeFile(onnxPath, written);
    if (m.omit !== 'model.json') await writeFile(manifestPath, JSON.stringify(manifest, null, 2));
    out.push({ name: m.name, version: m.version, dir: vdir, onnxPath, manifestPath, manifest, onnx: written });
  }
  return out;
}
