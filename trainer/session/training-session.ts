/**
 * The training engine's public API (used by the trainer shell and, for buildUNetOnnx, the service tests).
 *
 * One Adam step is one onnxruntime run of a single graph (forward with batch-statistics BatchNorm,
 * ComboLoss, reverse-mode gradients, Adam, running-statistic updates). The state (weights, BN stats,
 * Adam moments) lives in two sets of preallocated ORT tensors: each step reads one set and writes the
 * next into the other (pre-allocated fetches), then they swap, so no per-step allocation or copy of the
 * state happens on the JS side. `predict` runs the inference-form forward graph on the live state;
 * `loss` runs the step's objective alone on given logits (the validation loss from predict's logits).
 */
import * as ort from 'onnxruntime-node';
import { pino, type Logger } from 'pino';
import { openSession, type OpenedSession, type Provider } from '../../core/runtime/session.ts';
import type { GradOptions } from '../graph/autodiff.ts';
import { buildInferenceOnnx } from '../model/inference-graph.ts';
import { countTrainable, initUNetParams, validateUNetConfig, type ParamSpec } from '../model/unet.ts';
import { TOTAL } from '../model/loss.ts';
import { lossSet, termValues, termWeightsError } from '../model/loss-set.ts';
import { CheckpointMismatchError } from './checkpoint.ts';
import { buildTrainingGraphs, IO } from './training-graph.ts';
import type { AdamConfig, Checkpoint, CheckpointConfig, StepResult, TrainingSession, TrainingSessionOptions } from './types.ts';

export type {
  AdamConfig,
  Checkpoint,
  CheckpointConfig,
  LossWeights,
  StepResult,
  TrainingSession,
  TrainingSessionOptions,
  UNetConfig,
  UpsampleMode,
} from './types.ts';
export { buildUNetOnnx } from '../model/inference-graph.ts';
export { UNetConfigError } from '../model/unet.ts';
export { serializeCheckpoint, deserializeCheckpoint, CheckpointFormatError, CheckpointMismatchError } from './checkpoint.ts';

export const DEFAULT_ADAM: AdamConfig = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

export class TrainingInputError extends Error {
  override name = 'TrainingInputError';
}

type StateSet = Map<string, ort.Tensor>;

function zeros(dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims as number[]);
}

/** One of the two graphs on core/runtime's opener; a CUDA fallback is logged with its diagnosis. */
async function openGraph(model: Uint8Array, opts: TrainingSessionOptions, log: Logger, what: 'train' | 'predict' | 'loss', provider: Provider): Promise<OpenedSession> {
  const opened = await openSession(model, {
    provider,
    deviceId: opts.deviceId ?? 0,
    intraOpThreads: opts.intraOpThreads ?? 0,
    intraOpSpinning: opts.intraOpSpinning ?? false,
    ...(opts.enableProfiling && what === 'train' ? { profilePrefix: 'unet-train-step' } : {}),
  });
  if (opened.fallbackReason) {
    log.warn({ reason: opened.fallbackReason, deviceId: opts.deviceId ?? 0 }, 'CUDA execution provider unavailable; training on CPU instead');
  }
  return opened;
}

