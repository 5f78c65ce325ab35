/**
 * `npm start` execs node (package.json: `exec node ...`), so npm's only child is the server itself:
 * SIGTERM sent to the npm process reaches node, which drains and exits, and nothing is left
 * listening (with `sh -c node ...` the shell died and node was orphaned, still listening).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { freePort, modelRepository, REPO_ROOT, waitFor } from './helpers.ts';

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

describe('npm start', () => {
  let repo: { dir: string; remove: () => Promise<void> };
  before(async () => {
    repo = await modelRepository();
  });
  after(async () => {
    await repo?.remove();
  });

  it('delivers SIGTERM sent to npm to node, which exits and leaves nothing listening', async () => {
    const port = await freePort();
    const npm = spawn('npm', ['start', '--silent'], {
      cwd: REPO_ROOT,
      env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', MODEL_REPOSITORY: repo.dir, WORKERS: '1', INTRA_OP_THREADS: '1', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so a failed run can still kill whatever npm left behind.
      detached: true,
    });
    let err = '';
    npm.stderr!.on('data', (d) => (err += String(d)));
    npm.stdout!.resume();
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => npm.once('exit', (code, signal) => r({ code, signal })));
    try {
      await waitFor(`http://127.0.0.1:${port}`, '/readyz', 200, 60_000);
      assert.ok(npm.kill('SIGTERM'));
      const end = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30_000))]);
      assert.notEqual(end, 'timeout', `npm did not exit after SIGTERM\n${err}`);
      // node drained and closed its listener; nothing answers on the port any more.
      for (let i = 0; i < 50 && (await listening(port)); i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(await listening(port), false, 'a process still listens on the port after npm exited');
    } finally {
      try {
        process.kill(-npm.pid!, 'SIGKILL');
      } catch {
        // the group is gone: nothing was left behind
      }
    }
  });
});
