/**
 * Shared pieces of the service integration tests: model repositories, test DICOMs, an in-process
 * server on an ephemeral port (real HTTP), the real `npm start` process, and a throwaway redis-server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { newUid, writeDicom, type DicomWriteInput } from '../../core/dicom/write.ts';
import { createMask, type Mask } from '../../core/mask.ts';
import { loadConfig } from '../../services/config.ts';
import { startService, type Service } from '../../services/server.ts';
import { makeModelRepository, type FixtureModel } from '../helpers/model-fixture.ts';
import { freePort } from '../helpers/net.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export async function tempDir(prefix: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `unetseg-${prefix}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A small model: fast enough that most tests spend their time in HTTP, not ORT. */
export const SMALL_MODEL: FixtureModel = { name: 'tiny', version: '1', size: 64, depth: 2, baseChannels: 4, seed: 7 };

export async function modelRepository(models: FixtureModel[] = [SMALL_MODEL]): Promise<{ dir: string; remove: () => Promise<void> }> {
  const t = await tempDir('models');
  await makeModelRepository(t.dir, models);
  return t;
}

/** A 16-bit MONOCHROME2 image: a smooth background with a bright disc, so masks are not trivially empty. */
export function testDicom(opts: Partial<DicomWriteInput> & { rows?: number; columns?: number } = {}): Uint8Array {
  const rows = opts.rows ?? 96;
  const columns = opts.columns ?? 80;
  const px = new Uint16Array(rows * columns);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < columns; x++) {
      const d = Math.hypot(y - rows * 0.45, x - columns * 0.55);
      px[y * columns + x] = 200 + Math.round((x * 800) / columns) + (d < Math.min(rows, columns) * 0.25 ? 2500 : 0);
    }
  }
  return writeDicom({
    rows,
    columns,
    bitsAllocated: 16,
    bitsStored: 12,
    pixelRepresentation: 0,
    photometricInterpretation: 'MONOCHROME2',
    pixels: px,
    sopInstanceUid: newUid(),
    modality: 'DX',
    windowCenter: 1600,
    windowWidth: 3200,
    ...opts,
  });
}

/** A simple ground truth at rows x columns: the same disc testDicom draws. */
export function discMask(rows: number, columns: number): Mask {
  const m = createMask(rows, columns);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < columns; x++) if (Math.hypot(y - rows * 0.45, x - columns * 0.55) < Math.min(rows, columns) * 0.25) m.data[y * columns + x] = 1;
  }
  return m;
}

/** Captures every log line the service writes, to assert what is (not) in it. */
export function captureLogger(level = 'trace') {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { logger: pino({ level }, stream), lines, text: () => lines.join('') };
}

export interface InProcess {
  service: Service;
  url: string;
  close: () => Promise<void>;
}

/**
 * The real service (real Engine, real Fastify listener on 127.0.0.1:<ephemeral>) in this process.
 * Resolves once the engine has started so tests can segment at once.
 */
export async function startInProcess(env: Record<string, string>, opts: { logger?: pino.Logger; waitEngine?: boolean } = {}): Promise<InProcess> {
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', WORKERS: '1', INTRA_OP_THREADS: '1', MAX_BATCH_DELAY_MS: '2', ...env });
  const service = await startService(config, opts.logger ? { logger: opts.logger } : {});
  if (opts.waitEngine !== false) await service.engineStarted;
  const url = service.url.replace('[::1]', '127.0.0.1');
  return {
    service,
    url,
    close: async () => {
      await service.shutdown(20_000).catch(() => undefined);
    },
  };
}

export interface Spawned {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `node --import tsx services/main.ts` as `npm start` runs it, on a free port; resolves once /livez answers. */
export async function spawnServer(env: Record<string, string>, opts: { timeoutMs?: number } = {}): Promise<Spawned> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/main.ts'], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (err += String(d)));
  let exited = false;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      exited = true;
      resolve({ code, signal });
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const end = Date.now() + (opts.timeoutMs ?? 20_000);
  for (;;) {
    if (exited) throw new Error(`server exited before listening\nstdout:\n${out}\nstderr:\n${err}`);
    const up = await fetch(`${url}/livez`).then(
      (r) => r.arrayBuffer().then(() => r.status === 200),
      () => false,
    );
    if (up) break;
    if (Date.now() > end) {
      child.kill('SIGKILL');
      throw new Error(`server did not listen within ${opts.timeoutMs ?? 20_000} ms\nstdout:\n${out}\nstderr:\n${err}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, url, stdout: () => out, stderr: () => err, exit };
}

/** Polls GET path until it answers `status` (default 200). */
export async function waitFor(url: string, path = '/readyz', status = 200, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(url + path);
      await r.arrayBuffer();
      if (r.status === status) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > end) throw new Error(`${path} did not answer ${status} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export { freePort } from '../helpers/net.ts';

/**
 * redis-server (no persistence) on `port` with its files in `dir`, resolved once it accepts
 * connections; rejected if it exits first or is not ready in 10 s. Restarting one on the same port
 * and dir is how the outage tests bring it back.
 */
export async function redisOn(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${out}`)), 10_000);
    child.on('exit', (code) => reject(new Error(`redis-server exited with ${code}:\n${out}`)));
    const check = () => {
      if (/Ready to accept connections/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
  });
  return child;
}

/** A throwaway redis-server (no persistence) in a temp dir; `stop` kills it and removes the dir. */
export async function startRedis(): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = await freePort();
  const t = await tempDir('redis');
  const child = await redisOn(port, t.dir);
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await t.remove();
    },
  };
}

/** POST a DICOM as application/dicom. */
export function postDicom(url: string, dicom: Uint8Array, query = '', headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/segment${query}`, { method: 'POST', headers: { 'content-type': 'application/dicom', ...headers }, body: dicom });
}

/** POST a DICOM with form fields as multipart/form-data. */
export function postMultipart(url: string, dicom: Uint8Array, fields: Record<string, string>, query = ''): Promise<Response> {
  const form = new FormData();
  form.append('file', new Blob([dicom], { type: 'application/dicom' }), 'image.dcm');
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  return fetch(`${url}/segment${query}`, { method: 'POST', body: form });
}
