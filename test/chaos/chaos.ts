/**
 * The chaos suite (issue 15): `npm run chaos` (full) or `npm run chaos -- --short` (CI, .ci/run).
 *
 * Starts the real service process (`node --import tsx services/main.ts`) on a free port with a temp
 * model repository (test/helpers/model-fixture.ts), a real redis-server, short deadlines and the
 * engine's test hook (ENGINE_TEST_HOOKS=1), then throws at it, in phases:
 *   1. a seeded fuzzer over DICOM structure (mutate.ts) and over HTTP (bodies, content types,
 *      multipart, query strings, paths, methods), several requests at a time;
 *   2. slow clients (stalled and trickling uploads over raw sockets) beside normal traffic;
 *   3. a worker crash: a decode stuck past TASK_TIMEOUT_MS (the worker is terminated and replaced,
 *      the engine's crash path) while good requests run;
 *   4. a Redis outage: redis-server killed under traffic, restarted on the same port;
 *   5. SIGTERM under load: every request sent before the signal must be answered.
 * All along, a worker thread probes /livez and /readyz every 50 ms and the server's RSS is sampled.
 *
 * Asserts: no 5xx other than declared 503s (codes below) and 501 on OIP's unimplemented tensor inputs;
 * no request over its deadline; RSS growth bounded; probes under 100 ms at p99; nothing lost on drain;
 * exit 0 after SIGTERM. Prints its figures and exits 1 on any violation.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { Worker } from 'node:worker_threads';
import { Rng } from '../../core/rng.ts';
import { freePort, modelRepository, redisOn, spawnServer, tempDir, testDicom, type Spawned } from '../service/helpers.ts';
import { makeVariants, mutate } from './mutate.ts';

const SHORT = process.argv.includes('--short');
const SEED = Number(process.env.CHAOS_SEED ?? 15);
const DICOM_INPUTS = SHORT ? 160 : 1500;
const HTTP_INPUTS = SHORT ? 120 : 800;
const CONCURRENCY = 4;
const TASK_TIMEOUT_MS = 1500;
const REQUEST_TIMEOUT_MS = 6000;
const BODY_TIMEOUT_MS = 3000;
const BODY_IDLE_MS = 1000;
/** A request's own deadline as a client sees it: the engine's request deadline, the body's, and slack for a loaded 2-core machine. */
const DEADLINE_MS = REQUEST_TIMEOUT_MS + BODY_TIMEOUT_MS + 3000;
const RSS_GROWTH_LIMIT_MIB = 768;
const PROBE_P99_LIMIT_MS = 100;
/** 503s the service declares (Retry-After): anything else 5xx is a failure. */
const DECLARED_503 = new Set(['OVERLOADED', 'NOT_READY', 'DEADLINE_EXCEEDED', 'WORKER_RESTARTED', 'BODY_CAPACITY', 'STORE_UNAVAILABLE']);

interface Outcome {
  phase: string;
  label: string;
  status: number;
  code?: string;
  ms: number;
}
const outcomes: Outcome[] = [];
let resetOversize = 0;
const violations: string[] = [];
const violation = (s: string) => {
  if (violations.length < 50) violations.push(s);
};

function check(o: Outcome): void {
  outcomes.push(o);
  if (o.ms > DEADLINE_MS) violation(`${o.phase} ${o.label}: ${o.ms.toFixed(0)} ms, over the ${DEADLINE_MS} ms deadline`);
  if (o.status >= 500) {
    const declared = o.status === 503 && o.code && DECLARED_503.has(o.code);
    if (!declared) violation(`${o.phase} ${o.label}: ${o.status} ${o.code ?? ''}`);
  }
  if (o.status === 0) violation(`${o.phase} ${o.label}: no answer (${o.code})`);
}

