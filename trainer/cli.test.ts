/**
 * The CLI's failure modes: every bad argument or unreadable dataset ends with one line on stderr,
 * no stack trace, and a non-zero exit code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const repo = new URL('..', import.meta.url).pathname;

function cli(args: string[]): { code: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'trainer/cli.ts', ...args], { cwd: repo, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

function assertOneLineFailure(r: { code: number | null; stderr: string }, pattern: RegExp, exitCode?: number): void {
  if (exitCode === undefined) assert.notEqual(r.code, 0, 'exit code must be non-zero');
  else assert.equal(r.code, exitCode, `exit code must be ${exitCode}`);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

test('--help describes the options and exits 0', () => {
  const r = cli(['--help']);
  assert.equal(r.code, 0);
  for (const opt of ['--data', '--layout', '--image-size', '--epochs', '--batch-size', '--fold', '--folds', '--lr', '--seed', '--device', '--out', '--name', '--version', '--depth', '--base-channels', '--resume', '--limit', '--threads']) {
    assert.ok(r.stdout.includes(opt), `help mentions ${opt}`);
  }
  // Grouped in this order, defaults as typed (no JSON), and two examples.
  const at = ['Data:', 'Model:', 'Recipe:', 'Run:', 'Export:', 'Examples:'].map((h) => r.stdout.indexOf(`\n${h}\n`));
  assert.ok(at.every((i, k) => i > 0 && (k === 0 || i > at[k - 1]!)), `groups in order: ${at.join(', ')}`);
  assert.ok(r.stdout.indexOf('--data <dir>') > at[0]! && r.stdout.indexOf('--data <dir>') < at[1]!, '--data under Data');
  assert.ok(r.stdout.indexOf('--lr <rate>') > at[2]! && r.stdout.indexOf('--lr <rate>') < at[3]!, '--lr under Recipe');
  assert.ok(r.stdout.indexOf('--out <dir>') > at[4]!, '--out under Export');
  assert.match(r.stdout, /\(default: models\)/);
  // A default that depends on the layout is still shown, as typed.
  assert.match(r.stdout, /--loss-weights[\s\S]*?\(default:\s+3,1,4;\s+multi-class\s+1,1,0\)/);
  assert.match(r.stdout, /\(default: minmax\)/);
  assert.doesNotMatch(r.stdout, /default: ["{[]/, 'no JSON defaults');
  assert.equal(r.stdout.slice(at[5]!).match(/npm run train -- --data/g)?.length, 2);
});

test('a missing data directory is one line and exit 1', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'trainer-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const r = cli(['--data', join(dir, 'nope'), '--out', join(dir, 'models'), '--cache', join(dir, 'cache')]);
  assertOneLineFailure(r, /data directory not found/, 1);
});

test('bad option values are one line each', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'trainer-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  assertOneLineFailure(cli(['--data', dir, '--epochs', '0']), /--epochs/);
  assertOneLineFailure(cli(['--data', dir, '--layout', 'coco']), /--layout/);
  assertOneLineFailure(cli(['--data', dir, '--lr', 'fast']), /--lr/);
  assertOneLineFailure(cli(['--data', dir, '--no-such-option']), /unknown option/);
  assertOneLineFailure(cli(['--epochs', '2']), /--data/);
  assertOneLineFailure(cli(['--data', dir, '--image-size', '100', '--depth', '4']), /multiple of 2\^depth/);
  assertOneLineFailure(cli(['--data', dir, '--fold', '5', '--folds', '5']), /--fold/);
});

test('unreadable SIIM data is one line', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'trainer-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'dicom-images-train'));
  const common = ['--data', dir, '--out', join(dir, 'models'), '--cache', join(dir, 'cache')];
  assertOneLineFailure(cli(common), /train-rle\.csv/);
  await writeFile(join(dir, 'train-rle.csv'), 'Id,Pixels\n');
  assertOneLineFailure(cli(common), /header/);
  await writeFile(join(dir, 'train-rle.csv'), 'ImageId, EncodedPixels\n1.2.3, -1\n');
  assertOneLineFailure(cli(common), /no labelled images/);
});

/** The command line parsed in-process, as main() does. */
async function parse(args: string[]) {
  const { buildProgram, parseArgs } = await import('./cli.ts');
  const program = buildProgram().exitOverride();
  program.parse(args, { from: 'user' });
  return parseArgs(program.opts());
}

