/**
 * The model registry: which versions the repository holds, which are loaded on the workers, which one
 * each model serves by default, and how many requests hold each loaded version (a retired version is
 * unloaded when its last request finishes). It knows nothing about requests beyond resolving a
 * `model[:version]` to a loaded version; the segment pipeline (pipeline.ts) does the rest.
 */
import type { Logger } from 'pino';
import type { ModelManifest } from '../manifest.ts';
import type { Provider } from '../runtime/session.ts';
import type { EngineConfig } from './config.ts';
import { DeadlineExceededError, ModelInvalidError, ModelNotFoundError, NotReadyError, WorkerCrashedError } from './errors.ts';
import { compareVersions, listRepository, modelKey, readManifest, readModelVersion, type ModelVersionEntry } from './repository.ts';
import type { LoadMsg, LoadResult } from './worker-protocol.ts';
import type { PoolWorker, WorkerPool } from './worker-pool.ts';

/**
 * One model's serving state (its default version, or the version asked for):
 * - `ready`: loaded on the workers and at least one worker is live;
 * - `unavailable`: loaded, but no worker is live right now (transient: 503 + Retry-After);
 * - `not-loaded`: a valid older version, loaded on its first request;
 * - `invalid`: cannot be served as the repository holds it (manifest, checksum, graph; `error` says
 *   which): a request for it fails with ModelInvalidError (409) until the files are fixed and reloaded.
 */
export type ModelStatus = 'ready' | 'unavailable' | 'not-loaded' | 'invalid';

export interface ModelInfo {
  name: string;
  version: string;
  versions: string[];
  manifest: ModelManifest;
  executionProvider: 'cpu' | 'cuda' | null;
  ready: boolean;
  status: ModelStatus;
  loadedAt: string;
  /** sha256 of the weights the workers hold (verified against the manifest when read); null when not loaded. */
  sha256: string | null;
  error?: string;
}

/**
 * A version whose manifest itself cannot be read or validated: listed (by `listing()`) with its
 * error, but with no manifest. `models()`/`model()` keep returning ModelInfo with a manifest.
 */
export type InvalidModelInfo = Omit<ModelInfo, 'manifest'> & { manifest: null; status: 'invalid'; ready: false; error: string };

/** Every model as `listing()` shows it: served or not, valid manifest or not. */
export type ModelListing = ModelInfo | InvalidModelInfo;

export interface ReloadResult {
  /** `name:version` of every version newly loaded (or reloaded because its files changed). */
  loaded: string[];
  failed: Array<{ model: string; error: string }>;
  /** `name:version` of versions no longer served (superseded or gone from the repository). */
  removed: string[];
}

export interface LoadedModel {
  entry: ModelVersionEntry;
  provider: Provider;
  loadedAt: string;
  /** Requests holding this version (a retired version is unloaded when this reaches 0). */
  refs: number;
  retired: boolean;
  maxBatch: number;
}

interface ModelState {
  name: string;
  versions: string[];
  /** Key of the version served by default. */
  current?: string;
  /** Last failure to load a version of this model (the newest one that was tried). */
  error?: string;
  /** Every version's manifest that parsed at the last scan (for listings of versions not loaded). */
  manifests: Map<string, ModelManifest>;
  /**
   * Why a version could not be served, since the last scan: `permanent` for faults of the files
   * (ModelInvalidError and the like: asking for it is a 409 until fixed and reloaded), otherwise a
   * transient one (no worker, a deadline) that the next attempt retries.
   */
  failures: Map<string, { error: string; permanent: boolean }>;
}

const hasManifest = (m: ModelListing): m is ModelInfo => m.manifest !== null;

/** A failure that will not go away by retrying (the files are at fault), as opposed to the moment. */
function isPermanent(e: unknown): boolean {
  return !(e instanceof NotReadyError || e instanceof WorkerCrashedError || e instanceof DeadlineExceededError);
}

/** A request's model, resolved: a version only when the request named one. */
export interface ModelChoice {
  name: string;
  version?: string;
}

