/**
 * The dcmjs-codecs WebAssembly module (dcmtk's IJG 8/12/16-bit JPEG, CharLS, OpenJPEG), initialised
 * lazily once and shared by the jpeg-lossless, jpeg-ls, jpeg2000 and 12-bit jpeg codecs.
 *
 * Why an instance is thrown away after any failure: the C++ error path throws through the wasm
 * frames without restoring the wasm stack pointer or freeing the decoder context, so every failed
 * decode leaks ~2 KB of wasm stack; measured here, about 30 consecutive corrupt frames end in
 * "memory access out of bounds" and then a hang. A fresh instance costs ~20 ms, only on the error path.
 */
import { createRequire } from 'node:module';
import type dcmjsCodecsModule from 'dcmjs-codecs';
import { DicomError } from '../errors.ts';
import type { PixelModule } from '../pixel-module.ts';

type Lib = typeof dcmjsCodecsModule;
type NativeCodecsType = Lib['NativeCodecs'];

const localRequire = createRequire(import.meta.url);

/** The library itself (and dcmjs under it) loads on first use: processes that only see JPEG Baseline never pay for it. */
let lib: Lib | undefined;
let ready: Promise<void> | undefined;

function init(): Promise<void> {
  const p = (async () => {
    lib ??= (await import('dcmjs-codecs')).default as Lib;
    const wasmPath = localRequire.resolve('dcmjs-codecs/build/dcmjs-native-codecs.wasm');
    await lib.NativeCodecs.initializeAsync({ webAssemblyModulePathOrUrl: wasmPath, logCodecsInfo: false, logCodecsTrace: false });
  })().catch((e: unknown) => {
    if (ready === p) ready = undefined;
    throw new DicomError('CODEC_FAILED', `cannot initialise the dcmjs-codecs WebAssembly module: ${e instanceof Error ? e.message : String(e)}`);
  });
  return p;
}

/** Runs one synchronous decode on an initialised module; on any throw the module is discarded. */
export async function withNativeCodecs<T>(what: string, fn: (nc: NativeCodecsType) => T): Promise<T> {
  // Another request may have discarded the instance while this one awaited; loop until it is live.
  for (;;) {
    const p = (ready ??= init());
    await p;
    if (p === ready && lib!.NativeCodecs.isInitialized()) break;
  }
  const nc = lib!.NativeCodecs;
  try {
    return fn(nc);
  } catch (e) {
    nc.release();
    ready = undefined;
    if (e instanceof DicomError) throw e;
    const msg = (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').trim();
    throw new DicomError('CODEC_FAILED', `${what} decoder failed: ${msg}`, { cause: msg });
  }
}

/** A decoder context describing the frame as the codestream says (precision), not as the header hopes. */
export function makeContext(encoded: Uint8Array, m: PixelModule, precision: number) {
  return new lib!.Context({
    width: m.columns,
    height: m.rows,
    // The IJG decoders size their output from bitsAllocated; it must follow the codestream precision.
    bitsAllocated: precision <= 8 ? 8 : 16,
    bitsStored: precision,
    samplesPerPixel: m.samplesPerPixel,
    pixelRepresentation: m.pixelRepresentation,
    planarConfiguration: 0,
    photometricInterpretation: m.photometricInterpretation,
    encodedBuffer: encoded,
  });
}

/** Typed samples from a decoded byte buffer (wasm is little endian; the buffer is a fresh copy). */
export function samplesFrom(decoded: Uint8Array | undefined, bitsPerSample: number, expectedSamples: number, what: string): Uint8Array | Uint16Array {
  const bytesPerSample = bitsPerSample > 8 ? 2 : 1;
  if (!decoded || decoded.length !== expectedSamples * bytesPerSample) {
    throw new DicomError(
      'DIMENSION_MISMATCH',
      `${what} decoded ${decoded?.length ?? 0} bytes; the header needs ${expectedSamples * bytesPerSample}`,
    );
  }
  if (bytesPerSample === 1) return decoded;
  const aligned = decoded.byteOffset % 2 === 0 ? decoded : decoded.slice();
  return new Uint16Array(aligned.buffer, aligned.byteOffset, expectedSamples);
}
