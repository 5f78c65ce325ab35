"""
The FastAPI + PyTorch service bench/realpath compares ours against: what a competent notebook
author would wrap around the same UNet. Bench-only (Debian python3-torch, -fastapi, -uvicorn,
-pydicom, -numpy, -pil, -onnx: scripts/bench-deps.sh); never used by the service or `npm test`.

POST /segment with the DICOM file as the body (Content-Type: application/dicom):
pydicom decode -> modality LUT -> per-image min-max to [0, 1] (the manifest's `minmax` intensity)
-> torch bilinear interpolate (antialias) to the model size -> UNet -> sigmoid -> bilinear
interpolate back to the image size -> threshold -> numpy RLE (column-major start/length pairs,
the SIIM notebooks' rle_encode) -> JSON.

Same weights: the UNet below mirrors trainer/model/unet.ts (encoder/decoder blocks of
conv3x3+BN+ReLU, 2x2 max-pool, ConvTranspose or Resize+1x1 conv up-sampling, 1x1 head) and its
parameters are the initializers of our model.onnx, read with the `onnx` package and loaded with
load_state_dict(strict=True). With PARITY_INPUT/PARITY_LOGITS (raw float32 files written by
bench/realpath/run.ts from onnxruntime-node on the same ONNX) it checks its logits against ORT's at
start-up and refuses to serve if they differ.

Configuration (environment, so `--workers N` children see it too): MODEL_DIR (holds model.onnx
and model.json), TORCH_THREADS (default: cores / uvicorn workers), PY_HANDLER (`threadpool`,
the default: a plain `def` endpoint, FastAPI runs it in its thread pool; `serial`: `async def`,
one request at a time on the event loop).

  /usr/bin/python3 bench/realpath/fastapi_service.py --port 8000 [--workers 1]
"""
import argparse
import io
import json
import os
import sys
import threading
import time

import numpy as np
import onnx
import pydicom
import torch
import torch.nn as nn
import torch.nn.functional as F
import uvicorn
from fastapi import Body, FastAPI, HTTPException
from onnx import numpy_helper
from pydicom.pixel_data_handlers.util import apply_modality_lut


class ConvBnRelu(nn.Module):
    def __init__(self, cin, cout, folded):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=folded)
        self.bn = nn.Identity() if folded else nn.BatchNorm2d(cout, eps=1e-5)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class UNet(nn.Module):
    """trainer/model/unet.ts in torch: same blocks, same parameter names (mapped in load_onnx)."""

    def __init__(self, depth, base, in_ch, classes, upsample, folded):
        super().__init__()
        self.depth, self.upsample = depth, upsample
        ch = lambda l: base * 2**l
        self.enc = nn.ModuleList(
            nn.Sequential(ConvBnRelu(in_ch if l == 0 else ch(l - 1), ch(l), folded), ConvBnRelu(ch(l), ch(l), folded))
            for l in range(depth + 1)
        )
        # Decoder lists are indexed by level l (0 = full resolution), run from depth-1 down to 0.
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(ch(l + 1), ch(l), 2, stride=2) if upsample == "transpose" else nn.Conv2d(ch(l + 1), ch(l), 1)
            for l in range(depth)
        )
        self.dec = nn.ModuleList(
            nn.Sequential(ConvBnRelu(2 * ch(l), ch(l), folded), ConvBnRelu(ch(l), ch(l), folded)) for l in range(depth)
        )
        self.head = nn.Conv2d(base, classes, 1)

    def forward(self, x):
        skips = []
        for l in range(self.depth + 1):
            x = self.enc[l](x)
            if l < self.depth:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for l in range(self.depth - 1, -1, -1):
            if self.upsample == "nearest":
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            elif self.upsample == "bilinear":
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = self.dec[l](torch.cat([skips[l], self.up[l](x)], 1))
        return self.head(x)


def load_onnx(path):
    """Build the UNet from the ONNX's `architecture` metadata and load its initializers as weights."""
    m = onnx.load(path)
    meta = {p.key: p.value for p in m.metadata_props}
    arch = json.loads(meta["architecture"])
    folded = meta.get("batchNorm") == "folded"
    net = UNet(arch["depth"], arch["baseChannels"], arch["inChannels"], arch["classes"], arch["upsample"], folded)
    rename = {"bn.scale": "bn.weight", "bn.bias": "bn.bias", "bn.mean": "bn.running_mean", "bn.var": "bn.running_var"}
    state = {}
    for t in m.graph.initializer:
        name = t.name
        if name.startswith("up_scales"):  # the Resize scales constant, not a weight
            continue
        for k, v in rename.items():
            name = name.replace(k, v)
        # enc{l}.{i}.x -> enc.{l}.{i}.x ; dec{l}.up.x -> up.{l}.x ; dec{l}.{i}.x -> dec.{l}.{i}.x
        head, _, rest = name.partition(".")
        if head.startswith("enc"):
            name = f"enc.{head[3:]}.{rest}"
        elif head.startswith("dec"):
            name = f"up.{head[3:]}.{rest[3:]}" if rest.startswith("up.") else f"dec.{head[3:]}.{rest}"
        state[name] = torch.from_numpy(numpy_helper.to_array(t).copy())
    expected = net.state_dict()
    for k in expected:
        if k.endswith("num_batches_tracked"):
            state[k] = expected[k]
    net.load_state_dict(state, strict=True)  # every parameter from the ONNX, every initializer used
    return net.eval(), arch


