/**
 * The model repository on disk: `<root>/<name>/<version>/model.json` + the ONNX file the manifest names
 * (default `model.onnx`). This module lists it, validates one version (manifest, names, checksum) and
 * checks an opened session's real inputs/outputs against the manifest. It opens no sessions itself.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseManifest, type ModelManifest } from '../manifest.ts';
import { ModelInvalidError } from './errors.ts';

export const MANIFEST_FILE = 'model.json';

export interface ModelVersionEntry {
  name: string;
  version: string;
  /** `name:version`, the key the engine and workers use. */
  key: string;
  dir: string;
  onnxPath: string;
  manifest: ModelManifest;
  /**
   * The ONNX file's bytes as read once and hashed (equal to the manifest's sha256): what every worker
   * opens, first ones and replacements alike, so no worker ever reads the file again unverified.
   */
  onnx: Uint8Array;
  /** sha256 of `onnx` (hex). */
  sha256: string;
}

/** Numeric-aware ordering: 2 < 10, 1.9.0 < 1.10.0, v2 < v10; ties fall back to plain comparison. */
const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });
export function compareVersions(a: string, b: string): number {
  return collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
}

export function modelKey(name: string, version: string): string {
  return `${name}:${version}`;
}

/** `name` or `name:version` (the CLI's --model and the service's ?model= use this form). */
export function parseModelRef(ref: string): { name: string; version?: string } {
  const i = ref.indexOf(':');
  if (i < 0) return { name: ref };
  const name = ref.slice(0, i);
  const version = ref.slice(i + 1);
  return version ? { name, version } : { name };
}

const visible = (n: string) => !n.startsWith('.');

async function subdirectories(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory() && visible(e.name)).map((e) => e.name);
}

/**
 * Every model name with its versions, oldest first (so the newest is last). A name directory with no
 * version directories is left out. Fails only if the root itself cannot be read.
 */
export async function listRepository(root: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  let names: string[];
  try {
    names = await subdirectories(root);
  } catch (e) {
    throw new Error(`model repository ${resolve(root)} cannot be read: ${(e as Error).message}`);
  }
  for (const name of names.sort()) {
    const versions = (await subdirectories(join(root, name)).catch(() => [] as string[])).sort(compareVersions);
    if (versions.length > 0) out.set(name, versions);
  }
  return out;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Read and validate one version's manifest only (schema, and name/version equal to the directory
 * names); no checksum. Throws ModelInvalidError naming the fault.
 */