test('the command line parses into the schema config: defaults, composed flags, renamed flags', async () => {
  const { DEFAULTS } = await import('./config.ts');
  const { DEFAULT_AUGMENT } = await import('./augment.ts');
  const d = await parse(['--data', 'x']);
  for (const k of ['layout', 'height', 'width', 'epochs', 'lr', 'milestones', 'loss', 'intensity', 'augment', 'threshold', 'minArea', 'cacheDir', 'workDir', 'labels', 'name'] as const) {
    assert.deepEqual(d.config[k], DEFAULTS[k], k);
  }
  assert.equal(d.config.validateOriginalEachEpoch, true);
  assert.equal(d.cli.logLevel, 'warn');

  const c = await parse(['--data', 'x', '--layout', 'pairs', '--image-size', '128x64', '--depth', '3', '--loss-weights', '1,0,2', '--elastic', '3', '--rotate', '5', '--cache', 'c', '--work', 'w', '--label', 'tumour', '--no-val-original', '--threshold', '0.3', '--min-area', '10']);
  assert.deepEqual([c.config.height, c.config.width], [128, 64]);
  assert.deepEqual(c.config.loss, { bce: 1, dice: 0, focal: 2 });
  assert.deepEqual(c.config.augment, { ...DEFAULT_AUGMENT, rotate: 5, elastic: { p: 0.5, alpha: 3, grid: 5 } });
  assert.deepEqual([c.config.cacheDir, c.config.workDir, c.config.labels, c.config.name], ['c', 'w', ['tumour'], 'unet-pairs']);
  assert.equal(c.config.validateOriginalEachEpoch, false);
  assert.deepEqual([c.config.threshold, c.config.minArea], [0.3, 10]);
  assert.equal((await parse(['--data', 'x', '--no-augment'])).config.augment, null);
  assert.match((await parse(['--data', 'x', '--name', 'm', '--version', '2', '--fold', '1'])).config.workDir, /runs\/m-2-fold1$/);
});

test('resume fingerprint and manifest training block come from the schema', async () => {
  const { DEFAULTS, resumeFingerprint, manifestTraining } = await import('./config.ts');
  // The options that change what an epoch computes (the list the hand-written fingerprint had).
  const want = ['layout', 'classes', 'height', 'width', 'batchSize', 'fold', 'folds', 'lr', 'milestones', 'gamma', 'seed', 'depth', 'baseChannels', 'upsample', 'loss', 'weightDecay', 'intensity', 'resize', 'normalize', 'outputPrior', 'augment', 'limit', 'cacheDtype'];
  const fp = resumeFingerprint(DEFAULTS);
  assert.deepEqual(Object.keys(fp).sort(), want.sort());
  assert.equal(fp.limit, null, 'an unset option is recorded as null');
  assert.deepEqual(manifestTraining(DEFAULTS), { batchSize: 8, fold: 0, folds: 5, seed: 42, lossWeights: { bce: 3, dice: 1, focal: 4 } });
});

test('a programmatic config is checked by the same schema, one line naming the option', async () => {
  const { DEFAULTS, validateConfig } = await import('./config.ts');
  assert.throws(() => validateConfig({ ...DEFAULTS, epochs: 0 }), /^ConfigError: --epochs must be an integer >= 1, got 0$/);
  assert.throws(() => validateConfig({ ...DEFAULTS, fold: 5 }), /--fold must be in 0\.\.4, got 5/);
  assert.throws(() => validateConfig({ ...DEFAULTS, threshold: 1 }), /--threshold/);
  assert.throws(() => validateConfig({ ...DEFAULTS, loss: { bce: 0, dice: 0, focal: 0 } }), /at least one loss weight/);
  assert.throws(() => validateConfig({ ...DEFAULTS, height: 100 }), /multiple of 2\^depth/);
  assert.throws(() => validateConfig({ ...DEFAULTS, loss: { ce: 1, dice: 1, focal: 0 } }), /--loss-weights: loss weights of the sigmoid loss are bce,dice,focal; got ce,dice,focal/);
});

test('multi-class layouts: loss weights take the ce,dice,focal names, classes come from classes.json', async () => {
  const { parseConfig, resolveClasses, validateConfig } = await import('./config.ts');
  const d = await parse(['--data', 'x', '--layout', 'labelmap']);
  assert.deepEqual(d.config.loss, { ce: 1, dice: 1, focal: 0 });
  assert.deepEqual(d.config.labels, [], 'unknown until classes.json is read');
  const w = await parse(['--data', 'x', '--layout', 'kaggle-multiclass', '--loss-weights', '2,1,0.5']);
  assert.deepEqual(w.config.loss, { ce: 2, dice: 1, focal: 0.5 });
  const r = await resolveClasses(w.config, async () => ['background', 'lung', 'heart']);
  assert.deepEqual([r.classes, r.labels], [['background', 'lung', 'heart'], ['background', 'lung', 'heart']]);
  validateConfig(r);
  assert.deepEqual(await resolveClasses(d.config.layout === 'labelmap' ? parseConfig({ data: 'x' }) : d.config, async () => ['x', 'y']), parseConfig({ data: 'x' }), 'single-label configs are unchanged');
  await assert.rejects(parse(['--data', 'x', '--layout', 'labelmap', '--label', 'lung']), /--label is for single-label layouts/);
  await assert.rejects(parse(['--data', 'x', '--loss-weights', '1,2']), /must be 3 non-negative numbers: bce,dice,focal \(multi-class layouts: ce,dice,focal\)/);
  assert.throws(() => parseConfig({ data: 'x', classes: ['a', 'b'] }), /classes are for the multi-class layouts/);
});
