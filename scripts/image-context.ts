/**
 * The files a `docker build` context holds once .dockerignore is applied, listed or copied, so the
 * script form of the image (scripts/image-build.sh) starts from exactly what the Dockerfile's
 * `COPY . .` sees. Matching uses @balena/dockerignore (Docker's own semantics, not .gitignore's).
 *
 * CLI: node --import tsx scripts/image-context.ts <repo> [<dest>]   (no dest: print the list)
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import type { Ignore } from '@balena/dockerignore';

// The package is CommonJS (`module.exports = factory`) but its typings declare an ES default export,
// which NodeNext resolution types as a namespace; require() gets the factory itself.
const ignore = createRequire(import.meta.url)('@balena/dockerignore') as () => Ignore;

/** Rules of `<root>/.dockerignore` (empty when the file is absent, as Docker treats it). */
function readRules(root: string): string[] {
  const file = join(root, '.dockerignore');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** Context-relative paths (forward slashes, sorted) of the regular files a build context holds. */
export function contextFiles(root: string): string[] {
  const rules = readRules(root);
  const ig = ignore().add(rules);
  // Docker descends into an excluded folder only when an exception pattern could re-include something
  // under it; otherwise it skips the whole folder (that is what keeps node_modules and .git cheap).
  const exceptions = rules.filter((r) => r.startsWith('!')).map((r) => r.slice(1).trim().replace(/^\/+/, '').replace(/\/+$/, ''));
  const mayReinclude = (dir: string) => exceptions.some((p) => `${p}/`.startsWith(`${dir}/`));
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const entry of readdirSync(join(root, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      const ignored = ig.ignores(path);
      if (entry.isDirectory()) {
        if (!ignored || mayReinclude(path)) walk(path);
      } else if (entry.isFile() && !ignored) {
        out.push(path);
      }
    }
  };
  walk('');
  return out.sort();
}

/** Copies the context of `root` into `dest` (created if needed); returns the copied paths. */
export function copyContext(root: string, dest: string): string[] {
  const files = contextFiles(root);
  for (const f of files) {
    const target = join(dest, f);
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(join(root, f), target);
  }
  return files;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [repo, dest] = process.argv.slice(2);
  if (!repo) {
    process.stderr.write('usage: image-context.ts <repo> [<dest>]\n');
    process.exit(2);
  }
  const files = dest ? copyContext(resolve(repo), resolve(dest)) : contextFiles(resolve(repo));
  if (dest) process.stderr.write(`copied ${files.length} files into ${dest}\n`);
  else process.stdout.write(files.join('\n') + '\n');
}
