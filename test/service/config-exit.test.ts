/**
 * README ("Configuration"): "A bad value stops start-up with one line naming the variable (exit 2)."
 * The real entry point, spawned with one bad variable at a time: exit status exactly 2 (not just
 * non-zero: 1 is what a crash or an engine that cannot start gives), exactly one stderr line that
 * names the variable, nothing on stdout. Variables of each kind: the service's own integers, enums,
 * patterns and minimum lengths, and an engine variable whose bound lives in the engine's schema.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { REPO_ROOT } from './helpers.ts';

function runMain(env: Record<string, string>): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'services/main.ts'], {
      cwd: REPO_ROOT,
      // A clean environment: only the bad variable (and a repository that does not exist, so a
      // process that got past the configuration would fail later with exit 1, not hang or serve).
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', MODEL_REPOSITORY: '/nonexistent/models', PORT: '0', HOST: '127.0.0.1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const BAD: Array<[variable: string, value: string]> = [
  ['PORT', 'eighty'], // service integer, not a number
  ['PORT', '70000'], // service integer, out of range
  ['LOG_LEVEL', 'loud'], // enum
  ['REDIS_URL', 'http://cache:6379'], // pattern
  ['DOCS_PUBLIC', 'yes'], // enum of strings
  ['WORKERS', '-1'], // engine variable: its bound is in core/engine's schema, reported under the variable's name
  ['EXECUTION_PROVIDER', 'tpu'], // engine enum
  ['API_TOKEN', 'short'], // minimum length (and never echoed)
];

test('a bad configuration variable stops start-up with exit 2 and one stderr line naming it', { timeout: 5 * 60_000 }, async () => {
  // Two at a time: each start loads the whole service module graph.
  const results: Array<Awaited<ReturnType<typeof runMain>>> = [];
  for (let i = 0; i < BAD.length; i += 2) results.push(...(await Promise.all(BAD.slice(i, i + 2).map(([k, v]) => runMain({ [k]: v })))));
  for (const [i, [name, value]] of BAD.entries()) {
    const r = results[i]!;
    const what = `${name}=${value}: exit ${r.code} signal ${r.signal}\nstderr: ${r.stderr}`;
    assert.equal(r.code, 2, what);
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    assert.equal(lines.length, 1, what);
    assert.match(lines[0]!, new RegExp(`^invalid configuration: ${name} \\S`), what);
    assert.equal(r.stdout, '', what);
    if (name === 'API_TOKEN') assert.ok(!r.stderr.includes(value), 'the token is not echoed');
  }
});

test('with a valid configuration the same start fails later, with exit 1, not 2 (the repository cannot be served)', { timeout: 2 * 60_000 }, async () => {
  const r = await runMain({ LOG_LEVEL: 'info' });
  assert.equal(r.code, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /invalid configuration/);
});
