/**
 * Latency of one request, the same 256² synthetic chest DICOM through POST /segment and through the
 * Open Inference Protocol route (BYTES and FP32 inputs, JSON and binary forms), the cases taking turns:
 * median, p10 and p90 of 50 sequential requests each after 5 warm-up rounds, real listen + fetch, the
 * shipped model at the service's defaults. Then prints one binary and one JSON round trip (excerpts).
 *
 *   node --import tsx bench/oip-latency.ts
 */
import { decodeDicom } from '../core/dicom/decode.ts';
import { SegmentationProcessor } from '../core/segmentation/processor.ts';
import { ModelManifestSchema } from '../core/manifest.ts';
import { chestDicom } from '../synth/index.ts';
import { startInProcess } from '../test/service/helpers.ts';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const MODEL = 'synthetic-pneumothorax';
const MODELS = fileURLToPath(new URL('../models', import.meta.url));
const srv = await startInProcess({ MODEL_REPOSITORY: MODELS, DEFAULT_MODEL: MODEL });
const dicom = (await chestDicom(3, { size: 256, lesions: 1 })).bytes;
const mf = ModelManifestSchema.parse(JSON.parse(readFileSync(`${MODELS}/${MODEL}/1/model.json`, 'utf8')));
const tensor = SegmentationProcessor.fromManifest(mf).preprocess(await decodeDicom(dicom))[0]!;
const le = Buffer.alloc(tensor.length * 4);
tensor.forEach((v, k) => le.writeFloatLE(v, 4 * k));
const u = `${srv.url}`;
const lenPrefixed = Buffer.concat([Buffer.from(Uint32Array.of(dicom.length).buffer), Buffer.from(dicom)]);
const binary = (header: unknown, data: Buffer) => {
  const j = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([j, data]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(j.length) } };
};
const bytesBin = binary({ inputs: [{ name: 'dicom', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: lenPrefixed.length } }], outputs: [{ name: 'mask', parameters: { binary_data: true } }] }, lenPrefixed);
const fp32Bin = binary({ inputs: [{ name: 'image', shape: [1, 1, 256, 256], datatype: 'FP32', parameters: { binary_data_size: le.length } }], outputs: [{ name: 'mask', parameters: { binary_data: true } }] }, le);
const fp32BinProbs = binary({ inputs: [{ name: 'image', shape: [1, 1, 256, 256], datatype: 'FP32', parameters: { binary_data_size: le.length } }], outputs: [{ name: 'probabilities', parameters: { binary_data: true } }] }, le);
const bytesJson = JSON.stringify({ inputs: [{ name: 'dicom', shape: [1], datatype: 'BYTES', data: [Buffer.from(dicom).toString('base64')] }], outputs: [{ name: 'mask', parameters: { binary_data: true } }] });
const fp32Json = JSON.stringify({ inputs: [{ name: 'image', shape: [1, 1, 256, 256], datatype: 'FP32', data: Array.from(tensor) }], outputs: [{ name: 'mask', parameters: { binary_data: true } }] });
const fp32JsonAll = JSON.stringify({ inputs: [{ name: 'image', shape: [1, 1, 256, 256], datatype: 'FP32', data: Array.from(tensor) }], outputs: [{ name: 'mask' }, { name: 'probabilities' }] });
const cases: Array<[string, () => Promise<Response>]> = [
  ['POST /segment (application/dicom)', () => fetch(`${u}/segment?model=${MODEL}`, { method: 'POST', headers: { 'content-type': 'application/dicom' }, body: dicom })],
  ['v2 BYTES, binary in, mask binary out', () => fetch(`${u}/v2/models/${MODEL}/infer`, { method: 'POST', ...bytesBin })],
  ['v2 BYTES, JSON base64 in, mask binary out', () => fetch(`${u}/v2/models/${MODEL}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bytesJson })],
  ['v2 FP32, binary in, mask binary out', () => fetch(`${u}/v2/models/${MODEL}/infer`, { method: 'POST', ...fp32Bin })],
  ['v2 FP32, binary in, probabilities binary out', () => fetch(`${u}/v2/models/${MODEL}/infer`, { method: 'POST', ...fp32BinProbs })],
  ['v2 FP32, JSON data in, mask binary out', () => fetch(`${u}/v2/models/${MODEL}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: fp32Json })],
  ['v2 FP32, JSON in, mask+probabilities JSON out', () => fetch(`${u}/v2/models/${MODEL}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: fp32JsonAll })],
];
console.log(`request bytes: dicom ${dicom.length}, BYTES JSON ${bytesJson.length}, FP32 binary ${fp32Bin.body.length}, FP32 JSON ${fp32Json.length}`);
// Round robin: each iteration runs every case once, so load from other processes hits them alike.
const times = cases.map(() => [] as number[]);
const sizes = cases.map(() => 0);
for (let i = 0; i < 55; i++) {
  for (const [k, [name, go]] of cases.entries()) {
    const t0 = performance.now();
    const r = await go();
    const b = await r.arrayBuffer();
    if (r.status !== 200) throw new Error(`${name}: ${r.status} ${Buffer.from(b).toString()}`);
    sizes[k] = b.byteLength;
    if (i >= 5) times[k]!.push(performance.now() - t0);
  }
}
for (const [k, [name]] of cases.entries()) {
  const ms = times[k]!.sort((a, b) => a - b);
  console.log(`${name.padEnd(48)} median ${ms[25]!.toFixed(1)} ms  p10 ${ms[5]!.toFixed(1)}  p90 ${ms[45]!.toFixed(1)}  (response ${sizes[k]} B)`);
}
// A round trip for the closing note: small FP32 JSON request (excerpted) and its binary response head.
const rt = binary({ id: 'rt-1', inputs: [{ name: 'image', shape: [1, 1, 256, 256], datatype: 'FP32', parameters: { binary_data_size: le.length } }], outputs: [{ name: 'labels' }, { name: 'mask', parameters: { binary_data: true } }, { name: 'probabilities', parameters: { binary_data: true } }] }, le);
const r = await fetch(`${u}/v2/models/${MODEL}/infer`, { method: 'POST', ...rt });
const buf = Buffer.from(await r.arrayBuffer());
const hl = Number(r.headers.get('inference-header-content-length'));
console.log('--- binary round trip: request header', rt.headers, 'JSON:', rt.body.subarray(0, Number(rt.headers['inference-header-content-length'])).toString(), `+ ${le.length} bytes of FP32`);
console.log('--- response', r.status, r.headers.get('content-type'), 'inference-header-content-length', hl, 'total', buf.length, '\n', buf.subarray(0, hl).toString());
const j = await fetch(`${u}/v2/models/${MODEL}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'rt-2', inputs: [{ name: 'image', shape: [1, 1, 256, 256], datatype: 'FP32', data: Array.from(tensor) }], outputs: [{ name: 'probabilities' }] }) });
const jt = await j.text();
console.log('--- JSON round trip: request {"id":"rt-2","inputs":[{"name":"image","shape":[1,1,256,256],"datatype":"FP32","data":[' + Array.from(tensor.subarray(0, 4)).join(',') + ',...]}],"outputs":[{"name":"probabilities"}]}');
console.log('--- response', j.status, j.headers.get('content-type'), '\n', jt.slice(0, 330) + ' ...', jt.slice(-40));
await srv.close();