const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class ModelRegistry {
  private pool!: WorkerPool;
  private readonly state = new Map<string, ModelState>();
  private readonly loaded = new Map<string, LoadedModel>();
  private readonly loading = new Map<string, Promise<LoadedModel>>();
  /** Which keys each live worker holds, so a worker started mid-load still gets every model. */
  private readonly workerModels = new WeakMap<PoolWorker, Set<string>>();
  private reloadChain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly cfg: Pick<EngineConfig, 'modelRepository' | 'defaultModel' | 'maxBatch' | 'deviceId' | 'provider'> & Partial<Pick<EngineConfig, 'models'>>,
    private readonly logger: Logger,
  ) {}

  /** The pool whose workers hold the sessions (started with `initWorker` as its init hook). */
  attach(pool: WorkerPool): void {
    this.pool = pool;
  }

  // ---------------------------------------------------------------- listing

  /** Keys of the versions served by default, one per model that has one. */
  served(): string[] {
    return [...this.state.values()].flatMap((s) => (s.current ? [s.current] : []));
  }

  /** Every model of the repository (or of EngineConfig.models), including those whose manifest is invalid. */
  listing(): ModelListing[] {
    const out: ModelListing[] = [];
    for (const s of this.state.values()) {
      const info = this.infoFor(s, this.currentVersion(s));
      if (info) out.push(info);
    }
    return out;
  }

  /** As listing(), less the versions with no valid manifest. */
  models(): ModelInfo[] {
    return this.listing().filter(hasManifest);
  }

  /** One model (its default version, or `version`), whatever its state; undefined when unknown. */
  describe(name: string, version?: string): ModelListing | undefined {
    const s = this.state.get(name);
    if (!s) return undefined;
    if (version !== undefined && !s.versions.includes(version)) return undefined;
    return this.infoFor(s, version ?? this.currentVersion(s));
  }

  model(name: string, version?: string): ModelInfo | undefined {
    const info = this.describe(name, version);
    return info && hasManifest(info) ? info : undefined;
  }

  defaultModelName(): string | undefined {
    if (this.cfg.defaultModel) return this.state.has(this.cfg.defaultModel) ? this.cfg.defaultModel : undefined;
    const states = [...this.state.values()];
    return (states.find((s) => s.current) ?? states[0])?.name;
  }

  private currentVersion(s: ModelState): string | undefined {
    return s.current ? this.loaded.get(s.current)!.entry.version : undefined;
  }

  private infoFor(s: ModelState, version: string | undefined): ModelListing | undefined {
    const lm = version !== undefined ? this.loaded.get(modelKey(s.name, version)) : undefined;
    if (lm) {
      const live = this.pool.liveCount() > 0;
      const info: ModelInfo = {
        name: s.name,
        version: lm.entry.version,
        versions: [...s.versions],
        manifest: lm.entry.manifest,
        executionProvider: lm.provider,
        ready: live,
        status: live ? 'ready' : 'unavailable',
        loadedAt: lm.loadedAt,
        sha256: lm.entry.sha256,
      };
      // The served version's own files failing a re-check (e.g. swapped on disk) is named here too:
      // it keeps serving the bytes verified when they were loaded.
      const own = s.failures.get(lm.entry.version);
      if (s.current === lm.entry.key && (s.error || own)) info.error = own ? `${own.error} (still serving the weights verified at ${lm.loadedAt}, sha256 ${lm.entry.sha256.slice(0, 12)}…)` : s.error;
      return info;
    }
    // Not loaded: a model none of whose versions loads (shown by its newest version, even one whose
    // manifest does not parse), or an older version that is loaded on its first request.
    const v = version ?? s.versions.at(-1);
    if (v === undefined) return undefined;
    const failure = s.failures.get(v);
    const manifest = s.manifests.get(v);
    const common = { name: s.name, version: v, versions: [...s.versions], executionProvider: null, ready: false as const, loadedAt: '', sha256: null };
    if (!manifest) return { ...common, manifest: null, status: 'invalid', error: failure?.error ?? `${modelKey(s.name, v)}: no valid manifest` };
    const info: ModelInfo = { ...common, manifest, status: failure?.permanent ? 'invalid' : s.current ? 'not-loaded' : 'unavailable' };
    if (failure) info.error = failure.error;
    else if (!s.current && s.error) info.error = s.error;
    else if (s.current) info.error = 'not loaded; loads on its first request';
    return info;
  }

  // ---------------------------------------------------------------- requests

  /** The model a request names (or the default); ModelNotFoundError / NotReadyError when there is none to serve. */
  resolve(model: string | undefined, version: string | undefined): ModelChoice {
    const name = model ?? this.defaultModelName();
    if (!name) throw new ModelNotFoundError(model ?? '(default)', undefined, 'the repository holds no model');
    const s = this.state.get(name);
    if (!s) throw new ModelNotFoundError(name, version);
    if (version !== undefined) {
      if (!s.versions.includes(version)) throw new ModelNotFoundError(name, version, `available versions: ${s.versions.join(', ')}`);
      const f = s.failures.get(version);
      // Known broken (and not merely loaded from before its files were swapped): say why, 409.
      if (f?.permanent && !this.loaded.has(modelKey(name, version))) throw new ModelInvalidError(modelKey(name, version), f.error, s.manifests.get(version));
      return { name, version };
    }
    if (!s.current) {
      const failures = [...s.failures.values()];
      // Every version is broken on disk: a 409 naming the newest failure; otherwise not ready (503).
      if (failures.length > 0 && failures.length >= s.versions.length && failures.every((f) => f.permanent)) {
        throw new ModelInvalidError(name, `model ${name} cannot be served: ${s.error ?? failures[0]!.error}`);
      }
      throw new NotReadyError(`model ${name} is not ready${s.error ? `: ${s.error}` : ''}`);
    }
    return { name };
  }

  /** The version a model serves by default, when the choice named none (resolve() saw that it exists). */
  current(choice: ModelChoice): LoadedModel | undefined {
    return choice.version === undefined ? this.loaded.get(this.state.get(choice.name)!.current!) : undefined;
  }

  get(key: string): LoadedModel | undefined {
    return this.loaded.get(key);
  }

  /** Hold `lm` for one request (it stays loaded, even if retired, until released). */
  acquire(lm: LoadedModel): void {
    lm.refs++;
  }

  release(lm: LoadedModel): void {
    lm.refs--;
    if (lm.retired && lm.refs === 0 && this.loaded.get(lm.entry.key) === lm) this.unload(lm.entry.key);
  }

  /** Load a version once even if many requests ask for it at the same time. */
  ensureLoaded(name: string, version: string): Promise<LoadedModel> {
    const key = modelKey(name, version);
    const have = this.loaded.get(key);
    if (have && !have.retired) return Promise.resolve(have);
    let p = this.loading.get(key);
    if (!p) {
      p = readModelVersion(this.cfg.modelRepository, name, version)
        .then((entry) => this.loadVersion(entry))
        .then(
          (lm) => {
            this.state.get(name)?.failures.delete(version);
            return lm;
          },
          (e: unknown) => {
            // Remembered (listed with the version, and a fast 409 next time when the files are at fault).
            this.state.get(name)?.failures.set(version, { error: e instanceof ModelInvalidError && e.message.startsWith(key) ? e.message : `${key}: ${msg(e)}`, permanent: isPermanent(e) });
            throw e;
          },
        )
        .finally(() => this.loading.delete(key));
      this.loading.set(key, p);
    }
    return p;
  }

  // ---------------------------------------------------------------- loading

  private loadMsg(lm: { entry: ModelVersionEntry; maxBatch: number }): LoadMsg {
    // cuDNN picks convolution algorithms per input shape on first use (seconds on a GPU), and dynamic
    // batching produces every size from 1 to maxBatch: warm them all before ready. On CPU the first run
    // at a new size is cheap, so the two ends suffice.
    const warmupBatches = this.cfg.provider === 'cuda' ? Array.from({ length: lm.maxBatch }, (_, i) => i + 1) : [1, lm.maxBatch];
    return { type: 'load', key: lm.entry.key, onnx: lm.entry.onnx, sha256: lm.entry.sha256, manifest: lm.entry.manifest, warmupBatches };
  }

  /** A new (or replacement) worker loads every model currently served before taking requests. */
  async initWorker(w: PoolWorker): Promise<void> {
    const held = new Set<string>();
    this.workerModels.set(w, held);
    for (const lm of this.loaded.values()) {
      if (lm.retired) continue;
      await w.call<LoadResult>(this.loadMsg(lm));
      held.add(lm.entry.key);
    }
  }

  private batchLimit(manifest: ModelManifest): number {
    const n = manifest.input.shape[0];
    return typeof n === 'number' ? n : this.cfg.maxBatch;
  }

  /** Load (or reload) one version on every worker; on any failure, nothing changes for that key. */
  private async loadVersion(entry: ModelVersionEntry): Promise<LoadedModel> {
    const maxBatch = this.batchLimit(entry.manifest);
    const r = await this.loadOnWorkers(entry, this.loadMsg({ entry, maxBatch }));
    if (r.fallbackReason) {
      this.logger.warn({ model: entry.key, requested: 'cuda', deviceId: this.cfg.deviceId, reason: r.fallbackReason }, `CUDA unavailable for ${entry.key}; running on CPU`);
    }
    this.logger.info({ model: entry.key, provider: r.provider, loadMs: Math.round(r.loadMs), warmupMs: Math.round(r.warmupMs), maxBatch }, 'model loaded');
    const fresh = { entry, provider: r.provider, loadedAt: new Date().toISOString(), retired: false, maxBatch };
    // Reloaded in place: keep the same record, so requests still holding it count against it.
    const prev = this.loaded.get(entry.key);
    if (prev) return Object.assign(prev, fresh);
    const lm: LoadedModel = { ...fresh, refs: 0 };
    this.loaded.set(entry.key, lm);
    return lm;
  }

  /** Send `message` to every worker (including ones started meanwhile); the first worker's answer. */
  private async loadOnWorkers(entry: ModelVersionEntry, message: LoadMsg): Promise<LoadResult> {
    const done = new Set<PoolWorker>();
    const results: LoadResult[] = [];
    try {
      // Workers started while this runs are caught by the second pass.
      for (let pass = 0; pass < 3; pass++) {
        const todo = this.pool.members().filter((w) => !done.has(w));
        if (todo.length === 0) break;
        const rs = await Promise.all(todo.map((w) => w.call<LoadResult>(message)));
        todo.forEach((w) => {
          done.add(w);
          this.workerModels.get(w)?.add(entry.key);
        });
        results.push(...rs);
      }
      if (results.length === 0) throw new NotReadyError(`${entry.key}: no inference worker is running`);
      const odd = results.find((r) => r.sha256 !== entry.sha256);
      if (odd) throw new ModelInvalidError(entry.key, `${entry.key}: a worker opened weights with sha256 ${odd.sha256.slice(0, 12)}…, not the verified ${entry.sha256.slice(0, 12)}…`);
    } catch (e) {
      // Keep a previously loaded session of this key only where the workers still hold it.
      if (!this.loaded.has(entry.key)) {
        await Promise.allSettled([...done].map((w) => w.call({ type: 'unload', key: entry.key })));
      }
      throw e;
    }
    return results[0]!;
  }

  private retire(key: string): void {
    const lm = this.loaded.get(key);
    if (!lm) return;
    lm.retired = true;
    if (lm.refs === 0) this.unload(key);
  }

  private unload(key: string): void {
    this.loaded.delete(key);
    for (const w of this.pool.members()) this.workerModels.get(w)?.delete(key);
    this.pool.broadcast({ type: 'unload', key }).catch((e) => this.logger.warn({ model: key, err: msg(e) }, 'unload failed'));
  }

  // ---------------------------------------------------------------- reload

  /**
   * Re-scan the repository. For each model, versions newer than the served one are tried newest first;
   * the first that validates and loads becomes the default, otherwise the served one stays. A served
   * version whose files changed is reloaded in place (kept if the new files fail). Models gone from the
   * repository are unloaded once their requests finish.
   */
  reload(): Promise<ReloadResult> {
    const run = this.reloadChain.then(() => this.reloadNow());
    this.reloadChain = run.catch(() => {});
    return run;
  }

  private async reloadNow(): Promise<ReloadResult> {
    const out: ReloadResult = { loaded: [], failed: [], removed: [] };
    const listing = await listRepository(this.cfg.modelRepository);
    // EngineConfig.models: only the models named are loaded and served (the CLI's --model).
    const only = this.cfg.models;
    if (only) for (const name of [...listing.keys()]) if (!only.includes(name)) listing.delete(name);
    for (const [name, versions] of listing) await this.rescanModel(name, versions, out);
    this.retireGone(listing, out);
    return out;
  }

  /** One model's versions at a re-scan: refresh its manifests, then choose (and load) its default. */
  private async rescanModel(name: string, versions: string[], out: ReloadResult): Promise<void> {
    let s = this.state.get(name);
    if (!s) this.state.set(name, (s = { name, versions, manifests: new Map(), failures: new Map() }));
    s.versions = versions;
    s.manifests = new Map();
    s.failures = new Map();
    for (const v of versions) {
      try {
        s.manifests.set(v, await readManifest(this.cfg.modelRepository, name, v));
      } catch (e) {
        // A version whose manifest does not validate is still listed, with why.
        s.failures.set(v, { error: msg(e), permanent: true });
      }
    }
    const previous = s.current ? this.loaded.get(s.current) : undefined;
    // A served version whose directory is gone cannot stay the default.
    const current = previous && versions.includes(previous.entry.version) ? previous : undefined;
    const { chosen, firstError } = await this.chooseVersion(s, versions, current, out);
    s.error = firstError;
    if (s.current && s.current !== chosen?.entry.key) {
      out.removed.push(s.current);
      this.retire(s.current);
    }
    s.current = chosen?.entry.key;
  }

  /** Newest first, down to the served one: the first version that loads (or the served one, unchanged). */
  private async chooseVersion(
    s: ModelState,
    versions: string[],
    current: LoadedModel | undefined,
    out: ReloadResult,
  ): Promise<{ chosen: LoadedModel | undefined; firstError: string | undefined }> {
    const name = s.name;
    let firstError: string | undefined;
    for (const v of [...versions].reverse()) {
      const key = modelKey(name, v);
      if (current && compareVersions(v, current.entry.version) < 0) break;
      try {
        const entry = await readModelVersion(this.cfg.modelRepository, name, v);
        // Compare the file as it is now with the weights actually loaded (not the manifests): a file
        // changed in place and verified by a new manifest loads; the same bytes need nothing.
        if (current && key === current.entry.key && entry.sha256 === current.entry.sha256) return { chosen: current, firstError };
        const lm = this.loaded.get(key);
        const reuse = lm !== undefined && !lm.retired && lm.entry.sha256 === entry.sha256;
        const chosen = reuse ? lm : await this.loadVersion(entry);
        // Reported also when reloaded in place (loadVersion keeps the same record for its holders).
        if (!reuse) out.loaded.push(key);
        return { chosen, firstError };
      } catch (e) {
        const m = e instanceof ModelInvalidError && e.message.startsWith(key) ? e.message : `${key}: ${msg(e)}`;
        firstError ??= m;
        s.failures.set(v, { error: m, permanent: isPermanent(e) });
        out.failed.push({ model: key, error: m });
        this.logger.error({ model: key, err: m }, 'model version cannot be served');
      }
    }
    return { chosen: current, firstError };
  }

  /** Retire models whose directory disappeared, and on-demand versions whose directory did. */
  private retireGone(listing: Map<string, string[]>, out: ReloadResult): void {
    for (const [name] of [...this.state]) {
      if (listing.has(name)) continue;
      for (const [key, lm] of [...this.loaded]) {
        if (lm.entry.name !== name || lm.retired) continue;
        out.removed.push(key);
        this.retire(key);
      }
      this.state.delete(name);
    }
    for (const [key, lm] of [...this.loaded]) {
      const s = this.state.get(lm.entry.name);
      if (s && !s.versions.includes(lm.entry.version) && !lm.retired) {
        out.removed.push(key);
        this.retire(key);
      }
    }
  }
}
