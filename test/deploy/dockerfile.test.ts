/**
 * The Dockerfiles, checked without a docker engine: lint (dockerfile-utils), agreement between the
 * CPU Dockerfile and its script form (scripts/image-build.sh), agreement between the CPU and CUDA
 * images and between the CUDA base and the CUDA build of onnxruntime-node's execution provider, the
 * build context, and the two small programs the images run (health check, binary pruning).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { validate } from 'dockerfile-utils';
import { contextFiles } from '../../scripts/image-context.ts';
import { parseDockerfile } from './dockerfile.ts';
import { REPO } from './k8s.ts';

const CPU_FILE = join(REPO, 'docker/Dockerfile');
const CUDA_FILE = join(REPO, 'docker/Dockerfile.cuda');
const cpu = parseDockerfile(CPU_FILE);
const cuda = parseDockerfile(CUDA_FILE);

interface Plan {
  workdir: string;
  nodeMajor: number;
  depsFiles: string[];
  install: string[];
  buildInstall: string[];
  build: string[];
  prune: string[];
  env: Record<string, string>;
  start: string[];
}
const plan = JSON.parse(execFileSync('bash', [join(REPO, 'scripts/image-build.sh'), 'plan'], { encoding: 'utf8' })) as Plan;

/** Instructions whose effect the tests model; anything else needs a thought about the script form. */
const MODELLED = new Set(['FROM', 'ARG', 'LABEL', 'WORKDIR', 'COPY', 'RUN', 'ENV', 'USER', 'EXPOSE', 'HEALTHCHECK', 'ENTRYPOINT', 'CMD']);
/** Runtime-stage RUNs that only make sense in a container (PID 1), hence absent from the script form. */
const CONTAINER_ONLY_RUN = /^apt-get update && apt-get install -y --no-install-recommends tini && rm -rf \/var\/lib\/apt\/lists\/\*$/;

describe('Dockerfiles', () => {
  test('lint clean (dockerfile-utils, the VS Code Docker validator)', () => {
    for (const file of [CPU_FILE, CUDA_FILE]) {
      const problems = validate(readFileSync(file, 'utf8')).map((d) => `${file}:${d.range.start.line + 1}: ${d.message}`);
      assert.deepEqual(problems, []);
    }
  });

  test('the script form runs what the CPU Dockerfile runs: context, install, env, start command', () => {
    const deps = cpu.stage('deps');
    const runtime = cpu.final;
    for (const stage of cpu.stages) for (const kw of stage.keywords) assert.ok(MODELLED.has(kw), `${kw} is not modelled by the script form`);
    assert.equal(deps.workdir, plan.workdir);
    assert.equal(runtime.workdir, plan.workdir);
    assert.deepEqual(deps.copies.flatMap((c) => c.sources), plan.depsFiles);
    assert.deepEqual(deps.runs, [plan.install.join(' '), plan.prune.join(' ')]);
    const build = cpu.stage('build');
    assert.equal(build.workdir, plan.workdir);
    assert.deepEqual(build.copies, [{ from: undefined, sources: ['.'], dest: '.' }]);
    assert.deepEqual(build.runs, [plan.buildInstall.join(' '), plan.build.join(' ')]);
    assert.deepEqual(runtime.copies, [
      { from: 'deps', sources: [`${plan.workdir}/node_modules`], dest: './node_modules' },
      { from: 'build', sources: [`${plan.workdir}/dist`], dest: './dist' },
      { from: undefined, sources: ['.'], dest: '.' },
    ]);
    // Production runs the built JS, never tsx.
    assert.deepEqual(plan.start, ['node', 'dist/services/main.js']);
    assert.deepEqual(runtime.env, plan.env);
    assert.deepEqual(runtime.cmd, plan.start);
    assert.deepEqual(runtime.runs.filter((r) => !CONTAINER_ONLY_RUN.test(r)), [], 'every runtime RUN is mirrored or container-only');
    const nodeMajor = /^node:(\d+)/.exec(deps.base)?.[1];
    assert.equal(Number(nodeMajor), plan.nodeMajor);
    assert.equal(runtime.base, deps.base);
  });

  test('both images: tini as PID 1 in exec form, numeric non-root USER, node health check on a context file', () => {
    for (const df of [cpu, cuda]) {
      const f = df.final;
      assert.deepEqual(f.entrypoint, ['/usr/bin/tini', '--']);
      assert.ok(f.runs.some((r) => CONTAINER_ONLY_RUN.test(r)), 'tini is installed in the runtime stage');
      assert.match(f.user ?? '', /^[1-9]\d*:[1-9]\d*$/);
      assert.equal(f.cmd?.[0], 'node');
      assert.deepEqual(f.healthcheck?.cmd, ['node', 'docker/healthcheck.mjs']);
      assert.ok(Number.parseInt(f.healthcheck!.flags['start-period']!, 10) >= 60);
    }
  });

  test('the CUDA image is the CPU image plus the CUDA EP: same install, start, user, env (+ provider)', () => {
    const cpuDeps = cpu.stage('deps');
    const cudaDeps = cuda.stage('deps');
    assert.deepEqual(cudaDeps.runs.slice(0, cpuDeps.runs.length), cpuDeps.runs);
    assert.deepEqual(cudaDeps.copies, cpuDeps.copies);
    assert.equal(cuda.stage('node').base, cpuDeps.base, 'same Node image for the node binary');
    const f = cuda.final;
    for (const key of ['cmd', 'entrypoint', 'user', 'workdir'] as const) assert.deepEqual(f[key], cpu.final[key], key);
    assert.deepEqual(f.healthcheck?.cmd, cpu.final.healthcheck?.cmd);
    const { EXECUTION_PROVIDER, LD_LIBRARY_PATH, ...rest } = f.env;
    assert.deepEqual(rest, cpu.final.env);
    assert.equal(EXECUTION_PROVIDER, 'cuda');
    const libPath = (LD_LIBRARY_PATH ?? '').split(':');
    assert.ok(libPath.includes(`${f.workdir}/node_modules/onnxruntime-node/bin/napi-v6/linux/x64`));
    assert.ok(libPath.includes('/usr/local/cuda/lib64'));
    assert.ok(f.copies.some((c) => c.from === 'node' && c.sources[0] === '/usr/local/bin/node'));
  });

  test('the CUDA base matches the CUDA build of the execution provider onnxruntime-node installs', () => {
    const require = createRequire(import.meta.url);
    const ortDir = join(REPO, 'node_modules/onnxruntime-node');
    const metadata = require(join(ortDir, 'script/install-metadata.js')) as { requirements: Record<string, string[]> };
    const versions = require(join(ortDir, 'script/install-metadata-versions.js')) as { nuget: Array<{ version: string }> };
    const ortVersion = (JSON.parse(readFileSync(join(ortDir, 'package.json'), 'utf8')) as { version: string }).version;
    // The provider library must be the same ORT release as libonnxruntime in the npm package.
    assert.ok(versions.nuget.some((v) => v.version === ortVersion), `the installer fetches ORT ${ortVersion}`);
    const install = cuda.stage('deps').runs.find((r) => r.includes('onnxruntime-node/script/install.js'));
    const flavour = /ONNXRUNTIME_NODE_INSTALL=(\S+)/.exec(install ?? '')?.[1];
    assert.ok(flavour && metadata.requirements['linux/x64']!.includes(flavour), `${flavour} is an installer flavour for linux/x64`);
    const cudaMajor = /^cuda(\d+)$/.exec(flavour)![1];
    const base = /^nvidia\/cuda:(\d+)\.\d+(?:\.\d+)?-cudnn-runtime-ubuntu\d+\.\d+$/.exec(cuda.final.base);
    assert.ok(base, `${cuda.final.base} is an nvidia/cuda cudnn-runtime image`);
    assert.equal(base[1], cudaMajor, 'CUDA major of the base image == CUDA major of the provider build');
  });

  test('the build context holds what the images need and nothing private', () => {
    const files = contextFiles(REPO);
    for (const df of [cpu, cuda]) {
      for (const stage of df.stages) {
        for (const c of stage.copies.filter((c) => c.from === undefined)) {
          for (const s of c.sources) assert.ok(s === '.' || files.includes(s), `COPY ${s} is in the build context`);
        }
      }
    }
    for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'openapi.yaml', 'services/main.ts', 'docker/healthcheck.mjs']) {
      assert.ok(files.includes(needed), needed);
    }
    assert.ok(files.some((f) => /^models\/[^/]+\/[^/]+\/model\.json$/.test(f)), 'a default model is baked in');
    const leaked = files.filter((f) => /^(node_modules|\.git|tmp|runs|data|dist|trainer|bench|test)\//.test(f) || f.endsWith('.test.ts'));
    assert.deepEqual(leaked, []);
  });
});

