/**
 * Bring your own model: turn an ONNX segmentation network (typically a PyTorch UNet exported with
 * torch.onnx.export) into a servable model-repository version, `<repo>/<name>/<version>/model.json`
 * + `model.onnx`, without hand-writing the manifest.
 *
 *   npm run import -- unet.onnx --name lungs --imagenet
 *   npm run import -- unet.onnx --name lesions --version 2 --labels background,lesion,heart,clavicle --size 512
 *
 * Steps: read the graph's inputs/outputs from the ONNX protobuf (the trainer's ONNX schema), check it
 * is servable (one float32 NCHW image input, a float32 NCHW output with one channel per label, a
 * known spatial size), probe it once through onnxruntime to learn the real output shape, write the
 * manifest (validated by core/manifest.ts's parseManifest) and the ONNX with its sha256 into a
 * scratch repository, serve one synthetic chest DICOM through the real Engine from there, and only
 * then install the version into the target repository and print what was written.
 *
 * Exit status: 0 imported; 2 refused (bad command line, missing or unreadable file, not ONNX, not
 * servable, flags that contradict the model, destination exists); 1 the model passed every check but
 * failed to load or run in the engine, or an unexpected failure. Every error is one line on stderr.
 * tools/README.md is the user documentation.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import * as ort from 'onnxruntime-node';
import pino from 'pino';
import { fromSchema, int, intensity as intensityArg, labelList, nonNegativeInt, numberList, probability, size as sizeArg, type Size } from '../core/cli/args.ts';
import { Engine } from '../core/engine/index.ts';
import { ModelManifestSchema, parseManifest, type ModelManifest } from '../core/manifest.ts';
import { IntensitySchema, ResizeMethodSchema, type Intensity, type PreprocessSpec, type ResizeMethod } from '../core/preprocess/spec.ts';
import { openSession } from '../core/runtime/session.ts';
import { ActivationSchema, DEFAULT_MIN_AREA, DEFAULT_THRESHOLD } from '../core/segmentation/postprocessing.ts';
import { TS } from '../core/dicom/transfer-syntax.ts';
import { chestDicom } from '../synth/index.ts';
import { ModelProto } from '../trainer/graph/onnx/schema.ts';

/** The output activations the importer accepts: the manifest's (core/segmentation/postprocessing.ts). */
export const IMPORT_ACTIVATIONS = ActivationSchema.options;
export type ImportActivation = (typeof IMPORT_ACTIVATIONS)[number];

/** ImageNet statistics (torchvision / segmentation_models_pytorch encoders), in 0..1 units. */
export const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } as const;

/** The seed of the synthetic chest DICOM the test inference runs on. */
const TEST_DICOM_SEED = 1;
const TEST_DICOM_SIZE = 256;

/** A refusal (exit 2) or a failure of the imported model in the engine (exit 1); the message is one line. */
export class ImportError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 2,
  ) {
    super(message);
    this.name = 'ImportError';
  }
}

// ---------------------------------------------------------------------------------------------
// Reading the graph

/** onnx.proto TensorProto.DataType names (the importer only serves float32, but names the others). */
const ELEM_TYPES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  14: 'complex64',
  15: 'complex128',
  16: 'bfloat16',
};

/** A dimension: a size, a symbolic name (dynamic), or null (unknown: neither in the graph). */
export type Dim = number | string | null;

export interface GraphValue {
  name: string;
  /** 'float32', 'int64', ...; 'unknown' when the graph does not say. */
  dtype: string;
  /** null when the graph declares no shape at all. */
  shape: Dim[] | null;
}

export interface OnnxSummary {
  irVersion: number;
  opset: number;
  producer: string;
  /** Graph inputs that are not initializers (old exporters list weights as inputs too). */
  inputs: GraphValue[];
  outputs: GraphValue[];
  /** The op that produces each graph output (e.g. 'Sigmoid'), when a node does. */
  producedBy: Record<string, string>;
}

function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v && typeof v === 'object' && 'toNumber' in v) return (v as { toNumber(): number }).toNumber();
  return Number(v);
}