async function send(srvUrl: string, phase: string, label: string, path: string, init: RequestInit): Promise<Outcome> {
  const t0 = performance.now();
  try {
    const r = await fetch(srvUrl + path, { ...init, signal: AbortSignal.timeout(DEADLINE_MS * 2) });
    const text = await r.text();
    let code: string | undefined;
    if (/json/.test(r.headers.get('content-type') ?? '')) {
      try {
        code = (JSON.parse(text) as { code?: string }).code;
      } catch {
        code = 'UNPARSEABLE_JSON';
      }
    }
    const o = { phase, label, status: r.status, code, ms: performance.now() - t0 };
    check(o);
    return o;
  } catch (e) {
    const o = { phase, label, status: 0, code: (e as Error).message, ms: performance.now() - t0 };
    check(o);
    return o;
  }
}

/** Runs `n` jobs `CONCURRENCY` at a time. */
async function pool(n: number, job: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) await job(next++);
    }),
  );
}

/** /livez and /readyz probed every 50 ms from a worker thread (its own event loop: the fuzzer's work does not delay it). */
function startProber(url: string): { stop: () => Promise<{ live: Array<[number, number]>; ready: Array<[number, number]>; failed: number }> } {
  const w = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const live = [], ready = []; let failed = 0, stop = false;
     parentPort.on('message', () => { stop = true; });
     (async () => {
       while (!stop) {
         for (const [path, out] of [['/livez', live], ['/readyz', ready]]) {
           const t0 = performance.now();
           try { const r = await fetch(workerData + path, { signal: AbortSignal.timeout(5000) }); await r.arrayBuffer(); out.push([Date.now(), performance.now() - t0]); }
           catch { failed++; }
         }
         await new Promise((r) => setTimeout(r, 50));
       }
       parentPort.postMessage({ live, ready, failed });
     })();`,
    { eval: true, workerData: url },
  );
  return {
    stop: () =>
      new Promise((resolve) => {
        w.once('message', (m) => {
          void w.terminate();
          resolve(m);
        });
        w.postMessage('stop');
      }),
  };
}

const rssMiB = (pid: number): number => {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
};

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
};

/** A raw socket upload that stalls (`trickle` false) or sends 16 bytes every 200 ms; resolves with the status line's code (0 if none). */
function slowUpload(url: string, trickle: boolean): Promise<{ status: number; ms: number }> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = connect(Number(port), '127.0.0.1');
    let data = '';
    let timer: NodeJS.Timeout | undefined;
    const give = setTimeout(() => s.destroy(), DEADLINE_MS * 2);
    s.on('connect', () => {
      s.write(`POST /segment HTTP/1.1\r\nHost: x\r\nContent-Type: application/dicom\r\nContent-Length: ${2 * 1024 * 1024}\r\n\r\n`);
      s.write(Buffer.alloc(100));
      if (trickle) timer = setInterval(() => s.writable && s.write(Buffer.alloc(16)), 200);
    });
    s.on('data', (d) => (data += d.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearInterval(timer);
      clearTimeout(give);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0), ms: performance.now() - t0 });
    });
  });
}

/**
 * A POST /segment over a raw socket: 5 MiB with Content-Length (over BODY_LIMIT_BYTES), 5 MiB chunked,
 * or a Content-Length larger than what is sent (then the client stops: the body times out). The status
 * is read from the first response line, whether or not the server closes before the upload ends.
 */
function rawPost(url: string, kind: 'length' | 'chunked' | 'lying'): Promise<{ status: number; code?: string; ms: number }> {
  const { port } = new URL(url);
  const big = Buffer.alloc(5 * 1024 * 1024);
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = connect(Number(port), '127.0.0.1');
    let data = '';
    const give = setTimeout(() => s.destroy(), DEADLINE_MS * 2);
    s.on('connect', () => {
      const h = 'POST /segment HTTP/1.1\r\nHost: x\r\nContent-Type: application/dicom\r\n';
      // The body goes in 64 KiB steps and stops once an answer arrives (an early 413 then closes the
      // connection; unread bytes at close make the kernel reset it, which would discard the answer).
      const steps = async (prefix: string, suffix: string) => {
        s.write(prefix);
        for (let p = 0; p < big.length && data === '' && !s.destroyed; p += 65536) {
          if (!s.write(big.subarray(p, p + 65536))) await new Promise((r) => s.once('drain', r));
          await new Promise((r) => setTimeout(r, 1));
        }
        if (data === '' && !s.destroyed) s.write(suffix);
      };
      if (kind === 'length') void steps(h + `Content-Length: ${big.length}\r\n\r\n`, '');
      else if (kind === 'chunked') void steps(h + `Transfer-Encoding: chunked\r\n\r\n${big.length.toString(16)}\r\n`, '\r\n0\r\n\r\n');
      else s.write(h + 'Content-Length: 100000\r\n\r\n'), s.write(Buffer.alloc(1000));
    });
    s.on('data', (d) => {
      data += d.toString('latin1');
      if (data.includes('\r\n\r\n')) {
        const body = data.split('\r\n\r\n')[1] ?? '';
        if (/"code":"[A-Z_0-9]+"/.test(body) || /content-length: 0/i.test(data)) s.destroy();
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(give);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
      resolve({ status, code: /"code":"([A-Z_0-9]+)"/.exec(data)?.[1] ?? (status ? undefined : 'no response'), ms: performance.now() - t0 });
    });
  });
}

function stalledDicom(ms: number): Uint8Array {
  const b = new Uint8Array(testDicom());
  b.set(new TextEncoder().encode(`STALL:${ms};`), 0);
  return b;
}

/** HTTP-level fuzz cases: method, path, headers, body. */
function httpCase(rng: Rng, good: Uint8Array): { label: string; path: string; init: RequestInit } {
  const pick = <T>(xs: T[]): T => xs[rng.int(xs.length)]!;
  const queries = [
    '',
    '?threshold=0.5',
    '?threshold=2',
    '?threshold=NaN',
    '?threshold=-0',
    '?minArea=-1',
    '?minArea=1e309',
    '?rleFormat=zip',
    '?rleFormat=kaggle&rleFormat=coco',
    '?treshold=0.5',
    '?model=../../etc/passwd',
    '?model=tiny:999',
    '?model=nope',
    '?model=' + 'm'.repeat(500),
    '?frame=-1',
    '?frame=99999',
    '?tta=maybe',
    '?tta=true',
    '?%ff=1',
    '?a=' + '%'.repeat(10),
  ];
  const kind = rng.int(6);
  if (kind === 0) {
    // Paths and methods.
    const path = pick([
      '/segmentations/%ff%fe',
      '/segmentations/' + 'a'.repeat(300),
      '/segmentations/00000000-0000-0000-0000-000000000000',
      '/segmentations/00000000-0000-0000-0000-000000000000/mask.png?label=x',
      '/segmentations/../../etc/passwd',
      '/models/%2e%2e',
      '/models/tiny?version=' + 'v'.repeat(200),
      '/v2/models/tiny/infer',
      '/v2/models/%00/ready',
      '/nope',
      '/' + '%41'.repeat(2000),
      '/admin/reload',
    ]);
    const method = pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']);
    return { label: `${method} ${path.slice(0, 60)}`, path, init: { method, ...(method === 'GET' || method === 'HEAD' ? {} : { body: 'x' }) } };
  }
  if (kind === 1) {
    // Content types on /segment.
    const ct = pick(['application/json', 'text/plain', 'application/dicom; charset=utf-8', 'application/x-www-form-urlencoded', 'multipart/form-data', 'multipart/form-data; boundary=', '', 'application/octet-stream', 'image/png', ';;;']);
    const body = pick([good, new Uint8Array(0), new TextEncoder().encode('{"a":1}'), new Uint8Array(1000).map(() => rng.int(256))]);
    return { label: `content-type ${ct}`, path: '/segment' + pick(queries), init: { method: 'POST', headers: ct ? { 'content-type': ct } : {}, body } };
  }
  if (kind === 2) {
    // Multipart bodies.
    const b = 'B' + rng.int(1e6);
    const file = (name: string, data: string) => `--${b}\r\nContent-Disposition: form-data; name="${name}"; filename="a.dcm"\r\nContent-Type: application/dicom\r\n\r\n${data}\r\n`;
    const field = (name: string, v: string) => `--${b}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${v}\r\n`;
    const goodLatin = Buffer.from(good).toString('latin1');
    const body = pick([
      field('groundTruth', '1 2') + `--${b}--\r\n`,
      file('file', goodLatin) + file('file', goodLatin) + `--${b}--\r\n`,
      file('other', goodLatin) + `--${b}--\r\n`,
      file('file', goodLatin) + field('groundTruth', 'not rle') + `--${b}--\r\n`,
      file('file', goodLatin) + field('groundTruthFormat', 'zip') + field('groundTruth', '1 2') + `--${b}--\r\n`,
      file('file', goodLatin) + field('groundTruth.nolabel', '1 2') + `--${b}--\r\n`,
      file('file', goodLatin.slice(0, 300)),
      `--${b}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--${b}--\r\n`,
      Array.from({ length: 100 }, (_, i) => field(`f${i}`, 'x')).join('') + `--${b}--\r\n`,
      file('file', goodLatin) + field('groundTruth', '1 2') + `--${b}--\r\n`,
      'garbage without boundaries',
    ]);
    return { label: 'multipart', path: '/segment' + pick(queries), init: { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${b}` }, body: Buffer.from(body, 'latin1') } };
  }
  if (kind === 3) {
    // Good DICOM with fuzzed queries.
    const q = pick(queries);
    return { label: `query ${q.slice(0, 40)}`, path: '/segment' + q, init: { method: 'POST', headers: { 'content-type': 'application/dicom' }, body: good } };
  }
  if (kind === 4) {
    // OIP infer with odd JSON.
    const body = pick([
      '{}',
      '{"inputs":[]}',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,1,64,64],"data":[0]}]}',
      '{"inputs":[{"name":"dicom","datatype":"BYTES","shape":[1],"data":["AAAA"]}]}',
      '{"inputs":[{"name":"dicom","datatype":"BYTES","shape":[99999999],"data":[]}]}',
      '[1,2,3]',
      'not json',
      JSON.stringify({ inputs: [{ name: 'dicom', datatype: 'BYTES', shape: [1], data: [Buffer.from(good).toString('base64')] }] }),
    ]);
    return { label: `oip ${body.slice(0, 40)}`, path: '/v2/models/tiny/infer', init: { method: 'POST', headers: { 'content-type': 'application/json' }, body } };
  }
  // Oversize bodies go over a raw socket (rawPost): the server answers 413 and may close before the
  // upload ends, which fetch reports as a network error instead of the answer.
  const size = pick([0, 1, 132]);
  return { label: `body of ${size} bytes`, path: '/segment', init: { method: 'POST', headers: { 'content-type': 'application/dicom' }, body: new Uint8Array(size) } };
}