describe('docker/healthcheck.mjs', () => {
  // Asynchronous: the probed server lives in this process, so a blocking spawnSync would starve it.
  const check = async (port: number) => {
    const child = spawn(process.execPath, [join(REPO, 'docker/healthcheck.mjs')], { env: { PATH: process.env.PATH, PORT: String(port), HOST: '0.0.0.0' }, stdio: 'ignore' });
    const [code] = (await once(child, 'exit')) as [number | null];
    return code;
  };

  test('exit 0 when /livez answers 2xx, 1 on an error status or a closed port', async () => {
    let status = 200;
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(req.url ?? '');
      res.writeHead(status).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    try {
      assert.equal(await check(port), 0);
      status = 503;
      assert.equal(await check(port), 1);
      assert.deepEqual(seen, ['/livez', '/livez']);
    } finally {
      await new Promise((r) => server.close(r));
    }
    assert.equal(await check(port), 1);
  });
});

describe('docker/prune-native.mjs', () => {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const tree = (platforms: string[]) => {
    const dir = mkdtempSync(join(tmpdir(), 'prune-'));
    dirs.push(dir);
    for (const p of platforms) {
      mkdirSync(join(dir, 'node_modules/onnxruntime-node/bin/napi-v6', p), { recursive: true });
      writeFileSync(join(dir, 'node_modules/onnxruntime-node/bin/napi-v6', p, 'libonnxruntime.so'), 'x');
    }
    return dir;
  };
  const prune = (cwd: string) => spawnSync(process.execPath, [join(REPO, 'docker/prune-native.mjs')], { cwd, encoding: 'utf8' });
  const here = `${process.platform}/${process.arch}`;

  test('keeps only this platform\'s binaries', () => {
    const dir = tree(['darwin/arm64', 'win32/x64', 'win32/arm64', 'linux/arm64', 'linux/x64', here].filter((p, i, a) => a.indexOf(p) === i));
    assert.equal(prune(dir).status, 0);
    const root = join(dir, 'node_modules/onnxruntime-node/bin/napi-v6');
    const left = readdirSync(root).flatMap((os) => readdirSync(join(root, os)).map((arch) => `${os}/${arch}`));
    assert.deepEqual(left, [here]);
  });

  test('fails, keeping everything, when this platform\'s folder is missing (package layout changed)', () => {
    const dir = tree(['darwin/arm64', 'win32/x64'].filter((p) => p !== here));
    const r = prune(dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /layout changed/);
    assert.equal(readdirSync(join(dir, 'node_modules/onnxruntime-node/bin/napi-v6')).length, 2);
  });
});
