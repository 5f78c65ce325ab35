/**
 * Rendering and schema checks for the Kubernetes manifests under docker/k8s, shared by the deploy tests.
 *
 * Rendering runs the real kustomize (`kustomize build`, or the copy inside `kubectl kustomize`) rather
 * than a re-implementation, so what is checked is what `kubectl apply -k` would send. Validation uses
 * the Kubernetes OpenAPI schemas compiled into kubernetes-models (types, formats, required fields), plus
 * a TypeScript excess-property check against the same models' interfaces, which catches misspelt
 * fields (`failureTreshold`) that the schemas, open to unknown keys, let through.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const K8S = join(REPO, 'docker/k8s');

// A loose view of the objects the tests read; the schema checks below are what make them trustworthy.
/* eslint-disable @typescript-eslint/no-explicit-any */
export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [k: string]: any };

function onPath(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const file = join(dir, bin);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** The kustomize invocation available here; kustomize 5 (kubectl >= 1.27 bundles it). */
function kustomizeCommand(): [string, string[]] {
  const kustomize = onPath('kustomize');
  if (kustomize) return [kustomize, ['build']];
  const kubectl = onPath('kubectl');
  if (kubectl) return [kubectl, ['kustomize']];
  throw new Error('rendering the manifests needs `kustomize` or `kubectl` (>= 1.27) on PATH');
}

/** `kustomize build <dir>` parsed into objects. */
export function render(dir: string): K8sObject[] {
  const [bin, args] = kustomizeCommand();
  let out: string;
  try {
    out = execFileSync(bin, [...args, dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr ?? '';
    throw new Error(`${bin} ${args.join(' ')} ${dir} failed (kustomize 5 / kubectl >= 1.27 expected):\n${stderr}`);
  }
  return parseAllDocuments(out)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((d): d is K8sObject => d !== null);
}

/** Renders a throw-away kustomization over the given resource and component folders. */
export function renderComposed(kustomization: { resources?: string[]; components?: string[] }): K8sObject[] {
  const dir = mkdtempSync(join(tmpdir(), 'kustomize-'));
  try {
    const lines = ['apiVersion: kustomize.config.k8s.io/v1beta1', 'kind: Kustomization'];
    for (const key of ['resources', 'components'] as const) {
      const list = kustomization[key];
      if (list?.length) lines.push(`${key}:`, ...list.map((p) => `  - ${relative(dir, resolve(p))}`)); // kustomize refuses absolute paths
    }
    writeFileSync(join(dir, 'kustomization.yaml'), lines.join('\n') + '\n');
    return render(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** apiVersion/kind -> [module, class/interface stem] in kubernetes-models or its operator packages. */
const MODELS: Record<string, [string, string]> = {
  'v1/ConfigMap': ['kubernetes-models/v1/ConfigMap', 'ConfigMap'],
  'v1/Secret': ['kubernetes-models/v1/Secret', 'Secret'],
  'v1/Service': ['kubernetes-models/v1/Service', 'Service'],
  'v1/PersistentVolumeClaim': ['kubernetes-models/v1/PersistentVolumeClaim', 'PersistentVolumeClaim'],
  'apps/v1/Deployment': ['kubernetes-models/apps/v1/Deployment', 'Deployment'],
  'batch/v1/Job': ['kubernetes-models/batch/v1/Job', 'Job'],
  'autoscaling/v2/HorizontalPodAutoscaler': ['kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler', 'HorizontalPodAutoscaler'],
  'policy/v1/PodDisruptionBudget': ['kubernetes-models/policy/v1/PodDisruptionBudget', 'PodDisruptionBudget'],
  'networking.k8s.io/v1/NetworkPolicy': ['kubernetes-models/networking.k8s.io/v1/NetworkPolicy', 'NetworkPolicy'],
  'monitoring.coreos.com/v1/ServiceMonitor': ['@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor', 'ServiceMonitor'],
};

function modelOf(o: K8sObject): [string, string] {
  const m = MODELS[`${o.apiVersion}/${o.kind}`];
  if (!m) throw new Error(`no schema registered for ${o.apiVersion} ${o.kind} (${o.metadata?.name}); add it to MODELS in test/deploy/k8s.ts`);
  return m;
}

/** Schema errors per object, as "Kind/name: message" lines (empty when all are valid). */
export async function schemaErrors(objects: K8sObject[]): Promise<string[]> {
  const errors: string[] = [];
  for (const o of objects) {
    const [mod, cls] = modelOf(o);
    const Model = (await import(mod))[cls] as new (data: unknown) => { validate(): void };
    try {
      new Model(o).validate();
    } catch (e) {
      errors.push(`${o.kind}/${o.metadata.name}: ${(e as Error).message}`);
    }
  }
  return errors;
}

/**
 * Unknown or mistyped fields, found by type-checking each object as an object literal typed with its
 * kubernetes-models interface (TypeScript rejects properties the interface does not declare).
 */
export function unknownFieldErrors(objects: K8sObject[]): string[] {
  const file = join(REPO, 'test/deploy/__rendered_manifests__.ts');
  const sources = objects.map((o, i) => {
    const [mod, cls] = modelOf(o);
    return `export const o${i}: import(${JSON.stringify(mod)}).I${cls} = ${JSON.stringify(o, null, 1)};`;
  });
  const text = sources.join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists } = host;
  host.getSourceFile = (name, lang, ...rest) => (name === file ? ts.createSourceFile(name, text, lang) : getSourceFile.call(host, name, lang, ...rest));
  host.fileExists = (name) => name === file || fileExists.call(host, name);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const at = d.start ?? 0;
    const index = text.slice(0, at).split('\nexport const ').length - 1;
    const o = objects[index];
    const line = text.slice(text.lastIndexOf('\n', at) + 1, text.indexOf('\n', at)).trim();
    return `${o?.kind}/${o?.metadata?.name}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')} (at ${line})`;
  });
}

export function find(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const hits = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (hits.length !== 1) throw new Error(`expected one ${kind}${name ? `/${name}` : ''}, found ${hits.length}`);
  return hits[0]!;
}

/** Kubernetes CPU quantity ("500m", "2", 2) in cores. */
export function cpuCores(q: string | number): number {
  if (typeof q === 'number') return q;
  const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(q);
  if (!m) throw new Error(`unsupported CPU quantity ${q}`);
  return Number(m[1]) / (m[2] ? 1000 : 1);
}

/** Kubernetes memory quantity ("512Mi", "4Gi", "1G") in bytes. */
export function memoryBytes(q: string | number): number {
  if (typeof q === 'number') return q;
  const units: Record<string, number> = { '': 1, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  const m = /^(\d+(?:\.\d+)?)([KMGT]i|[kMGT]|)$/.exec(q);
  if (!m) throw new Error(`unsupported memory quantity ${q}`);
  return Number(m[1]) * units[m[2]!]!;
}

/** Seconds a probe tolerates failing before it acts (Kubernetes defaults for unset fields). */
export function probeBudget(p: { periodSeconds?: number; failureThreshold?: number; initialDelaySeconds?: number }): number {
  return (p.initialDelaySeconds ?? 0) + (p.periodSeconds ?? 10) * (p.failureThreshold ?? 3);
}

/** Whether a label selector's matchLabels select a pod with these labels. */
export function selects(matchLabels: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(matchLabels).every(([k, v]) => labels?.[k] === v);
}
