/**
 * Post-processing rules as query parameters of POST /segment: applied (the answer's masks report the
 * rule and obey it), and a bad value is a 400 naming the parameter.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMask } from '../../core/rle/index.ts';
import { connectedComponents } from '../../core/segmentation/components.ts';
import { modelRepository, postDicom, startInProcess, testDicom, type InProcess } from './helpers.ts';

let svc: InProcess;
let repo: { dir: string; remove: () => Promise<void> };
before(async () => {
  repo = await modelRepository();
  svc = await startInProcess({ MODEL_REPOSITORY: repo.dir });
});
after(async () => {
  await svc.close();
  await repo.remove();
});

interface Answer {
  masks: Array<{ area: number; keepLargest?: boolean; minComponentArea?: number; rle: { counts: number[]; size: [number, number] } }>;
}

test('keepLargest and minComponentArea reach the masks; bad values name the parameter', async () => {
  const dicom = testDicom({ rows: 96, columns: 96 });
  const components = (a: Answer) => connectedComponents(decodeMask(a.masks[0]!.rle.counts, 'coco', a.masks[0]!.rle.size[0], a.masks[0]!.rle.size[1])).areas.slice(1);
  // A threshold that breaks the random-weight fixture's mask into several pieces.
  let plain: Answer | undefined;
  let t = 0;
  for (const th of [0.6, 0.7, 0.8, 0.9, 0.5, 0.4]) {
    const a = (await (await postDicom(svc.url, dicom, `?rleFormat=coco&threshold=${th}`)).json()) as Answer;
    if (components(a).length > 1) {
      plain = a;
      t = th;
      break;
    }
  }
  assert.ok(plain, 'some threshold gives a mask of several components');
  const largest = (await (await postDicom(svc.url, dicom, `?rleFormat=coco&threshold=${t}&keepLargest=true`)).json()) as Answer;
  assert.equal(largest.masks[0]!.keepLargest, true);
  assert.deepEqual(components(largest), [Math.max(...components(plain))]);
  const min = Math.max(...components(plain));
  const filtered = (await (await postDicom(svc.url, dicom, `?rleFormat=coco&threshold=${t}&minComponentArea=${min}`)).json()) as Answer;
  assert.equal(filtered.masks[0]!.minComponentArea, min);
  assert.ok(components(filtered).every((a) => a >= min));
  assert.equal(plain.masks[0]!.keepLargest, undefined, 'rules not in force are not reported');

  const bad = await postDicom(svc.url, dicom, '?minComponentArea=-1');
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { detail: string }).detail, /minComponentArea/);
});
