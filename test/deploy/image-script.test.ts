/**
 * The CPU image in script form (scripts/image-build.sh), end to end in a temporary folder: the build
 * context copy, the production install, then the image's start command with the image's environment,
 * readiness, one segmentation, the Docker health check, and a clean exit on SIGTERM. It is the same
 * sequence `docker build` + `docker run` + `docker stop` performs, minus the engine.
 *
 * Offline: the production install (`npm ci --omit=dev`, scripts/image-build.sh) runs with npm's
 * `offline` setting (npm_config_offline=true), so packages come from the npm cache the installed
 * tree's `npm ci` filled and never from the registry; a cache miss fails the build with ENOTCACHED
 * (then run `npm ci` once online, or scripts/test-deps.sh, to fill the cache). A real `docker build`
 * has no such cache and does reach the registry.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { decodeSiim } from '../../core/rle/index.ts';
import { chestDicom } from '../../synth/index.ts';
import { K8S, probeBudget, REPO } from './k8s.ts';
import { freePort } from '../helpers/net.ts';

const SCRIPT = join(REPO, 'scripts/image-build.sh');
const work = mkdtempSync(join(tmpdir(), 'image-script-'));
const app = join(work, 'app');

/** The base Deployment's startup budget: the time a pod may take to become started. */
function startupBudgetSeconds(): number {
  const d = parse(readFileSync(join(K8S, 'base/deployment.yaml'), 'utf8'));
  return probeBudget(d.spec.template.spec.containers[0].startupProbe);
}

after(() => rmSync(work, { recursive: true, force: true }));

