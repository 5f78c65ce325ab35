/**
 * Which installed npm packages a set of entry files needs at run time, so the GPU kit carries those
 * and not the whole node_modules (469 MB here; the device tool carries at most 64 MiB per call).
 *
 *   node --import tsx bench/gpu/runtime-packages.ts [--exclude name,...] entry.ts [entry.ts ...]
 *
 * Prints one package directory per line, relative to the repository root (e.g. node_modules/sharp).
 * Method: follow the relative imports of the entry files (TypeScript/ESM sources of this repo) and
 * collect every bare specifier; then close over each package's dependencies, optionalDependencies
 * and peerDependencies as installed (a package is carried whole, so its own dynamic requires work).
 * `tsx` is always included: every script runs under `node --import tsx`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';

/** Import specifiers in a TypeScript/JavaScript source: static, side-effect, dynamic, import.meta.resolve. */
const SPECIFIER_PATTERNS = [
  /^\s*(?:import|export)\b[^;'"]*?\bfrom\s*['"]([^'"]+)['"]/gm,
  /^\s*import\s*['"]([^'"]+)['"]/gm,
  /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  /\bimport\.meta\.resolve\(\s*['"]([^'"]+)['"]\s*\)/g,
];
const PACKAGE_SPECIFIER = /^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(\/.*)?$/i;

export function importSpecifiers(source: string): string[] {
  const out = new Set<string>();
  for (const re of SPECIFIER_PATTERNS) for (const m of source.matchAll(re)) out.add(m[1]!);
  return [...out].filter((s) => s.startsWith('.') || s.startsWith('node:') || PACKAGE_SPECIFIER.test(s));
}

/** 'pkg/sub' -> 'pkg', '@scope/pkg/sub' -> '@scope/pkg'. */
export function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** Node's lookup: <dir>/node_modules/<name>, then each parent directory's. */
function findPackageDir(name: string, fromDir: string): string | undefined {
  let dir = fromDir;
  for (;;) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** Source files reachable from the entries through relative imports, and the bare specifiers they use. */
export function scanSources(entries: string[]): { files: string[]; bare: Map<string, string> } {
  const seen = new Set<string>();
  const bare = new Map<string, string>(); // package name -> a directory it is imported from
  const queue = entries.map((e) => resolve(e));
  while (queue.length) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec);
        if (existsSync(target)) queue.push(target);
        continue;
      }
      if (spec.startsWith('node:') || isBuiltin(spec)) continue;
      const name = packageName(spec);
      if (!bare.has(name)) bare.set(name, dirname(file));
    }
  }
  return { files: [...seen], bare };
}

/** Package directories needed by `roots` (name -> directory it is resolved from), closed over their dependencies. */
export function closePackages(roots: Map<string, string>, exclude: Set<string>): string[] {
  const dirs = new Set<string>();
  const queue = [...roots].map(([name, from]) => ({ name, from }));
  while (queue.length) {
    const { name, from } = queue.pop()!;
    if (exclude.has(name)) continue;
    const dir = findPackageDir(name, from);
    if (!dir) throw new Error(`package ${name} (needed from ${from}) is not installed: run npm ci first`);
    if (dirs.has(dir)) continue;
    dirs.add(dir);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
    const required = Object.keys(pkg.dependencies ?? {});
    // Optional and peer dependencies count only where installed (e.g. sharp's @img/sharp-linux-x64).
    const ifInstalled = [...Object.keys(pkg.optionalDependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})];
    for (const dep of required) queue.push({ name: dep, from: dir });
    for (const dep of ifInstalled) if (!exclude.has(dep) && findPackageDir(dep, dir)) queue.push({ name: dep, from: dir });
  }
  // A package nested inside another carried package travels with it.
  const sorted = [...dirs].sort();
  return sorted.filter((d) => !sorted.some((o) => o !== d && d.startsWith(o + '/')));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({ options: { exclude: { type: 'string', default: '' } }, allowPositionals: true });
  if (positionals.length === 0) {
    console.error('usage: runtime-packages.ts [--exclude a,b] entry.ts [...]');
    process.exit(2);
  }
  const root = process.cwd();
  const { bare } = scanSources(positionals);
  bare.set('tsx', root);
  const exclude = new Set(values.exclude!.split(',').filter(Boolean));
  for (const dir of closePackages(bare, exclude)) console.log(relative(root, dir));
}
