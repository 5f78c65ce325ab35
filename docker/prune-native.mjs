// Deletes onnxruntime-node's prebuilt binaries for every platform but the one this runs on
// (about 245 MB of darwin/win32/other-arch libraries), so images pull and start faster.
// Fails instead of silently keeping them when the package layout changes.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = 'node_modules/onnxruntime-node/bin/napi-v6';
const keep = `${process.platform}/${process.arch}`;
if (!existsSync(join(root, keep))) {
  console.error(`prune-native: ${join(root, keep)} not found; onnxruntime-node's layout changed, update docker/prune-native.mjs`);
  process.exit(1);
}
let removed = 0;
for (const os of readdirSync(root)) {
  for (const arch of readdirSync(join(root, os))) {
    if (`${os}/${arch}` === keep) continue;
    rmSync(join(root, os, arch), { recursive: true, force: true });
    removed++;
  }
  if (readdirSync(join(root, os)).length === 0) rmSync(join(root, os), { recursive: true });
}
console.log(`prune-native: kept ${keep}, removed ${removed} other platform folder(s)`);