describe('CPU image, script form', () => {
  let installSeconds = 0;

  before(() => {
    const t0 = performance.now();
    // npm_config_offline: npm ci reads the local cache only (no registry request, ENOTCACHED on a miss).
    const r = spawnSync('bash', [SCRIPT, 'build', app], { encoding: 'utf8', cwd: work, env: { ...process.env, npm_config_offline: 'true' } });
    installSeconds = (performance.now() - t0) / 1000;
    const hint = /ENOTCACHED/.test(r.stderr) ? '\n(the npm cache lacks a package of package-lock.json: run `npm ci` once with the registry reachable, then rerun offline)' : '';
    assert.equal(r.status, 0, `image-build.sh build failed:\n${r.stderr}${hint}`);
  });

  test('build: production dependencies only, one platform\'s ORT binaries, no repo leftovers', (t) => {
    t.diagnostic(`build (context copy + npm ci --omit=dev from the npm cache, offline + prune): ${installSeconds.toFixed(1)} s`);
    assert.ok(existsSync(join(app, 'node_modules/onnxruntime-node')));
    assert.ok(existsSync(join(app, 'node_modules/tsx')), 'tsx is a runtime dependency (the segment Job runs the CLI through it)');
    assert.ok(existsSync(join(app, 'dist/services/main.js')), 'the build stage left the built JS the start command runs');
    assert.ok(!existsSync(join(app, 'node_modules/typescript')), 'dev dependencies are not installed');
    const ortBin = join(app, 'node_modules/onnxruntime-node/bin/napi-v6');
    assert.deepEqual(readdirSync(ortBin), [process.platform]);
    for (const absent of ['.git', 'test', 'trainer', 'tmp']) assert.ok(!existsSync(join(app, absent)), `${absent} is not in the image`);
  });

  test('start: ready within the startup budget, segments a DICOM with the shipped model (Dice >= 0.7 against the phantom\'s truth), passes the health check, exits 0 on SIGTERM', async (t) => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const t0 = performance.now();
    const child: ChildProcess = spawn('bash', [SCRIPT, 'start', app, `PORT=${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout!.on('data', (b: Buffer) => (log += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (log += b.toString()));
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    try {
      const budget = startupBudgetSeconds();
      let readySeconds: number | undefined;
      while (readySeconds === undefined) {
        if (child.exitCode !== null) assert.fail(`service exited with ${child.exitCode} before ready:\n${log}`);
        const elapsed = (performance.now() - t0) / 1000;
        assert.ok(elapsed < budget, `not ready within the startupProbe budget of ${budget} s:\n${log}`);
        const res = await fetch(`${base}/readyz`).catch(() => undefined);
        if (res?.status === 200) readySeconds = elapsed;
        else await new Promise((r) => setTimeout(r, 100));
      }
      t.diagnostic(`time to ready (spawn -> GET /readyz 200): ${readySeconds.toFixed(2)} s`);
      assert.equal((await fetch(`${base}/startupz`)).status, 200);
      assert.equal((await fetch(`${base}/livez`)).status, 200);

      // One lesion of known extent (the phantom's truth mask); the shipped model named, since the
      // repository may hold others. Dice computed here from the SIIM RLE the service answers.
      const { bytes, mask: truth } = await chestDicom(7, { lesions: 1 });
      const res = await fetch(`${base}/segment?model=synthetic-pneumothorax:1&rleFormat=siim`, { method: 'POST', headers: { 'content-type': 'application/dicom' }, body: bytes });
      const body = (await res.json()) as { model?: { name: string; version: string }; masks?: Array<{ label: string; rle: { format: string; size: [number, number]; counts: string } }> };
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.deepEqual([body.model?.name, body.model?.version], ['synthetic-pneumothorax', '1']);
      assert.equal(body.masks?.length, 1, JSON.stringify(body));
      const m = body.masks[0]!;
      assert.deepEqual([m.label, m.rle.format, m.rle.size], ['pneumothorax', 'siim', [truth.rows, truth.cols]]);
      const served = decodeSiim(m.rle.counts, truth.rows, truth.cols).data;
      let inter = 0;
      let servedArea = 0;
      let truthArea = 0;
      for (let i = 0; i < served.length; i++) {
        servedArea += served[i] ? 1 : 0;
        truthArea += truth.data[i] ? 1 : 0;
        inter += served[i] && truth.data[i] ? 1 : 0;
      }
      const dice = (2 * inter) / (servedArea + truthArea);
      t.diagnostic(`served mask ${servedArea} px, truth ${truthArea} px, Dice ${dice.toFixed(4)}`);
      assert.ok(truthArea > 0, 'the phantom has a lesion');
      assert.ok(dice >= 0.7, `Dice ${dice.toFixed(4)} < 0.7 (served ${servedArea} px, truth ${truthArea} px)`);

      // The image's HEALTHCHECK command, run as Docker would inside the container.
      const health = spawn('node', ['docker/healthcheck.mjs'], { cwd: app, env: { PATH: process.env.PATH, PORT: String(port) }, stdio: 'ignore' });
      assert.equal((await once(health, 'exit'))[0], 0);

      child.kill('SIGTERM');
      const [code, signal] = await exited;
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, log);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  test('the Kubernetes Job\'s command segments a folder of DICOMs in the image', async () => {
    const job = parse(readFileSync(join(K8S, 'jobs/segment-job.yaml'), 'utf8'));
    const c = job.spec.template.spec.containers[0];
    const mount: string = c.volumeMounts.find((m: { name: string }) => m.name === 'data').mountPath;
    // The claim mounted at `mount` becomes a temporary folder with two DICOMs under in/.
    const data = join(work, 'job-data');
    mkdirSync(join(data, 'in'), { recursive: true });
    for (const seed of [1, 2]) writeFileSync(join(data, 'in', `img${seed}.dcm`), (await chestDicom(seed, { lesions: 1 })).bytes);
    const args = (c.args as string[]).map((a) => (a === mount || a.startsWith(`${mount}/`) ? data + a.slice(mount.length) : a));
    const r = spawnSync('bash', [SCRIPT, 'run', app, '--', ...args], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const out = args[args.indexOf('--out') + 1]!;
    const rows = readFileSync(out, 'utf8').trim().split('\n');
    assert.equal(rows.length, 3, 'a header and one row per DICOM');
  });
});