async function main(): Promise<void> {
  const started = performance.now();
  const rng = new Rng(SEED);
  const repo = await modelRepository();
  const redisDir = await tempDir('chaos-redis');
  const redisPort = await freePort();
  let redis = await redisOn(redisPort, redisDir.dir);
  const { variants, skipped } = await makeVariants();
  const good = testDicom();
  let srv: Spawned | undefined;
  const figures: Record<string, string | number> = {};
  try {
    srv = await spawnServer(
      {
        MODEL_REPOSITORY: repo.dir,
        REDIS_URL: `redis://127.0.0.1:${redisPort}`,
        ENGINE_TEST_HOOKS: '1',
        // One inference worker: on a 2-core machine the HTTP thread keeps a core (two workers starve it).
        WORKERS: '1',
        INTRA_OP_THREADS: '1',
        TASK_TIMEOUT_MS: String(TASK_TIMEOUT_MS),
        REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
        BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS),
        BODY_IDLE_TIMEOUT_MS: String(BODY_IDLE_MS),
        BODY_LIMIT_BYTES: String(4 * 1024 * 1024),
        MAX_QUEUE: '32',
        DRAIN_TIMEOUT_SECONDS: '20',
        LOG_LEVEL: 'warn',
      },
      { timeoutMs: 60_000 },
    );
    const url = srv.url;
    const pid = srv.child.pid!;
    for (let end = Date.now() + 60_000; Date.now() < end; ) {
      const r = await fetch(`${url}/readyz`).catch(() => undefined);
      await r?.arrayBuffer();
      if (r?.status === 200) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    // Warm-up, then the RSS baseline.
    for (let i = 0; i < 8; i++) await send(url, 'warmup', 'good', '/segment', { method: 'POST', headers: { 'content-type': 'application/dicom' }, body: good });
    const rssBase = rssMiB(pid);
    let rssMax = rssBase;
    const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssMiB(pid))), 200);
    const prober = startProber(url);
    const phaseTime: Record<string, number> = {};
    const phaseSpan: Array<[string, number, number]> = [];
    const phase = async (name: string, fn: () => Promise<void>) => {
      const t0 = performance.now();
      const w0 = Date.now();
      await fn();
      phaseTime[name] = Math.round(performance.now() - t0);
      phaseSpan.push([name, w0, Date.now()]);
    };

    // 1. Fuzz.
    await phase('dicom-fuzz', () =>
      pool(DICOM_INPUTS, async () => {
        const { label, bytes } = mutate(rng, variants);
        await send(url, 'dicom', label, '/segment', { method: 'POST', headers: { 'content-type': 'application/dicom' }, body: bytes });
      }),
    );
    await phase('http-fuzz', () =>
      pool(HTTP_INPUTS, async (i) => {
        if (i % 20 === 0) {
          // Oversize (declared and chunked) and lying Content-Length, over a raw socket.
          const kind = (i / 20) % 3;
          const o = await rawPost(url, kind === 0 ? 'length' : kind === 1 ? 'chunked' : 'lying');
          // Known limit: the server answers an oversize declared length at once (413) and closes while
          // the client is still uploading; the kernel then resets the connection and may discard the
          // answer before the client reads it (no lingering close). Counted, not a violation.
          if (o.status === 0 && kind === 0) {
            resetOversize++;
            return;
          }
          check({ phase: 'http', label: `raw ${['oversize', 'oversize chunked', 'lying length'][kind]}`, ...o });
          return;
        }
        const c = httpCase(rng, good);
        await send(url, 'http', c.label, c.path, c.init);
      }),
    );

    // 2. Slow clients beside normal traffic.
    await phase('slow-clients', async () => {
      const slow = Array.from({ length: SHORT ? 6 : 16 }, (_, i) => slowUpload(url, i % 2 === 1));
      await pool(SHORT ? 8 : 24, () => send(url, 'slow', 'good beside slow clients', '/segment', { method: 'POST', headers: { 'content-type': 'application/dicom' }, body: good }));
      for (const s of await Promise.all(slow)) {
        if (s.status !== 408 && s.status !== 503) violation(`slow client answered ${s.status} after ${s.ms.toFixed(0)} ms (expected 408, or 503 BODY_CAPACITY)`);
        if (s.ms > BODY_TIMEOUT_MS + 3000) violation(`slow client closed after ${s.ms.toFixed(0)} ms`);
      }
    });

    // 3. A worker stuck past its deadline: terminated and replaced; good requests go on.
    let crash: Outcome | undefined;
    await phase('worker-crash', async () => {
      const stuck = send(url, 'crash', 'STALL:60000', '/segment', { method: 'POST', headers: { 'content-type': 'application/dicom' }, body: stalledDicom(60_000) });
      await pool(SHORT ? 8 : 24, () => send(url, 'crash', 'good beside a stuck worker', '/segment', { method: 'POST', headers: { 'content-type': 'application/dicom' }, body: good }));
      crash = await stuck;
      if (crash.status !== 503 || crash.code !== 'DEADLINE_EXCEEDED') violation(`stuck decode answered ${crash.status} ${crash.code}, expected 503 DEADLINE_EXCEEDED`);
    });

    // 4. Redis outage under traffic, then back on the same port.
    let unstored = 0;
    let restoredMs = NaN;
    await phase('redis-outage', async () => {
      redis.kill('SIGKILL');
      await new Promise((r) => redis.once('exit', r));
      await pool(SHORT ? 12 : 40, async () => {
        const t0 = performance.now();
        const r = await fetch(`${url}/segment`, { method: 'POST', headers: { 'content-type': 'application/dicom' }, body: good });
        const body = (await r.json()) as { stored?: boolean; code?: string };
        check({ phase: 'redis', label: 'good during outage', status: r.status, code: body.code, ms: performance.now() - t0 });
        if (r.status === 200 && body.stored === false) unstored++;
        if (r.status === 200 && body.stored !== false) violation('a result claimed stored during the Redis outage');
      });
      redis = await redisOn(redisPort, redisDir.dir);
      const t0 = performance.now();
      for (let end = Date.now() + 20_000; Date.now() < end; ) {
        const r = await fetch(`${url}/segment`, { method: 'POST', headers: { 'content-type': 'application/dicom' }, body: good });
        const body = (await r.json()) as { stored?: boolean };
        if (body.stored) {
          restoredMs = performance.now() - t0;
          break;
        }
        await new Promise((res) => setTimeout(res, 200));
      }
      if (Number.isNaN(restoredMs)) violation('results were not stored again within 20 s of Redis coming back');
    });

    const probeSamples = await prober.stop();
    clearInterval(sampler);
    const probes = { live: probeSamples.live.map((x) => x[1]), ready: probeSamples.ready.map((x) => x[1]), failed: probeSamples.failed };
    const probeByPhase = phaseSpan
      .map(([name, a, b]) => {
        const xs = [...probeSamples.live, ...probeSamples.ready].filter(([t]) => t >= a && t <= b).map((x) => x[1]);
        return `${name} p99 ${pct(xs, 0.99).toFixed(0)} max ${Math.max(...xs).toFixed(0)}`;
      })
      .join(', ');

    // 5. SIGTERM under load: everything sent before the signal is answered.
    let drained = 0;
    let lost = 0;
    // 250 ms of worker time each, one worker: the last one finishes well inside REQUEST_TIMEOUT_MS.
    const inflight = SHORT ? 12 : 16;
    let exitCode: number | null = null;
    await phase('sigterm-drain', async () => {
      // Each request holds the worker 250 ms (the test hook), so all are queued or running at SIGTERM.
      const sent = Array.from({ length: inflight }, () =>
        fetch(`${url}/segment`, { method: 'POST', headers: { 'content-type': 'application/dicom' }, body: stalledDicom(250) }).then(
          async (r) => {
            const text = await r.text();
            return r.status === 200 ? 200 : `${r.status} ${text.slice(0, 200)}`;
          },
          () => 0,
        ),
      );
      await new Promise((r) => setTimeout(r, 600));
      srv!.child.kill('SIGTERM');
      for (const s of await Promise.all(sent)) {
        if (s === 200) drained++;
        else {
          lost++;
          violation(`a request in flight at SIGTERM answered ${s}`);
        }
      }
      const exit = await Promise.race([srv!.exit, new Promise<{ code: null }>((r) => setTimeout(() => r({ code: null }), 30_000))]);
      exitCode = exit.code;
      if (exitCode !== 0) violation(`the service exited with ${exitCode} after SIGTERM`);
    });

    const byStatus: Record<number, number> = {};
    for (const o of outcomes) byStatus[o.status] = (byStatus[o.status] ?? 0) + 1;
    const worst = outcomes.reduce((a, o) => (o.ms > a.ms ? o : a), outcomes[0]!);
    const p99Live = pct(probes.live, 0.99);
    const p99Ready = pct(probes.ready, 0.99);
    if (!(p99Live < PROBE_P99_LIMIT_MS)) violation(`/livez p99 ${p99Live.toFixed(1)} ms (limit ${PROBE_P99_LIMIT_MS})`);
    if (!(p99Ready < PROBE_P99_LIMIT_MS)) violation(`/readyz p99 ${p99Ready.toFixed(1)} ms (limit ${PROBE_P99_LIMIT_MS})`);
    if (probes.failed > 0) violation(`${probes.failed} probes failed to answer`);
    const growth = rssMax - rssBase;
    if (!(growth < RSS_GROWTH_LIMIT_MIB)) violation(`RSS grew ${growth.toFixed(0)} MiB (limit ${RSS_GROWTH_LIMIT_MIB})`);

    Object.assign(figures, {
      mode: SHORT ? 'short' : 'full',
      seed: SEED,
      'variants (valid starting points)': variants.map((v) => v.name).join(', '),
      'variants skipped': skipped.length ? skipped.join('; ') : 'none',
      'DICOM mutations tried': outcomes.filter((o) => o.phase === 'dicom').length,
      'HTTP cases tried': outcomes.filter((o) => o.phase === 'http').length + resetOversize,
      'oversize uploads reset before the 413 was read': resetOversize,
      'requests in all': outcomes.length + inflight,
      'by status': Object.entries(byStatus)
        .map(([s, n]) => `${s}:${n}`)
        .join(' '),
      'worst latency': `${worst.ms.toFixed(0)} ms (${worst.phase} ${worst.label} -> ${worst.status} ${worst.code ?? ''}); deadline ${DEADLINE_MS} ms`,
      'stuck worker': crash ? `${crash.status} ${crash.code} after ${crash.ms.toFixed(0)} ms` : '-',
      'Redis outage': `${unstored} answered stored:false; stored again ${restoredMs.toFixed(0)} ms after restart`,
      'RSS': `baseline ${rssBase.toFixed(0)} MiB, max ${rssMax.toFixed(0)} MiB, growth ${growth.toFixed(0)} MiB (limit ${RSS_GROWTH_LIMIT_MIB})`,
      '/livez under load': `${probes.live.length} probes, p50 ${pct(probes.live, 0.5).toFixed(1)} ms, p99 ${p99Live.toFixed(1)} ms, max ${Math.max(...probes.live).toFixed(1)} ms`,
      '/readyz under load': `${probes.ready.length} probes, p50 ${pct(probes.ready, 0.5).toFixed(1)} ms, p99 ${p99Ready.toFixed(1)} ms, max ${Math.max(...probes.ready).toFixed(1)} ms`,
      'probes by phase (ms)': probeByPhase,
      'SIGTERM drain': `${inflight} in flight, ${drained} answered 200, ${lost} lost, exit ${exitCode}`,
      'phase ms': Object.entries(phaseTime)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
      'total seconds': Math.round((performance.now() - started) / 1000),
    });
  } finally {
    if (srv && srv.child.exitCode === null && srv.child.signalCode === null) srv.child.kill('SIGKILL');
    if (redis.exitCode === null && redis.signalCode === null) redis.kill('SIGKILL');
    await redisDir.remove().catch(() => undefined);
    await repo.remove().catch(() => undefined);
  }
  console.log('chaos suite figures');
  for (const [k, v] of Object.entries(figures)) console.log(`  ${k}: ${v}`);
  if (violations.length > 0) {
    console.log(`\n${violations.length} violation(s):`);
    for (const v of violations) console.log(`  - ${v}`);
    if (srv) console.log(`\nservice stderr (tail):\n${srv.stderr().slice(-3000)}\nservice stdout (tail):\n${srv.stdout().slice(-3000)}`);
    process.exit(1);
  }
  console.log('\nchaos suite passed');
  process.exit(0);
}

await main();
