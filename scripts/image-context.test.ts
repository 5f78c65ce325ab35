import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { contextFiles, copyContext } from './image-context.ts';

const roots: string[] = [];
after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

function fixture(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'ctx-'));
  roots.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

const tree = {
  'package.json': '{}',
  'src/a.ts': 'a',
  'src/a.test.ts': 't',
  'src/deep/b.ts': 'b',
  'src/deep/b.test.ts': 't',
  'keep.txt': 'k',
  'secret.env': 's',
  'debug.log': 'l',
  'important.log': 'i',
  'node_modules/x/index.js': 'x',
  '.git/HEAD': 'h',
};

describe('build context (.dockerignore, Docker semantics)', () => {
  test('allow-list: `*` then exceptions re-include folders; later patterns exclude inside them', () => {
    const root = fixture({ ...tree, '.dockerignore': '# allow-list\n*\n!package.json\n!src/\n**/*.test.ts\n!keep.txt\n' });
    assert.deepEqual(contextFiles(root), ['keep.txt', 'package.json', 'src/a.ts', 'src/deep/b.ts']);
  });

  test('deny-list: patterns are anchored at the context root, `!` re-includes, the last match wins', () => {
    const root = fixture({ ...tree, '.dockerignore': 'node_modules\n.git\n*.log\n!important.log\nsrc/*.test.ts\n' });
    // src/*.test.ts does not reach src/deep (no implicit `**`, unlike .gitignore).
    assert.deepEqual(contextFiles(root), [
      '.dockerignore',
      'important.log',
      'keep.txt',
      'package.json',
      'secret.env',
      'src/a.ts',
      'src/deep/b.test.ts',
      'src/deep/b.ts',
    ]);
  });

  test('no .dockerignore: everything is context', () => {
    const root = fixture(tree);
    assert.equal(contextFiles(root).length, Object.keys(tree).length);
  });

  test('copyContext reproduces the listed files byte for byte and nothing else', () => {
    const root = fixture({ ...tree, '.dockerignore': '*\n!src/\n' });
    const dest = mkdtempSync(join(tmpdir(), 'ctx-dest-'));
    roots.push(dest);
    const copied = copyContext(root, dest);
    assert.deepEqual(copied, ['src/a.test.ts', 'src/a.ts', 'src/deep/b.test.ts', 'src/deep/b.ts']);
    assert.deepEqual(contextFiles(dest), copied);
    for (const f of copied) assert.equal(readFileSync(join(dest, f), 'utf8'), readFileSync(join(root, f), 'utf8'));
  });
});