MODEL_DIR = os.environ.get("MODEL_DIR", "")
WORKERS = int(os.environ.get("UVICORN_WORKERS", "1"))
torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "0")) or max(1, (os.cpu_count() or 1) // WORKERS))
model, arch = load_onnx(os.path.join(MODEL_DIR, "model.onnx"))
manifest = json.load(open(os.path.join(MODEL_DIR, "model.json")))
H, W = manifest["preprocessing"]["size"]["height"], manifest["preprocessing"]["size"]["width"]
THRESHOLD = manifest["postprocessing"]["threshold"]
LABELS = manifest["labels"]

if os.environ.get("PARITY_INPUT"):
    x = np.fromfile(os.environ["PARITY_INPUT"], dtype=np.float32).reshape(1, arch["inChannels"], H, W)
    ref = np.fromfile(os.environ["PARITY_LOGITS"], dtype=np.float32).reshape(1, arch["classes"], H, W)
    with torch.inference_mode():
        got = model(torch.from_numpy(x)).numpy()
    diff = float(np.abs(got - ref).max())
    scale = max(1.0, float(np.abs(ref).max()))
    print(f"parity: torch vs onnxruntime logits max |diff| {diff:.3g} (max |logit| {scale:.3g})", file=sys.stderr, flush=True)
    if diff > 1e-3 * scale:
        sys.exit("parity check failed: the torch module does not reproduce the ONNX model")

# Per-stage wall time, summed (GET /stats), for the bench's per-stage columns.
stats = {"images": 0, "decode": 0.0, "preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}
stats_lock = threading.Lock()


def rle_encode(mask):
    """Column-major 1-based start/length pairs (the SIIM notebooks' rle_encode)."""
    pixels = np.concatenate([[0], mask.flatten(order="F").astype(np.uint8), [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return " ".join(map(str, runs))


def segment_bytes(body: bytes):
    t0 = time.perf_counter()
    try:
        ds = pydicom.dcmread(io.BytesIO(body))
        img = apply_modality_lut(ds.pixel_array, ds).astype(np.float32)
    except Exception as e:
        raise HTTPException(422, f"cannot decode DICOM: {e}")
    rows, cols = img.shape[-2:]
    t1 = time.perf_counter()
    lo, hi = float(img.min()), float(img.max())
    x = np.clip((img - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(img)
    t = torch.from_numpy(x).reshape(1, 1, rows, cols)
    if (rows, cols) != (H, W):
        t = F.interpolate(t, size=(H, W), mode="bilinear", align_corners=False, antialias=True)
    t2 = time.perf_counter()
    with torch.inference_mode():
        prob = torch.sigmoid(model(t))
        t3 = time.perf_counter()
        if (rows, cols) != (H, W):
            prob = F.interpolate(prob, size=(rows, cols), mode="bilinear", align_corners=False)
        masks = (prob[0] > THRESHOLD).numpy()
    out = [{"label": LABELS[c], "area": int(masks[c].sum()), "rle": rle_encode(masks[c])} for c in range(masks.shape[0])]
    t4 = time.perf_counter()
    with stats_lock:
        stats["images"] += 1
        stats["decode"] += t1 - t0
        stats["preprocess"] += t2 - t1
        stats["inference"] += t3 - t2
        stats["postprocess"] += t4 - t3
    return {"model": manifest["name"], "rows": int(rows), "columns": int(cols), "masks": out}


app = FastAPI()

if os.environ.get("PY_HANDLER", "threadpool") == "serial":

    @app.post("/segment")
    async def segment(body: bytes = Body(..., media_type="application/dicom")):
        return segment_bytes(body)

else:

    @app.post("/segment")
    def segment(body: bytes = Body(..., media_type="application/dicom")):
        return segment_bytes(body)


@app.get("/healthz")
def healthz():
    return {"ok": True}


@app.get("/stats")
def get_stats():
    with stats_lock:
        return dict(stats)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()
    if a.workers > 1:
        os.environ["UVICORN_WORKERS"] = str(a.workers)
        uvicorn.run("fastapi_service:app", host=a.host, port=a.port, workers=a.workers, app_dir=os.path.dirname(os.path.abspath(__file__)))
    else:
        uvicorn.run(app, host=a.host, port=a.port)