/** The graph's interface, from the protobuf (no weights decoded). Throws ImportError if it is not ONNX. */
export function inspectOnnx(bytes: Uint8Array): OnnxSummary {
  let m: Record<string, any>;
  try {
    m = ModelProto.toObject(ModelProto.decode(bytes), { defaults: false }) as Record<string, any>;
  } catch (e) {
    throw new ImportError(`not an ONNX model (protobuf decode failed: ${oneLine(e)})`);
  }
  const g = m.graph as Record<string, any> | undefined;
  if (!g || !Array.isArray(g.node) || !Array.isArray(g.output) || g.output.length === 0) {
    throw new ImportError('not an ONNX model (no graph with nodes and outputs)');
  }
  const initializers = new Set(((g.initializer ?? []) as { name?: string }[]).map((t) => t.name));
  const value = (v: Record<string, any>): GraphValue => {
    const tt = v.type?.tensor_type as Record<string, any> | undefined;
    const dims = tt?.shape?.dim as Record<string, unknown>[] | undefined;
    return {
      name: String(v.name ?? ''),
      dtype: tt ? (ELEM_TYPES[tt.elem_type as number] ?? (tt.elem_type === undefined ? 'unknown' : `type ${tt.elem_type}`)) : 'not a tensor',
      shape: tt?.shape === undefined ? null : (dims ?? []).map((d) => (d.dim_param !== undefined && d.dim_param !== '' ? String(d.dim_param) : d.dim_value !== undefined ? toNumber(d.dim_value) : null)),
    };
  };
  const producedBy: Record<string, string> = {};
  for (const n of g.node as Record<string, any>[]) for (const o of (n.output ?? []) as string[]) producedBy[o] = String(n.op_type);
  const opset = ((m.opset_import ?? []) as Record<string, unknown>[]).find((o) => !o.domain || o.domain === 'ai.onnx')?.version;
  return {
    irVersion: toNumber(m.ir_version ?? 0),
    opset: toNumber(opset ?? 0),
    producer: [m.producer_name, m.producer_version].filter(Boolean).join(' ') || 'unknown',
    inputs: ((g.input ?? []) as Record<string, any>[]).filter((v) => !initializers.has(v.name)).map(value),
    outputs: ((g.output ?? []) as Record<string, any>[]).map(value),
    producedBy,
  };
}

// ---------------------------------------------------------------------------------------------
// Planning the manifest

export interface ImportOptions {
  name: string;
  version: string;
  /** One per output channel; default `mask` (1 channel) or class1..N. */
  labels?: string[];
  /** Default: `sigmoid` when the graph's output comes out of a Sigmoid node, else `logits`. */
  activation?: ImportActivation;
  /** Softmax models: the background label; default the first label. */
  background?: string;
  intensity: Intensity;
  mean?: number[];
  std?: number[];
  /** Model input channels (the grey image is replicated); default: the graph's. */
  channels?: number;
  /** channels 3, ImageNet mean/std (intensity still maps to 0..1 first). */
  imagenet: boolean;
  /** Served input size, required when the graph's H/W are dynamic. */
  size?: Size;
  resize: ResizeMethod;
  /** Which graph output is the segmentation, when there are several. */
  output?: string;
  threshold?: number;
  minArea?: number;
  description?: string;
  intendedUse?: string;
  repository: string;
  force: boolean;
  /** A DICOM to run the test inference on instead of the synthetic chest phantom. */
  dicom?: string;
}

export interface ImportPlan {
  manifest: ModelManifest;
  /** What was inferred rather than given, and warnings; printed with the report. */
  notes: string[];
}

const fmtShape = (s: Dim[] | null): string => (s === null ? '(no shape)' : `[${s.map((d) => (d === null ? '?' : d)).join(', ')}]`);
const isSize = (d: Dim): d is number => typeof d === 'number' && d > 0;

