/** A worker for the pool's own tests: echoes, sleeps, spins (blocks synchronously), throws typed errors, or dies on request. */
import { DicomError } from '../../dicom/errors.ts';
import { PreprocessError } from '../../preprocess/errors.ts';
import { RleError } from '../../rle/errors.ts';
import { ModelInvalidError } from '../errors.ts';
import { serve } from '../worker-rpc.ts';

type Msg =
  | { type: 'echo'; value: unknown }
  | { type: 'sleep'; ms: number; value?: unknown }
  | { type: 'spin'; ms: number; value?: unknown }
  | { type: 'exit'; code: number }
  | { type: 'dicom-error' }
  | { type: 'preprocess-error' }
  | { type: 'rle-error' }
  | { type: 'model-invalid' }
  | { type: 'type-error' }
  | { type: 'double'; data: Float32Array }
  | { type: 'init' };

serve<Msg>(async (msg) => {
  switch (msg.type) {
    case 'init':
    case 'echo':
      return { result: msg.type === 'echo' ? msg.value : 'ready' };
    case 'sleep':
      await new Promise((r) => setTimeout(r, msg.ms));
      return { result: msg.value ?? null };
    case 'spin': {
      // Synchronous: the event loop of this worker is blocked, as in a stuck wasm codec.
      const until = Date.now() + msg.ms;
      while (Date.now() < until);
      return { result: msg.value ?? null };
    }
    case 'exit':
      process.exit(msg.code);
    case 'dicom-error':
      throw new DicomError('TRUNCATED', 'file ends inside an element', { offset: 12 });
    case 'preprocess-error':
      throw new PreprocessError('INVALID_IMAGE', 'image has 3 pixel values, expected 2x2=4');
    case 'rle-error':
      throw new RleError('run 3 extends past the mask', { format: 'siim', index: 3 });
    case 'model-invalid':
      throw new ModelInvalidError('unet:2', 'unet:2: output has 2 channels, manifest 1');
    case 'type-error':
      throw new TypeError('x is not a function');
    case 'double': {
      const out = new Float32Array(msg.data.length);
      for (let i = 0; i < out.length; i++) out[i] = msg.data[i]! * 2;
      return { result: out, transfer: [out.buffer] };
    }
  }
});
