/**
 * Checks of a SEG by tools no one here wrote, for tests: dciodvfy (dicom3tools), dcmdump (dcmtk), and
 * dcmjs's reader (Part 10 parse + naturalize + its bit unpacker, and the Cornerstone Segmentation adapter).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import dcmjs from 'dcmjs';
import { items } from './write-seg.ts';

const run = promisify(execFile);

async function withFile<T>(bytes: Uint8Array, fn: (path: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'seg-check-'));
  try {
    const p = join(dir, 'seg.dcm');
    writeFileSync(p, bytes);
    return await fn(p);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function hasTool(name: string): Promise<boolean> {
  return run('sh', ['-c', `command -v ${name}`]).then(
    () => true,
    () => false,
  );
}

/** dciodvfy's report (it writes to stderr) and its "Error" lines. */
export async function dciodvfy(bytes: Uint8Array): Promise<{ output: string; errors: string[] }> {
  return withFile(bytes, async (p) => {
    const r = await run('dciodvfy', [p], { maxBuffer: 64 << 20 }).catch((e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? '', stderr: e.stderr ?? '' }));
    const output = `${r.stdout}${r.stderr}`;
    return { output, errors: output.split('\n').filter((l) => /^\s*Error/.test(l)) };
  });
}

/** dcmdump's exit code and its error/warning lines (E:/W:), with pixel data not printed. */
export async function dcmdump(bytes: Uint8Array): Promise<{ ok: boolean; problems: string[]; dump: string }> {
  return withFile(bytes, async (p) => {
    try {
      const r = await run('dcmdump', ['-q', '+L', p], { maxBuffer: 64 << 20 });
      return { ok: true, problems: `${r.stderr}`.split('\n').filter((l) => /^[EWF]:/.test(l)), dump: r.stdout };
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string };
      return { ok: false, problems: `${err.stderr ?? ''}`.split('\n').filter(Boolean), dump: err.stdout ?? '' };
    }
  });
}

/** The SEG as dcmjs reads it: naturalized dataset and every frame unpacked with dcmjs.data.BitArray. */
export function dcmjsRead(bytes: Uint8Array): { dataset: Record<string, any>; frames: Uint8Array[] } {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const dataset = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(ab).dict);
  const pd = dataset.PixelData;
  const all = dcmjs.data.BitArray.unpack(Array.isArray(pd) ? pd[0] : pd);
  const n = Number(dataset.NumberOfFrames);
  const len = Number(dataset.Rows) * Number(dataset.Columns);
  const frames: Uint8Array[] = [];
  for (let i = 0; i < n; i++) frames.push(Uint8Array.from(all.subarray(i * len, (i + 1) * len), (v) => (v ? 1 : 0)));
  return { dataset, frames };
}

export interface ViewerSource {
  sopInstanceUid: string;
  /** 1-based frame number for multi-frame sources. */
  frame?: number;
}

/**
 * What a Cornerstone viewer gets from the SEG (OHIF's cornerstoneTools-4 path):
 * dcmjs.adapters.Cornerstone.Segmentation.generateToolState with a metadata provider for the given source
 * images (axial, orientation 1\\0\\0\\0\\1\\0, rows x columns). It maps SEG frames to source images by
 * SOP Instance UID / frame number and returns label maps (one per group of non-overlapping segments).
 * Returns, per source image, per 0-based segment index, the 0/1 pixels.
 */
export function cornerstoneToolState(bytes: Uint8Array, sources: ViewerSource[], rows: number, columns: number, seriesInstanceUid: string): Map<string, Map<number, Uint8Array>> {
  const imageIds = sources.map((s) => (s.frame ? `wadouri:${s.sopInstanceUid}?frame=${s.frame - 1}` : `wadouri:${s.sopInstanceUid}`));
  const byId = new Map(imageIds.map((id, i) => [id, sources[i]!]));
  const metadataProvider = {
    get(type: string, imageId: string) {
      const s = byId.get(imageId);
      if (!s) return undefined;
      if (type === 'sopCommonModule') return { sopInstanceUID: s.sopInstanceUid };
      if (type === 'generalSeriesModule') return { seriesInstanceUID: seriesInstanceUid };
      if (type === 'imagePlaneModule') return { rowCosines: [1, 0, 0], columnCosines: [0, 1, 0], rows, columns };
      if (type === 'imagePixelModule') return { rows, columns };
      return undefined;
    },
  };
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const r = dcmjs.adapters.Cornerstone.Segmentation.generateToolState(imageIds, ab, metadataProvider);
  if (!r) throw new Error('dcmjs Cornerstone adapter could not read the SEG');
  const len = rows * columns;
  const out = new Map<string, Map<number, Uint8Array>>();
  for (const buf of r.labelmapBufferArray as ArrayBuffer[]) {
    const labels = new Uint16Array(buf);
    imageIds.forEach((_, i) => {
      const s = sources[i]!;
      const key = s.frame ? `${s.sopInstanceUid}#${s.frame}` : s.sopInstanceUid;
      const segs = out.get(key) ?? new Map<number, Uint8Array>();
      for (let p = 0; p < len; p++) {
        const v = labels[i * len + p]!;
        if (v === 0) continue;
        let m = segs.get(v - 1);
        if (!m) segs.set(v - 1, (m = new Uint8Array(len)));
        m[p] = 1;
      }
      out.set(key, segs);
    });
  }
  return out;
}

export { items };