export async function createTrainingSession(opts: TrainingSessionOptions & { grad?: Partial<GradOptions> }): Promise<TrainingSession> {
  const log = opts.logger ?? pino({ name: 'training-session', level: 'info' });
  validateUNetConfig(opts.unet, opts.height, opts.width);
  const set = lossSet(opts.softmax !== undefined);
  const lossError = termWeightsError(set, opts.loss);
  if (lossError) throw new TrainingInputError(lossError);
  if (opts.softmax) {
    const bg = opts.softmax.background;
    if (opts.unet.classes < 2) throw new TrainingInputError(`a softmax model needs at least 2 classes (background + 1), got ${opts.unet.classes}`);
    if (!Number.isInteger(bg) || bg < 0 || bg >= opts.unet.classes) throw new TrainingInputError(`softmax.background must be a class index in 0..${opts.unet.classes - 1}, got ${bg}`);
  }
  if (opts.device !== 'cpu' && opts.device !== 'cuda') throw new TrainingInputError(`device must be 'cpu' or 'cuda', got '${String(opts.device)}'`);
  if (!Number.isInteger(opts.seed)) throw new TrainingInputError(`seed must be an integer, got ${opts.seed}`);
  const adam: AdamConfig = { ...DEFAULT_ADAM, ...(opts.adam ?? {}) };
  if (!(adam.beta1 >= 0 && adam.beta1 < 1 && adam.beta2 >= 0 && adam.beta2 < 1 && adam.eps > 0 && adam.weightDecay >= 0)) {
    throw new TrainingInputError(`invalid Adam config ${JSON.stringify(adam)}`);
  }
  const config: CheckpointConfig = {
    unet: { ...opts.unet },
    height: opts.height,
    width: opts.width,
    loss: { ...opts.loss },
    ...(opts.softmax ? { softmax: { ...opts.softmax } } : {}),
    adam,
    diceSmooth: opts.diceSmooth ?? 1,
  };

  const graphs = buildTrainingGraphs({ ...config, grad: opts.grad });
  const train = await openGraph(graphs.train, opts, log, 'train', opts.device);
  // predict follows whatever the training session got, so a fallback is logged only once.
  const predict = await openGraph(graphs.predict, opts, log, 'predict', train.provider);
  const loss = await openGraph(graphs.loss, opts, log, 'loss', train.provider);
  log.info(
    { executionProvider: train.provider, parameters: countTrainable(opts.unet), height: opts.height, width: opts.width, unet: opts.unet },
    'training session ready',
  );

  return new OrtTrainingSession(config, graphs.specs, graphs.stateNames, train.session, predict.session, loss.session, train.provider, opts.seed, log, opts.enableProfiling ?? false);
}

class OrtTrainingSession implements TrainingSession {
  readonly parameterCount: number;
  private current: StateSet;
  private spare: StateSet;
  private steps = 0;
  private readonly specByName: Map<string, ParamSpec>;
  private readonly lossFetches: Record<string, ort.Tensor>;
  private readonly scalarStepSize = new Float32Array(1);
  private readonly scalarInvBc2 = new Float32Array(1);
  private released = false;
  private fetchMode: 'unknown' | 'inplace' | 'copy' = 'unknown';

  constructor(
    private readonly config: CheckpointConfig,
    private readonly specs: ParamSpec[],
    private readonly stateNames: string[],
    private readonly train: ort.InferenceSession,
    private readonly predictSession: ort.InferenceSession,
    private readonly lossSession: ort.InferenceSession,
    readonly executionProvider: 'cpu' | 'cuda',
    seed: number,
    private readonly log: Logger,
    private readonly profiling: boolean,
  ) {
    this.parameterCount = countTrainable(config.unet);
    this.specByName = new Map(specs.map((s) => [s.name, s]));
    const dimsOf = (name: string) => {
      const base = name.startsWith('adam.') ? name.slice('adam.m.'.length) : name;
      return this.specByName.get(base)!.dims;
    };
    this.current = new Map(stateNames.map((n) => [n, zeros(dimsOf(n))]));
    this.spare = new Map(stateNames.map((n) => [n, zeros(dimsOf(n))]));
    // He-initialised weights from the seed, BN at identity; Adam moments start at zero.
    const init = initUNetParams(config.unet, seed);
    for (const [name, data] of init) (this.current.get(name)!.data as Float32Array).set(data);
    this.lossFetches = Object.fromEntries(IO.losses(config.softmax !== undefined).map((n) => [n, new ort.Tensor('float32', new Float32Array(1), [])]));
  }

  private checkAlive(): void {
    if (this.released) throw new TrainingInputError('training session was released');
  }

  private imageTensor(images: Float32Array, batch: number): ort.Tensor {
    const { inChannels } = this.config.unet;
    const { height, width } = this.config;
    if (!Number.isInteger(batch) || batch < 1) throw new TrainingInputError(`batch must be a positive integer, got ${batch}`);
    const want = batch * inChannels * height * width;
    if (!(images instanceof Float32Array) || images.length !== want) {
      throw new TrainingInputError(`images must be a Float32Array of ${batch}x${inChannels}x${height}x${width} = ${want} values, got ${images?.length}`);
    }
    return new ort.Tensor('float32', images, [batch, inChannels, height, width]);
  }

