/**
 * A Dockerfile reduced to what the deploy tests compare: per build stage its base, RUN commands,
 * ENV, COPYs, USER, CMD/ENTRYPOINT and HEALTHCHECK. Parsing is dockerfile-ast's (the parser behind the
 * VS Code Docker extension), so line continuations, flags and exec-form JSON follow Docker's rules.
 */
import { readFileSync } from 'node:fs';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';

export interface Copy {
  from: string | undefined;
  sources: string[];
  dest: string;
}

export interface Stage {
  name: string | undefined;
  /** The FROM argument with build ARG defaults substituted (another stage's name stays as is). */
  base: string;
  /** RUN commands in order, shell form joined by single spaces, flags such as --mount left out. */
  runs: string[];
  env: Record<string, string>;
  copies: Copy[];
  workdir: string | undefined;
  user: string | undefined;
  cmd: string[] | undefined;
  entrypoint: string[] | undefined;
  healthcheck: { flags: Record<string, string>; cmd: string[] } | undefined;
  /** Every instruction keyword in order (FROM included), to spot ones the tests do not model. */
  keywords: string[];
}

export interface ParsedDockerfile {
  args: Record<string, string>;
  stages: Stage[];
  final: Stage;
  stage(name: string): Stage;
}

function flagsOf(ins: Instruction): Record<string, string> {
  const withFlags = ins as Instruction & { getFlags?: () => Array<{ getName(): string; getValue(): string | null }> };
  return Object.fromEntries((withFlags.getFlags?.() ?? []).map((f) => [f.getName(), f.getValue() ?? '']));
}

function jsonArgv(ins: Instruction): string[] {
  const json = ins as Instruction & { getJSONStrings?: () => Array<{ getJSONValue(): string }> };
  const strings = json.getJSONStrings?.() ?? [];
  if (strings.length === 0) throw new Error(`line ${ins.getRange().start.line + 1}: ${ins.getKeyword()} must use the exec (JSON) form`);
  return strings.map((s) => s.getJSONValue());
}

export function parseDockerfile(file: string): ParsedDockerfile {
  const df = DockerfileParser.parse(readFileSync(file, 'utf8'));
  const args: Record<string, string> = {};
  for (const a of df.getInitialARGs()) {
    const p = a.getProperty();
    if (p) args[p.getName()] = p.getValue() ?? '';
  }
  const substitute = (s: string) => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => args[(a ?? b)!] ?? '');
  const stages: Stage[] = [];
  let cur: Stage | undefined;
  for (const ins of df.getInstructions()) {
    const kw = ins.getKeyword();
    const words = ins.getArguments().map((a) => a.getValue());
    if (kw === 'ARG' && !cur) continue;
    if (kw === 'FROM') {
      const asAt = words.findIndex((w) => w.toUpperCase() === 'AS');
      cur = {
        name: asAt >= 0 ? words[asAt + 1] : undefined,
        base: substitute(words[0]!),
        runs: [],
        env: {},
        copies: [],
        workdir: undefined,
        user: undefined,
        cmd: undefined,
        entrypoint: undefined,
        healthcheck: undefined,
        keywords: [],
      };
      stages.push(cur);
    }
    if (!cur) throw new Error(`${file}: ${kw} before the first FROM`);
    cur.keywords.push(kw);
    switch (kw) {
      case 'RUN':
        cur.runs.push(words.join(' '));
        break;
      case 'ENV':
        for (const p of (ins as Instruction & { getProperties(): Array<{ getName(): string; getValue(): string | null }> }).getProperties()) {
          cur.env[p.getName()] = p.getValue() ?? '';
        }
        break;
      case 'COPY':
        cur.copies.push({ from: flagsOf(ins).from, sources: words.slice(0, -1), dest: words.at(-1)! });
        break;
      case 'WORKDIR':
        cur.workdir = words[0];
        break;
      case 'USER':
        cur.user = words[0];
        break;
      case 'CMD':
        cur.cmd = jsonArgv(ins);
        break;
      case 'ENTRYPOINT':
        cur.entrypoint = jsonArgv(ins);
        break;
      case 'HEALTHCHECK': {
        const raw = words.join(' ');
        const at = raw.indexOf('CMD ');
        if (at < 0) throw new Error(`${file}: HEALTHCHECK without CMD`);
        cur.healthcheck = { flags: flagsOf(ins), cmd: JSON.parse(raw.slice(at + 4)) as string[] };
        break;
      }
    }
  }
  if (stages.length === 0) throw new Error(`${file}: no FROM`);
  return {
    args,
    stages,
    final: stages.at(-1)!,
    stage(name) {
      const s = stages.find((x) => x.name === name);
      if (!s) throw new Error(`${file}: no stage named ${name}`);
      return s;
    },
  };
}