/** Every check that needs only the graph's declared interface and the flags; throws ImportError (exit 2). */
export function planManifest(summary: OnnxSummary, opts: ImportOptions, sha256: string, sourceName = 'model.onnx'): ImportPlan {
  const notes: string[] = [];

  // -- input: exactly one float32 NCHW image
  const ins = summary.inputs;
  if (ins.length !== 1) {
    throw new ImportError(
      `the model has ${ins.length} inputs (${ins.map((i) => `'${i.name}'`).join(', ') || 'none'}); a servable segmentation model takes exactly one float32 NCHW image`,
    );
  }
  const input = ins[0]!;
  if (input.dtype !== 'float32') throw new ImportError(`input '${input.name}' is ${input.dtype}, not float32; export the model with a float32 image input`);
  if (input.shape === null || input.shape.length !== 4) {
    throw new ImportError(`input '${input.name}' has shape ${fmtShape(input.shape)}; expected 4 dimensions, NCHW (batch, channels, height, width)`);
  }
  const [inN, inC, inH, inW] = input.shape as [Dim, Dim, Dim, Dim];

  // -- channels and normalisation
  let channels: number;
  if (opts.imagenet) {
    if (opts.channels !== undefined && opts.channels !== 3) throw new ImportError(`--imagenet means 3 input channels; it contradicts --channels ${opts.channels}`);
    if (opts.mean || opts.std) throw new ImportError('--imagenet sets the mean and std; leave out --mean/--std (or --imagenet)');
    if (isSize(inC) && inC !== 3) throw new ImportError(`--imagenet needs a 3-channel input, but input '${input.name}' has ${inC} channel(s) ${fmtShape(input.shape)}`);
    channels = 3;
  } else if (opts.channels !== undefined) {
    if (isSize(inC) && inC !== opts.channels) throw new ImportError(`--channels ${opts.channels} contradicts input '${input.name}', which has ${inC} channel(s) ${fmtShape(input.shape)}`);
    channels = opts.channels;
  } else if (isSize(inC)) {
    channels = inC;
  } else {
    throw new ImportError(`input '${input.name}' has a dynamic channel dimension ${fmtShape(input.shape)}; give it with --channels (or --imagenet)`);
  }
  if (channels > 4) throw new ImportError(`input '${input.name}' has ${channels} channels; a DICOM image can feed 1 to 4 (the grey image is replicated)`);
  const mean = opts.imagenet ? [...IMAGENET.mean] : opts.mean;
  const std = opts.imagenet ? [...IMAGENET.std] : opts.std;
  if ((mean === undefined) !== (std === undefined)) throw new ImportError('--mean and --std go together: give both or neither');
  if (mean && std) {
    if (mean.length !== std.length || (mean.length !== 1 && mean.length !== channels)) {
      throw new ImportError(`--mean has ${mean.length} and --std ${std.length} values; each needs 1 or ${channels} (the input channels)`);
    }
  } else if (channels > 1) {
    notes.push(`${channels}-channel input without --imagenet or --mean/--std: the grey image (0..1) is replicated unnormalised`);
  }

  // -- served spatial size
  let size: Size;
  if (isSize(inH) && isSize(inW)) {
    if (opts.size && (opts.size.height !== inH || opts.size.width !== inW)) {
      throw new ImportError(`--size ${opts.size.height}x${opts.size.width} contradicts input '${input.name}', fixed at ${inH}x${inW} ${fmtShape(input.shape)}`);
    }
    size = { height: inH, width: inW };
  } else if (opts.size) {
    if ((isSize(inH) && inH !== opts.size.height) || (isSize(inW) && inW !== opts.size.width)) {
      throw new ImportError(`--size ${opts.size.height}x${opts.size.width} contradicts input '${input.name}' ${fmtShape(input.shape)}`);
    }
    size = opts.size;
  } else {
    throw new ImportError(`input '${input.name}' has a dynamic spatial size ${fmtShape(input.shape)}; give the size to serve at with --size (e.g. --size 256 or --size 512x512)`);
  }
  if (size.height > 8192 || size.width > 8192) throw new ImportError(`size ${size.height}x${size.width} is larger than 8192`);
  const batch: string | number = isSize(inN) ? inN : typeof inN === 'string' ? inN : 'N';
  if (isSize(inN) && inN !== 1) notes.push(`fixed batch of ${inN}: the engine pads every batch to ${inN} images`);

  // -- output: the segmentation map
  const outs = summary.outputs;
  let output: GraphValue;
  if (opts.output !== undefined) {
    const o = outs.find((v) => v.name === opts.output);
    if (!o) throw new ImportError(`--output '${opts.output}' is not an output of the graph (outputs: ${outs.map((v) => `'${v.name}'`).join(', ')})`);
    output = o;
  } else if (outs.length === 1) {
    output = outs[0]!;
  } else {
    throw new ImportError(`the model has ${outs.length} outputs (${outs.map((v) => `'${v.name}' ${fmtShape(v.shape)}`).join(', ')}); pick the segmentation map with --output NAME`);
  }
  if (output.dtype !== 'float32') throw new ImportError(`output '${output.name}' is ${output.dtype}, not float32`);
  if (output.shape !== null && output.shape.length !== 4) {
    throw new ImportError(`output '${output.name}' has shape ${fmtShape(output.shape)}; expected 4 dimensions, NCHW (batch, classes, height, width)`);
  }
  const [outN, outC, outH, outW] = (output.shape ?? [null, null, null, null]) as [Dim, Dim, Dim, Dim];

  // -- labels: one per output channel
  let labels: string[];
  if (opts.labels) {
    labels = opts.labels;
    if (isSize(outC) && outC !== labels.length) {
      throw new ImportError(`output '${output.name}' has ${outC} channel(s) ${fmtShape(output.shape)} but --labels names ${labels.length} (${labels.join(', ')})`);
    }
  } else if (isSize(outC)) {
    labels = outC === 1 ? ['mask'] : Array.from({ length: outC }, (_, i) => `class${i + 1}`);
  } else {
    throw new ImportError(`output '${output.name}' has a dynamic channel dimension ${fmtShape(output.shape)}; name one label per channel with --labels`);
  }
  const dup = labels.find((l, i) => labels.indexOf(l) !== i);
  if (dup !== undefined) throw new ImportError(`--labels names '${dup}' twice`);

  // -- activation
  const producer = summary.producedBy[output.name];
  let activation: ImportActivation;
  if (opts.activation) {
    activation = opts.activation;
    if (activation === 'logits' && producer === 'Sigmoid') {
      throw new ImportError(`output '${output.name}' comes out of a Sigmoid node, so it is already probabilities; use --activation sigmoid (or leave it out)`);
    }
    if (activation === 'softmax' && producer === 'Softmax') {
      throw new ImportError(`output '${output.name}' comes out of a Softmax node, and --activation softmax would apply it twice; export the logits before the Softmax`);
    }
  } else if (producer === 'Sigmoid') {
    activation = 'sigmoid';
    notes.push(`activation sigmoid: output '${output.name}' comes out of a Sigmoid node`);
  } else if (producer === 'Softmax') {
    throw new ImportError(
      `output '${output.name}' comes out of a Softmax node; export the logits before the Softmax and pass --activation softmax (or --activation sigmoid to threshold each class's probability)`,
    );
  } else {
    activation = 'logits';
    notes.push(`activation logits (default): a sigmoid is applied to output '${output.name}'${producer ? ` (made by ${producer})` : ''}; pass --activation sigmoid if it is already probabilities`);
  }

  let background: string | undefined;
  if (activation === 'softmax') {
    background = opts.background ?? labels[0]!;
    if (!labels.includes(background)) throw new ImportError(`--background '${background}' is not one of the labels (${labels.join(', ')})`);
    if (opts.background === undefined) notes.push(`background: '${background}' (the first channel); pass --background to name another`);
  } else if (opts.background !== undefined) {
    throw new ImportError(`--background is only for --activation softmax`);
  }

  // Output size: fixed dims as declared; dynamic ones are taken to follow the input for now (the
  // onnxruntime probe in importModel replaces them with what the network really returns).
  const outShape: ModelManifest['output']['shape'] = [
    isSize(outN) ? outN : typeof outN === 'string' ? outN : batch,
    labels.length,
    isSize(outH) ? outH : size.height,
    isSize(outW) ? outW : size.width,
  ];

  const preprocessing: PreprocessSpec = {
    size,
    resize: opts.resize,
    intensity: opts.intensity,
    ...(mean && std ? { normalize: { mean, std } } : {}),
    channels,
  };
  const manifest = {
    schemaVersion: 1 as const,
    name: opts.name,
    version: opts.version,
    description: opts.description ?? `Imported from ${sourceName} (${summary.producer}, ONNX opset ${summary.opset}) with npm run import`,
    intendedUse: opts.intendedUse ?? '',
    input: { name: input.name, layout: 'NCHW' as const, dtype: 'float32' as const, shape: [batch, channels, size.height, size.width] as ModelManifest['input']['shape'] },
    output: { name: output.name, activation, shape: outShape },
    preprocessing,
    postprocessing: { threshold: opts.threshold ?? DEFAULT_THRESHOLD, minArea: opts.minArea ?? DEFAULT_MIN_AREA },
    labels,
    ...(background !== undefined ? { background } : {}),
    onnx: { file: 'model.onnx', sha256, ...(summary.opset > 0 ? { opset: summary.opset } : {}) },
    createdAt: new Date().toISOString(),
  };
  try {
    return { manifest: parseManifest(manifest), notes };
  } catch (e) {
    throw new ImportError(oneLine(e));
  }
}