export async function readManifest(root: string, name: string, version: string): Promise<ModelManifest> {
  const key = modelKey(name, version);
  const dir = resolve(root, name, version);
  let raw: string;
  try {
    raw = await readFile(join(dir, MANIFEST_FILE), 'utf8');
  } catch {
    throw new ModelInvalidError(key, `${key}: missing ${MANIFEST_FILE} in ${dir}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw new ModelInvalidError(key, `${key}: ${MANIFEST_FILE} is not valid JSON: ${(e as Error).message}`);
  }
  let manifest: ModelManifest;
  try {
    manifest = parseManifest(json, `${key}/${MANIFEST_FILE}`);
  } catch (e) {
    throw new ModelInvalidError(key, (e as Error).message);
  }
  if (manifest.name !== name) {
    throw new ModelInvalidError(key, `${key}: manifest name '${manifest.name}' does not match directory '${name}'`, manifest);
  }
  if (manifest.version !== version) {
    throw new ModelInvalidError(key, `${key}: manifest version '${manifest.version}' does not match directory '${version}'`, manifest);
  }
  return manifest;
}

export function sha256Bytes(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Validate one version directory: the manifest (readManifest), the ONNX file present and its sha256
 * equal to the manifest's. The file is read once; the bytes hashed are the bytes returned (`onnx`),
 * so what is served is exactly what was verified. Throws ModelInvalidError naming the fault.
 */
export async function readModelVersion(root: string, name: string, version: string): Promise<ModelVersionEntry> {
  const key = modelKey(name, version);
  const dir = resolve(root, name, version);
  const manifest = await readManifest(root, name, version);
  const onnxPath = resolve(dir, manifest.onnx.file);
  if (!onnxPath.startsWith(dir + '/')) {
    throw new ModelInvalidError(key, `${key}: onnx.file '${manifest.onnx.file}' points outside the version directory`, manifest);
  }
  let onnx: Uint8Array;
  try {
    const st = await stat(onnxPath);
    if (!st.isFile()) throw new Error('not a file');
    const buf = await readFile(onnxPath);
    onnx = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch {
    throw new ModelInvalidError(key, `${key}: missing ONNX file ${manifest.onnx.file}`, manifest);
  }
  const actual = sha256Bytes(onnx);
  if (actual !== manifest.onnx.sha256) {
    throw new ModelInvalidError(
      key,
      `${key}: sha256 mismatch for ${manifest.onnx.file}: manifest ${manifest.onnx.sha256.slice(0, 12)}…, file ${actual.slice(0, 12)}…`,
      manifest,
    );
  }
  return { name, version, key, dir, onnxPath, manifest, onnx, sha256: actual };
}

/** What an opened session reports about one input/output (the subset of ORT's ValueMetadata used). */
export interface IoMetadata {
  name: string;
  isTensor: boolean;
  type?: string;
  shape?: ReadonlyArray<number | string>;
}

const DIM_NAMES = ['N', 'C', 'H', 'W'];

function checkShape(key: string, what: string, declared: ReadonlyArray<number | string>, actual: ReadonlyArray<number | string> | undefined): void {
  // An empty shape means the graph does not declare one; nothing to compare.
  if (!actual || actual.length === 0) return;
  if (actual.length !== declared.length) {
    throw new ModelInvalidError(key, `${key}: ${what} rank mismatch: manifest [${declared.join(',')}], ONNX [${actual.join(',')}]`);
  }
  for (let d = 0; d < declared.length; d++) {
    const m = declared[d];
    const o = actual[d];
    // A symbolic ONNX dimension accepts any manifest value; a fixed one must be matched exactly,
    // and a fixed ONNX batch cannot be declared dynamic in the manifest (batching would break it).
    if (typeof o === 'number' && o > 0 && m !== o) {
      throw new ModelInvalidError(
        key,
        `${key}: ${what} shape mismatch at dim ${d} (${DIM_NAMES[d] ?? d}): manifest ${JSON.stringify(m)}, ONNX ${o} (manifest [${declared.join(',')}], ONNX [${actual.join(',')}])`,
      );
    }
  }
}

/** Compare the opened session's real graph inputs/outputs with the manifest; throws ModelInvalidError. */
export function checkSessionIo(key: string, manifest: ModelManifest, inputs: readonly IoMetadata[], outputs: readonly IoMetadata[]): void {
  const inNames = inputs.map((i) => i.name);
  const outNames = outputs.map((o) => o.name);
  const input = inputs.find((i) => i.name === manifest.input.name);
  if (!input) {
    throw new ModelInvalidError(key, `${key}: manifest input '${manifest.input.name}' is not an input of the ONNX graph (inputs: ${inNames.map((n) => `'${n}'`).join(', ')})`);
  }
  if (inputs.length !== 1) {
    throw new ModelInvalidError(key, `${key}: the ONNX graph has ${inputs.length} inputs (${inNames.join(', ')}); a segmentation model must take exactly one`);
  }
  const output = outputs.find((o) => o.name === manifest.output.name);
  if (!output) {
    throw new ModelInvalidError(key, `${key}: manifest output '${manifest.output.name}' is not an output of the ONNX graph (outputs: ${outNames.map((n) => `'${n}'`).join(', ')})`);
  }
  if (!input.isTensor || (input.type !== undefined && input.type !== 'float32')) {
    throw new ModelInvalidError(key, `${key}: input '${input.name}' is ${input.isTensor ? input.type : 'not a tensor'}, expected float32`);
  }
  if (!output.isTensor || (output.type !== undefined && output.type !== 'float32')) {
    throw new ModelInvalidError(key, `${key}: output '${output.name}' is ${output.isTensor ? output.type : 'not a tensor'}, expected float32`);
  }
  checkShape(key, `input '${input.name}'`, manifest.input.shape, input.shape);
  checkShape(key, `output '${output.name}'`, manifest.output.shape, output.shape);
}