  /** N x classes x H x W: masks (what) or logits. */
  private outputTensor(data: Float32Array, batch: number, what: 'masks' | 'logits'): ort.Tensor {
    const { classes } = this.config.unet;
    const { height, width } = this.config;
    if (!Number.isInteger(batch) || batch < 1) throw new TrainingInputError(`batch must be a positive integer, got ${batch}`);
    const want = batch * classes * height * width;
    if (!(data instanceof Float32Array) || data.length !== want) {
      throw new TrainingInputError(`${what} must be a Float32Array of ${batch}x${classes}x${height}x${width} = ${want} values, got ${data?.length}`);
    }
    return new ort.Tensor('float32', data, [batch, classes, height, width]);
  }

  async step(images: Float32Array, masks: Float32Array, batch: number, lr: number): Promise<StepResult> {
    this.checkAlive();
    const image = this.imageTensor(images, batch);
    const mask = this.outputTensor(masks, batch, 'masks');
    const { height, width } = this.config;
    if (!(Number.isFinite(lr) && lr >= 0)) throw new TrainingInputError(`lr must be a finite number >= 0, got ${lr}`);
    // BatchNorm statistics over a single pixel are degenerate (variance 0).
    if (batch * height * width < 2) throw new TrainingInputError('a training batch needs at least 2 pixels per channel');

    const t = this.steps + 1;
    const { beta1, beta2 } = this.config.adam;
    this.scalarStepSize[0] = lr / (1 - beta1 ** t);
    this.scalarInvBc2[0] = 1 / Math.sqrt(1 - beta2 ** t);
    const feeds: Record<string, ort.Tensor> = {
      [IO.image]: image,
      [IO.mask]: mask,
      [IO.stepSize]: new ort.Tensor('float32', this.scalarStepSize, []),
      [IO.invSqrtBc2]: new ort.Tensor('float32', this.scalarInvBc2, []),
    };
    for (const [name, tensor] of this.current) feeds[name] = tensor;
    const fetches: Record<string, ort.Tensor> = { ...this.lossFetches };
    for (const [name, tensor] of this.spare) fetches[IO.next(name)] = tensor;
    const out = await this.train.run(feeds, fetches);
    const read = (n: string) => Number((out[n] ?? this.lossFetches[n]!).data[0]);
    const result: StepResult = { loss: read(TOTAL), ...termValues(lossSet(this.config.softmax !== undefined), read) };
    if (!Number.isFinite(result.loss)) {
      // Keep the last good state: a NaN step must not poison the weights.
      this.log.error({ step: t, ...result }, 'non-finite loss; state not updated');
      return result;
    }
    // onnxruntime-node writes into the pre-allocated fetch buffers and also returns its own copies.
    // Check once that the buffers really were written; if not, copy from the returned tensors.
    if (this.fetchMode === 'unknown') this.fetchMode = this.buffersWritten(out) ? 'inplace' : 'copy';
    if (this.fetchMode === 'copy') {
      for (const [name, tensor] of this.spare) (tensor.data as Float32Array).set(out[IO.next(name)]!.data as Float32Array);
    }
    [this.current, this.spare] = [this.spare, this.current];
    this.steps = t;
    return result;
  }

  private buffersWritten(out: Record<string, ort.OnnxValue>): boolean {
    for (const [name, tensor] of this.spare) {
      const got = out[IO.next(name)]?.data as Float32Array | undefined;
      const mine = tensor.data as Float32Array;
      if (!got || got.length !== mine.length) return false;
      if (got === mine) continue;
      for (let i = 0; i < mine.length; i++) if (!Object.is(got[i], mine[i])) return false;
    }
    return true;
  }

  async predict(images: Float32Array, batch: number): Promise<Float32Array> {
    this.checkAlive();
    const feeds: Record<string, ort.Tensor> = { [IO.image]: this.imageTensor(images, batch) };
    for (const s of this.specs) feeds[s.name] = this.current.get(s.name)!;
    const out = await this.predictSession.run(feeds, [IO.predictLogits]);
    return out[IO.predictLogits]!.data as Float32Array;
  }