// ---------------------------------------------------------------------------------------------
// Probe, test inference, install

export interface TestInference {
  source: string;
  rows: number;
  columns: number;
  masks: Array<{ label: string; area: number; fraction: number; bbox: [number, number, number, number] | null }>;
  /** Wall time of Engine.segment, and the engine's own split. */
  totalMs: number;
  inferenceMs: number;
  executionProvider: string;
}

export interface ImportReport {
  source: string;
  /** The installed version directory. */
  dir: string;
  files: string[];
  bytes: number;
  manifest: ModelManifest;
  /** The graph's declared input/output shapes (before sizes were filled in). */
  graph: { input: string; output: string; opset: number; producer: string };
  probe: { outputShape: number[] };
  test: TestInference;
  notes: string[];
}

/**
 * Run the model once through onnxruntime on a zero tensor of the served size (batch = the fixed
 * batch, else 1) and settle the output's real H x W (and check C) against the plan.
 */
async function probeOutput(bytes: Uint8Array, manifest: ModelManifest, notes: string[]): Promise<number[]> {
  let session: ort.InferenceSession;
  try {
    ({ session } = await openSession(bytes, { provider: 'cpu', intraOpThreads: 1 }));
  } catch (e) {
    throw new ImportError(`onnxruntime cannot open the model: ${oneLine(e)}`, 1);
  }
  try {
    const [n0, c, h, w] = manifest.input.shape;
    const n = typeof n0 === 'number' ? n0 : 1;
    const feed = { [manifest.input.name]: new ort.Tensor('float32', new Float32Array(n * c * h * w), [n, c, h, w]) };
    let out: ort.Tensor | undefined;
    try {
      out = (await session.run(feed, [manifest.output.name]))[manifest.output.name];
    } catch (e) {
      throw new ImportError(`onnxruntime cannot run the model on a [${n}, ${c}, ${h}, ${w}] input: ${oneLine(e)}`, 1);
    }
    const dims = [...(out?.dims ?? [])];
    if (dims.length !== 4) throw new ImportError(`output '${manifest.output.name}' came back with shape [${dims.join(', ')}]; expected 4 dimensions, NCHW`);
    const [, oc, oh, ow] = dims as [number, number, number, number];
    const [, declaredC, declaredH, declaredW] = manifest.output.shape;
    if (oc !== declaredC) {
      throw new ImportError(`output '${manifest.output.name}' has ${oc} channel(s) at run time ([${dims.join(', ')}]) but ${declaredC} label(s) (${manifest.labels.join(', ')})`);
    }
    if (oh !== declaredH || ow !== declaredW) {
      notes.push(`output size ${oh}x${ow} for a ${h}x${w} input (from the onnxruntime probe); masks are resampled to the image`);
      manifest.output.shape = [manifest.output.shape[0], oc, oh, ow];
    }
    return dims;
  } finally {
    await session.release().catch(() => undefined);
  }
}

