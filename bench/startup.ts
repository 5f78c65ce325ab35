/**
 * Start-up of the service as production runs it (built JS: `npm run build`, then `node dist/services/main.js`)
 * against development (`node --import tsx services/main.ts`), taking turns: time from spawn to /readyz
 * 200 (models loaded and warmed), and resident memory once ready. Needs `npm run build` first.
 *
 *   npm run build && node --import tsx bench/startup.ts [--rounds 3]
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../test/helpers/net.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const { values: a } = parseArgs({ options: { rounds: { type: 'string', default: '3' } } });
if (!existsSync(`${ROOT}dist/services/main.js`)) throw new Error('dist/services/main.js is missing: run npm run build first');

const MODES = {
  'built JS (node dist/services/main.js)': ['dist/services/main.js'],
  'tsx (node --import tsx services/main.ts)': ['--import', 'tsx', 'services/main.ts'],
} as const;

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

async function once(args: readonly string[]): Promise<{ readyMs: number; rss: number }> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(process.execPath, [...args], { cwd: ROOT, env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' }, stdio: 'ignore' });
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited with ${child.exitCode}`);
      if (await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status === 200, () => false)) break;
      if (performance.now() - t0 > 120_000) throw new Error('not ready in 120 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    const readyMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 500));
    return { readyMs, rss: rssMiB(child.pid!) };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

const results = new Map<string, Array<{ readyMs: number; rss: number }>>(Object.keys(MODES).map((k) => [k, []]));
const load0 = loadavg()[0]!.toFixed(1);
for (let r = 0; r < Number(a.rounds); r++) for (const [name, args] of Object.entries(MODES)) results.get(name)!.push(await once(args));
const median = (v: number[]) => [...v].sort((p, q) => p - q)[Math.floor(v.length / 2)]!;
console.log(`service start-up, shipped models, defaults; ${a.rounds} rounds taking turns; load average ${load0} -> ${loadavg()[0]!.toFixed(1)}`);
console.log('| mode | spawn -> /readyz 200, median ms | RSS once ready, median MiB |');
console.log('|---|---|---|');
for (const [name, v] of results) console.log(`| ${name} | ${median(v.map((x) => x.readyMs)).toFixed(0)} | ${median(v.map((x) => x.rss)).toFixed(0)} |`);