  async loss(logits: Float32Array, masks: Float32Array, batch: number): Promise<StepResult> {
    this.checkAlive();
    const feeds = { [IO.lossLogits]: this.outputTensor(logits, batch, 'logits'), [IO.mask]: this.outputTensor(masks, batch, 'masks') };
    const names = IO.losses(this.config.softmax !== undefined);
    const out = await this.lossSession.run(feeds, names);
    const read = (n: string) => Number(out[n]!.data[0]);
    return { loss: read(TOTAL), ...termValues(lossSet(this.config.softmax !== undefined), read) };
  }

  private tensorsByName(names: Iterable<string>): Map<string, Float32Array> {
    return new Map([...names].map((n) => [n, this.current.get(n)!.data as Float32Array]));
  }

  checkpoint(): Checkpoint {
    this.checkAlive();
    const tensors: Checkpoint['tensors'] = {};
    for (const name of this.stateNames) {
      const t = this.current.get(name)!;
      tensors[name] = { dims: [...t.dims], data: (t.data as Float32Array).slice() };
    }
    return { format: 'unet-checkpoint-v1', config: structuredClone(this.config), step: this.steps, tensors };
  }

  restore(ckpt: Checkpoint): void {
    this.checkAlive();
    if (!ckpt || ckpt.format !== 'unet-checkpoint-v1') throw new CheckpointMismatchError(`unknown checkpoint format '${String(ckpt?.format)}'`);
    const mine = this.config;
    const theirs = ckpt.config;
    const diffs: string[] = [];
    for (const k of ['depth', 'baseChannels', 'inChannels', 'classes', 'upsample'] as const) {
      if (theirs?.unet?.[k] !== mine.unet[k]) diffs.push(`unet.${k}: checkpoint ${String(theirs?.unet?.[k])}, session ${mine.unet[k]}`);
    }
    if (theirs?.height !== mine.height || theirs?.width !== mine.width) {
      diffs.push(`input size: checkpoint ${theirs?.height}x${theirs?.width}, session ${mine.height}x${mine.width}`);
    }
    if (JSON.stringify(theirs?.softmax ?? null) !== JSON.stringify(mine.softmax ?? null)) {
      diffs.push(`objective: checkpoint ${theirs?.softmax ? `softmax (background ${theirs.softmax.background})` : 'sigmoid'}, session ${mine.softmax ? `softmax (background ${mine.softmax.background})` : 'sigmoid'}`);
    }
    if (diffs.length) throw new CheckpointMismatchError(`checkpoint does not fit this session: ${diffs.join('; ')}`);
    if (JSON.stringify(theirs.loss) !== JSON.stringify(mine.loss) || JSON.stringify(theirs.adam) !== JSON.stringify(mine.adam)) {
      // Resuming with other loss weights or Adam settings is legitimate (fine-tuning); make it visible.
      this.log.warn({ checkpoint: { loss: theirs.loss, adam: theirs.adam }, session: { loss: mine.loss, adam: mine.adam } }, 'checkpoint was trained with other loss/Adam settings');
    }
    for (const name of this.stateNames) {
      const t = ckpt.tensors[name];
      const dst = this.current.get(name)!;
      if (!t) throw new CheckpointMismatchError(`checkpoint lacks tensor ${name}`);
      if (t.dims.length !== dst.dims.length || t.dims.some((d, i) => d !== dst.dims[i]) || t.data.length !== dst.data.length) {
        throw new CheckpointMismatchError(`tensor ${name}: checkpoint dims [${t.dims}], session [${dst.dims}]`);
      }
    }
    if (!Number.isInteger(ckpt.step) || ckpt.step < 0) throw new CheckpointMismatchError(`bad checkpoint step ${ckpt.step}`);
    for (const name of this.stateNames) (this.current.get(name)!.data as Float32Array).set(ckpt.tensors[name]!.data);
    this.steps = ckpt.step;
  }

  exportOnnx(opts: { foldBatchNorm?: boolean } = {}): Uint8Array {
    this.checkAlive();
    return buildInferenceOnnx(this.config.unet, this.config.height, this.config.width, this.tensorsByName(this.specs.map((s) => s.name)), {
      foldBatchNorm: opts.foldBatchNorm ?? false,
      metadata: { trainingSteps: String(this.steps) },
    });
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.profiling) {
      this.train.endProfiling();
      this.log.info('ORT profile written (unet-train-step_*.json in the working directory)');
    }
    await this.train.release();
    await this.predictSession.release();
    await this.lossSession.release();
  }
}