async function testDicom(opts: ImportOptions): Promise<{ bytes: Uint8Array; source: string }> {
  if (opts.dicom) {
    try {
      return { bytes: new Uint8Array(await readFile(opts.dicom)), source: opts.dicom };
    } catch (e) {
      throw new ImportError(`cannot read --dicom ${opts.dicom}: ${oneLine(e)}`);
    }
  }
  const d = await chestDicom(TEST_DICOM_SEED, { size: TEST_DICOM_SIZE, transferSyntaxUid: TS.ExplicitVRLittleEndian });
  return { bytes: d.bytes, source: `synthetic chest DICOM (seed ${TEST_DICOM_SEED}, ${TEST_DICOM_SIZE}x${TEST_DICOM_SIZE})` };
}

async function writeVersion(dir: string, manifest: ModelManifest, onnx: Uint8Array): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'model.onnx'), onnx);
  await writeFile(join(dir, 'model.json'), JSON.stringify(manifest, null, 2) + '\n');
}

/** Serve one DICOM through the Engine from a scratch repository holding only this version. */
async function runTestInference(manifest: ModelManifest, onnx: Uint8Array, opts: ImportOptions, logger: pino.Logger): Promise<TestInference> {
  const scratch = await mkdtemp(join(tmpdir(), 'import-model-'));
  try {
    await writeVersion(join(scratch, manifest.name, manifest.version), manifest, onnx);
    const { bytes, source } = await testDicom(opts);
    const engine = await Engine.start({ modelRepository: scratch, provider: 'cpu', workers: 1, intraOpThreads: 0, maxBatch: 1, maxDelayMs: 0, maxQueue: 4 }, logger);
    try {
      const info = engine.model(manifest.name, manifest.version);
      if (!info?.ready) throw new ImportError(`the engine cannot serve the model: ${info?.error ?? 'not loaded'}`, 1);
      const t0 = performance.now();
      let r;
      try {
        r = await engine.segment({ dicom: bytes, model: manifest.name, version: manifest.version });
      } catch (e) {
        throw new ImportError(`test inference on the ${source} failed: ${oneLine(e)}`, opts.dicom ? 2 : 1);
      }
      const totalMs = performance.now() - t0;
      const pixels = r.image.rows * r.image.columns;
      return {
        source,
        rows: r.image.rows,
        columns: r.image.columns,
        masks: r.masks.map((m) => ({ label: m.label, area: m.area, fraction: m.area / pixels, bbox: m.bbox })),
        totalMs,
        inferenceMs: r.timings.inferenceMs,
        executionProvider: r.model.executionProvider,
      };
    } finally {
      await engine.close();
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** The whole import; throws ImportError with a one-line message. */
export async function importModel(file: string, opts: ImportOptions, logger: pino.Logger = pino({ level: 'silent' })): Promise<ImportReport> {
  let onnx: Uint8Array;
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new Error('not a file');
    onnx = new Uint8Array(await readFile(file));
  } catch (e) {
    throw new ImportError(`model file not found or unreadable: ${file}${(e as NodeJS.ErrnoException).code ? ` (${(e as NodeJS.ErrnoException).code})` : ''}`);
  }
  const summary = inspectOnnx(onnx);
  const sha256 = createHash('sha256').update(onnx).digest('hex');
  const { manifest, notes } = planManifest(summary, opts, sha256, basename(file));
  const dir = resolve(opts.repository, opts.name, opts.version);
  if (!opts.force && (await exists(dir))) throw new ImportError(`${dir} already exists; pick another --version or pass --force to replace it`);
  const outputShape = await probeOutput(onnx, manifest, notes);
  const final = parseManifest(manifest); // re-validate after the probe may have changed the output size
  const test = await runTestInference(final, onnx, opts, logger);

  // Install: write beside the destination under a hidden name (the repository ignores dot-dirs), then rename.
  const parent = resolve(opts.repository, opts.name);
  const staging = join(parent, `.${opts.version}.importing-${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  await writeVersion(staging, final, onnx);
  if (await exists(dir)) await rm(dir, { recursive: true, force: true });
  await rename(staging, dir);

  const inp = summary.inputs[0]!;
  const out = summary.outputs.find((o) => o.name === final.output.name)!;
  return {
    source: file,
    dir,
    files: [join(dir, 'model.json'), join(dir, 'model.onnx')],
    bytes: onnx.byteLength,
    manifest: final,
    graph: { input: `${inp.name} ${inp.dtype} ${fmtShape(inp.shape)}`, output: `${out.name} ${out.dtype} ${fmtShape(out.shape)}`, opset: summary.opset, producer: summary.producer },
    probe: { outputShape },
    test,
    notes,
  };
}

// ---------------------------------------------------------------------------------------------
// Printing

function describePreprocessing(p: PreprocessSpec): string {
  const i = p.intensity;
  const intensity =
    i.kind === 'window' ? `window ${i.center}/${i.width}` : i.kind === 'range' ? `range ${i.low}..${i.high}` : i.kind === 'zscore' ? `zscore clip ${i.clip}` : i.kind === 'dicom-window' ? `dicom-window (else ${i.fallback})` : i.kind;
  const steps = [`intensity ${intensity} -> 0..1`, `resize ${p.resize} to ${p.size.height}x${p.size.width}`];
  if (p.normalize) steps.push(`normalize mean [${p.normalize.mean.join(', ')}] std [${p.normalize.std.join(', ')}]`);
  steps.push(p.channels === 1 ? '1 channel' : `grey replicated to ${p.channels} channels`);
  return steps.join(' -> ');
}

export function formatReport(r: ImportReport, cwd = process.cwd()): string {
  const m = r.manifest;
  const rel = (p: string) => {
    const r = relative(cwd, p);
    return r === '' ? '.' : r.startsWith('..') ? p : r;
  };
  const rows: Array<[string, string]> = [
    ['source', `${r.source} (${(r.bytes / 1024).toFixed(1)} KiB, ${r.graph.producer}, opset ${r.graph.opset})`],
    ['sha256', m.onnx.sha256],
    ['input', `${m.input.name}  float32 [${m.input.shape.join(', ')}]  (graph: ${r.graph.input})`],
    ['output', `${m.output.name}  float32 [${m.output.shape.join(', ')}]  activation ${m.output.activation}  (graph: ${r.graph.output})`],
    ['labels', m.labels.join(', ')],
    ['preprocessing', describePreprocessing(m.preprocessing)],
    ['postprocessing', `threshold ${m.postprocessing.threshold}, minArea ${m.postprocessing.minArea}`],
    ['test image', `${r.test.source}: ${r.test.rows}x${r.test.columns}, ${r.test.executionProvider}, ${r.test.totalMs.toFixed(1)} ms (inference ${r.test.inferenceMs.toFixed(1)} ms)`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = [`imported ${r.source} -> ${rel(r.dir)}`, ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)];
  const labelWidth = Math.max(5, ...r.test.masks.map((x) => x.label.length));
  lines.push(`  ${'mask'.padEnd(width)}  ${'label'.padEnd(labelWidth)}  ${'area px'.padStart(8)}  ${'image %'.padStart(7)}  bbox [x, y, w, h]`);
  for (const x of r.test.masks) {
    lines.push(`  ${''.padEnd(width)}  ${x.label.padEnd(labelWidth)}  ${String(x.area).padStart(8)}  ${(100 * x.fraction).toFixed(2).padStart(7)}  ${x.bbox ? `[${x.bbox.join(', ')}]` : '-'}`);
  }
  for (const n of r.notes) lines.push(`  note: ${n}`);
  lines.push(`  wrote ${r.files.map(rel).join(', ')}`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Command line

export function buildProgram(): Command {
  return new Command('import')
    .description('Import an ONNX segmentation model (e.g. a PyTorch export) into the model repository: checks it, writes model.json + model.onnx, serves one test image.')
    .argument('<model.onnx>', 'the ONNX file (single file, weights inside)')
    .requiredOption('--name <name>', 'model name (letters, digits, . _ -)', fromSchema(ModelManifestSchema.shape.name))
    .option('--version <version>', 'model version', fromSchema(ModelManifestSchema.shape.version), '1')
    .option('--labels <a,b,...>', 'one label per output channel (default: mask, or class1..N)', labelList)
    .addOption(
      new Option('--activation <kind>', 'what the output is: logits (sigmoid applied per channel), sigmoid (probabilities), softmax (class logits; default: sigmoid when the graph ends in a Sigmoid node, else logits)').choices(
        IMPORT_ACTIVATIONS,
      ),
    )
    .option('--background <label>', 'softmax models: the background label (default: the first)')
    .option('--imagenet', 'grey DICOM into an RGB ImageNet model: --channels 3, mean 0.485,0.456,0.406, std 0.229,0.224,0.225', false)
    .option('--channels <n>', 'model input channels, 1..4; the grey image is replicated (default: the graph\'s)', int(1, 4))
    .option('--mean <m,...>', 'dataset mean per channel (or one for all), in 0..1 units, subtracted after the intensity mapping', numberList)
    .option('--std <s,...>', 'dataset std per channel (or one for all), in 0..1 units', numberList)
    .addOption(
      new Option('--intensity <mapping>', 'DICOM values -> 0..1: minmax | zscore[:CLIP] | range:LOW:HIGH | window:C:W | dicom-window[:minmax|zscore]')
        .argParser(intensityArg)
        .default({ kind: 'minmax' } satisfies Intensity, 'minmax'),
    )
    .option('--size <HxW>', 'input size to serve at (required when the graph\'s height/width are dynamic): N or HxW', sizeArg)
    .addOption(new Option('--resize <method>', 'resampling to the input size').choices(ResizeMethodSchema.options).default('bilinear'))
    .option('--output <name>', 'the segmentation output, when the graph has several')
    .option('--threshold <p>', `default probability threshold (default ${DEFAULT_THRESHOLD})`, probability)
    .option('--min-area <px>', `default minimum mask area in pixels (default ${DEFAULT_MIN_AREA})`, nonNegativeInt)
    .option('--description <text>', 'manifest description')
    .option('--intended-use <text>', 'manifest intendedUse (shown by GET /models)')
    .option('--repository <dir>', 'model repository root', 'models')
    .option('--dicom <file>', 'run the test inference on this DICOM instead of a synthetic chest phantom')
    .option('--force', 'replace an existing <repository>/<name>/<version>', false)
    .option('--json', 'print the report as JSON', false)
    .option('--verbose', 'engine logs on stderr', false);
}

function oneLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!.trim();
}

export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

const stdio: CliIo = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

/** Run the command; resolves to the exit status (0 imported, 2 refused, 1 failed in the engine). */
export async function main(argv: string[], io: CliIo = stdio): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  program.configureOutput({ writeOut: io.out, writeErr: io.err });
  try {
    program.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    io.err(`error: ${oneLine(e)}\n`);
    return 2;
  }
  const o = program.opts();
  const opts: ImportOptions = {
    name: o.name,
    version: o.version,
    labels: o.labels,
    activation: o.activation,
    background: o.background,
    intensity: o.intensity,
    mean: o.mean,
    std: o.std,
    channels: o.channels,
    imagenet: o.imagenet,
    size: o.size,
    resize: o.resize,
    output: o.output,
    threshold: o.threshold,
    minArea: o.minArea,
    description: o.description,
    intendedUse: o.intendedUse,
    repository: o.repository,
    force: o.force,
    dicom: o.dicom,
  };
  const logger = pino({ level: o.verbose ? 'info' : 'silent' }, pino.destination(2));
  try {
    const report = await importModel(program.args[0]!, opts, logger);
    io.out((o.json ? JSON.stringify(report, null, 2) : formatReport(report)) + '\n');
    return 0;
  } catch (e) {
    io.err(`error: ${oneLine(e)}\n`);
    return e instanceof ImportError ? e.exitCode : 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
