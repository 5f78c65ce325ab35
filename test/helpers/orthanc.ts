/**
 * A throw-away Orthanc (Debian `orthanc` + `orthanc-dicomweb`) for tests: free HTTP and DICOM ports,
 * storage in a temporary directory, its own config JSON, no authentication, localhost only.
 * startOrthanc() resolves once GET /system answers; stop() kills it and deletes the storage.
 * scripts/orthanc.sh does the same from a shell.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.ts';

export const ORTHANC_BIN = '/usr/sbin/Orthanc';
export const DICOMWEB_PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

export interface OrthancHandle {
  url: string;
  /** DICOMweb root, e.g. http://127.0.0.1:PORT/dicom-web */
  dicomweb: string;
  httpPort: number;
  dicomPort: number;
  aet: string;
  dir: string;
  stop(): Promise<void>;
}

/** Both tools installed (scripts/test-deps.sh installs them)? */
export function orthancAvailable(): boolean {
  return existsSync(ORTHANC_BIN) && existsSync(DICOMWEB_PLUGIN);
}

export { freePort };

export async function startOrthanc(opts: { timeoutMs?: number; aet?: string } = {}): Promise<OrthancHandle> {
  if (!orthancAvailable()) throw new Error(`Orthanc not installed (${ORTHANC_BIN}, ${DICOMWEB_PLUGIN}): run scripts/test-deps.sh`);
  const dir = mkdtempSync(join(tmpdir(), 'orthanc-test-'));
  const httpPort = await freePort();
  let dicomPort = await freePort();
  while (dicomPort === httpPort) dicomPort = await freePort();
  const aet = opts.aet ?? 'ORTHANCTEST';
  const config = {
    Name: 'unet-seg-test',
    StorageDirectory: join(dir, 'db'),
    IndexDirectory: join(dir, 'db'),
    HttpPort: httpPort,
    DicomPort: dicomPort,
    DicomAet: aet,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    HttpBindAddress: '127.0.0.1',
    DicomServerEnabled: true,
    StorageCompression: false,
    // Orthanc 1.10 logs to stderr; keep quiet and never keep the PHI-bearing test data.
    Plugins: [DICOMWEB_PLUGIN],
    DicomWeb: { Enable: true, Root: '/dicom-web/', EnableWado: false, Ssl: false, StudiesMetadata: 'Full', SeriesMetadata: 'Full' },
  };
  const cfgPath = join(dir, 'orthanc.json');
  writeFileSync(cfgPath, JSON.stringify(config, null, 2));
  const child: ChildProcess = spawn(ORTHANC_BIN, [cfgPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${httpPort}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`Orthanc exited (${child.exitCode}) before it was ready:\n${stderr}`);
    }
    const ok = await fetch(`${url}/system`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`Orthanc not ready after ${opts.timeoutMs ?? 30_000} ms:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, dicomweb: `${url}/dicom-web`, httpPort, dicomPort, aet, dir, stop };
}

/** POST /instances (Orthanc's REST upload) of one Part 10 file; returns Orthanc's answer. */
export async function uploadInstance(o: OrthancHandle, bytes: Uint8Array): Promise<{ ID: string; Status: string }> {
  const r = await fetch(`${o.url}/instances`, { method: 'POST', body: bytes, headers: { 'content-type': 'application/dicom' } });
  if (!r.ok) throw new Error(`Orthanc POST /instances: ${r.status} ${await r.text()}`);
  return (await r.json()) as { ID: string; Status: string };
}

/** Orthanc REST PUT /modalities/{name}: registers a DICOM peer Orthanc may send to (C-STORE SCU) and accept from. */
export async function registerModality(o: OrthancHandle, name: string, peer: { aet: string; host: string; port: number }): Promise<void> {
  const r = await fetch(`${o.url}/modalities/${encodeURIComponent(name)}`, {
    method: 'PUT',
    body: JSON.stringify({ AET: peer.aet, Host: peer.host, Port: peer.port }),
    headers: { 'content-type': 'application/json' },
  });
  if (!r.ok) throw new Error(`Orthanc PUT /modalities/${name}: ${r.status} ${await r.text()}`);
}

/** Orthanc's own id of a series, by its Series Instance UID (REST /tools/lookup); undefined when Orthanc has none. */
export async function orthancSeriesId(o: OrthancHandle, seriesInstanceUid: string): Promise<string | undefined> {
  const r = await fetch(`${o.url}/tools/lookup`, { method: 'POST', body: seriesInstanceUid });
  if (!r.ok) throw new Error(`Orthanc POST /tools/lookup: ${r.status} ${await r.text()}`);
  const found = (await r.json()) as Array<{ ID: string; Type: string }>;
  return found.find((x) => x.Type === 'Series')?.ID;
}

/**
 * Orthanc sends resources (Orthanc ids of patients, studies, series or instances) to a registered
 * modality with C-STORE (REST POST /modalities/{name}/store, synchronous); throws on a failed store.
 */
export async function storeToModality(o: OrthancHandle, name: string, resources: string[]): Promise<Record<string, unknown>> {
  const r = await fetch(`${o.url}/modalities/${encodeURIComponent(name)}/store`, {
    method: 'POST',
    body: JSON.stringify({ Resources: resources, Synchronous: true }),
    headers: { 'content-type': 'application/json' },
  });
  if (!r.ok) throw new Error(`Orthanc POST /modalities/${name}/store: ${r.status} ${await r.text()}`);
  return (await r.json()) as Record<string, unknown>;
}

/** Orthanc ids of the SEG instances (Modality SEG) Orthanc holds in a study (REST /tools/find). */
export async function segInstanceIds(o: OrthancHandle, studyInstanceUid: string): Promise<string[]> {
  const r = await fetch(`${o.url}/tools/find`, {
    method: 'POST',
    body: JSON.stringify({ Level: 'Series', Query: { StudyInstanceUID: studyInstanceUid, Modality: 'SEG' }, Expand: true }),
    headers: { 'content-type': 'application/json' },
  });
  if (!r.ok) throw new Error(`Orthanc POST /tools/find: ${r.status} ${await r.text()}`);
  return ((await r.json()) as Array<{ Instances: string[] }>).flatMap((s) => s.Instances);
}

/** GET /instances/{id}/file: the Part 10 bytes Orthanc stored. */
export async function instanceFile(o: OrthancHandle, id: string): Promise<Uint8Array> {
  const r = await fetch(`${o.url}/instances/${id}/file`);
  if (!r.ok) throw new Error(`Orthanc GET /instances/${id}/file: ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}
