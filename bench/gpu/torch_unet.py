#!/usr/bin/env python3
"""PyTorch eager reference for the GPU benchmark: the trainer's UNet (trainer/model/unet.ts) rebuilt
layer for layer, timed for inference and for one training step on the same device.

Architecture mirrored from trainer/model/unet.ts:
  encoder level l = 0..depth: two (3x3 conv, padding 1, no bias) + BatchNorm2d(eps 1e-5, momentum 0.1)
  + ReLU at base * 2^l channels; levels 0..depth-1 are followed by MaxPool2d(2, 2);
  decoder level l = depth-1..0: upsample level l+1 to base * 2^l channels (ConvTranspose2d 2x2 stride 2
  with bias, or nearest / bilinear(align_corners=False) x2 followed by a 1x1 conv with bias),
  concatenate [skip, upsampled], two conv+BN+ReLU; a 1x1 head conv with bias gives the logits.
Loss: the trainer's ComboLoss (bce 3, dice 1, focal 4 by default; trainer/model/loss.ts), Adam.

Inference is timed with input and output on CPU tensors copied each run (io=cpu, what onnxruntime-node
does with CPU tensors) and with the input resident on the device (io=device, the usual PyTorch figure).
cudnn.benchmark is on by default, as ORT's CUDA EP searches convolution algorithms exhaustively.

  python3 bench/gpu/torch_unet.py --device cuda [--sizes 256,512] [--batches 1,8,32] [--seconds 3]
      [--train-size 256 --train-batch 8 --train-steps 200] [--expect-params N] [--quick]

The last line of stdout is `TORCH_JSON {...}`; progress goes to stderr.
"""
import argparse
import json
import os
import statistics
import sys
import time


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def build_unet(nn, torch, in_ch, classes, depth, base, upsample):
    def conv_bn_relu(cin, cout):
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1),
            nn.ReLU(inplace=True),
        )

    def block(cin, cout):
        return nn.Sequential(conv_bn_relu(cin, cout), conv_bn_relu(cout, cout))

    def ch(level):
        return base * 2 ** level

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.ModuleList([block(in_ch if l == 0 else ch(l - 1), ch(l)) for l in range(depth + 1)])
            self.pool = nn.MaxPool2d(2, 2)
            self.up = nn.ModuleList()
            self.dec = nn.ModuleList()
            for l in reversed(range(depth)):
                cin, cout = ch(l + 1), ch(l)
                if upsample == "transpose":
                    up = nn.ConvTranspose2d(cin, cout, 2, stride=2)
                elif upsample == "nearest":
                    up = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 1))
                else:
                    up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), nn.Conv2d(cin, cout, 1))
                self.up.append(up)
                self.dec.append(block(2 * cout, cout))
            self.head = nn.Conv2d(ch(0), classes, 1)

        def forward(self, x):
            skips = []
            for l, b in enumerate(self.enc):
                x = b(x)
                if l < depth:
                    skips.append(x)
                    x = self.pool(x)
            for i, (up, dec) in enumerate(zip(self.up, self.dec)):
                x = dec(torch.cat([skips[depth - 1 - i], up(x)], 1))
            return self.head(x)

    return UNet()


def combo_loss(torch, logits, target, w_bce, w_dice, w_focal, smooth=1.0):
    """trainer/model/loss.ts in PyTorch: BCE-with-logits mean, batch-wide soft dice per class, focal (gamma 2)."""
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    axes = [0] + list(range(2, logits.dim()))
    inter = (p * target).sum(dim=axes)
    dice = (1 - (2 * inter + smooth) / (p.sum(dim=axes) + target.sum(dim=axes) + smooth)).mean()
    pc = p.clamp(1e-8, 1 - 1e-8)
    tc = target.clamp(1e-8, 1 - 1e-8)
    pt = (1 - tc) * (1 - pc) + tc * pc
    focal = (-((1 - pt) ** 2) * torch.log(pt)).mean()
    total = 0
    for value, weight in ((bce, w_bce), (dice, w_dice), (focal, w_focal)):
        if weight:
            total = total + weight * value
    return total.clamp(min=1e-5)


def timed(fn, seconds, min_runs=3):
    times = []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds or len(times) < min_runs:
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return times, (time.perf_counter() - t0) * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--device-id", type=int, default=0)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--base", type=int, default=16)
    ap.add_argument("--in-ch", type=int, default=1)
    ap.add_argument("--classes", type=int, default=1)
    ap.add_argument("--upsample", default="transpose", choices=["transpose", "nearest", "bilinear"])
    ap.add_argument("--sizes", default="256,512")
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--train-size", type=int, default=256)
    ap.add_argument("--train-batch", type=int, default=8)
    ap.add_argument("--train-steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--loss", default="3,1,4", help="bce,dice,focal weights")
    ap.add_argument("--expect-params", type=int, default=None)
    ap.add_argument("--no-cudnn-benchmark", action="store_true")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quick", action="store_true", help="tiny sizes and few steps (dry run on CPU)")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.batches, args.seconds = "64,128", "1,4", 0.3
        args.train_size, args.train_batch, args.train_steps = 64, 2, 3

    out = {"ok": False, "device": args.device}
    try:
        import torch
        import torch.nn as nn
    except Exception as e:  # torch missing: say so in the JSON, the kit reports it
        out["error"] = f"torch not importable: {e}"
        print("TORCH_JSON " + json.dumps(out))
        return 1

    out["torch"] = torch.__version__
    out["cuda"] = torch.version.cuda
    if args.device == "cuda":
        if not torch.cuda.is_available():
            out["error"] = "torch.cuda.is_available() is False"
            print("TORCH_JSON " + json.dumps(out))
            return 1
        dev = torch.device("cuda", args.device_id)
        torch.cuda.set_device(dev)
        out["gpu"] = torch.cuda.get_device_name(dev)
        torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
        out["cudnn"] = torch.backends.cudnn.version()
    else:
        dev = torch.device("cpu")
        torch.set_num_threads(args.threads)
    out["cudnnBenchmark"] = bool(torch.backends.cudnn.benchmark)
    out["tf32"] = {"conv": bool(torch.backends.cudnn.allow_tf32), "matmul": bool(torch.backends.cuda.matmul.allow_tf32)}
    out["channelsLast"] = args.channels_last

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    torch.manual_seed(1)
    model = build_unet(nn, torch, args.in_ch, args.classes, args.depth, args.base, args.upsample).to(dev)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    out["config"] = {"depth": args.depth, "base": args.base, "inChannels": args.in_ch, "classes": args.classes, "upsample": args.upsample}
    out["params"] = params
    if args.expect_params is not None:
        out["expectParams"] = args.expect_params
        out["paramsMatch"] = params == args.expect_params
        if params != args.expect_params:
            log(f"PARAMETER COUNT MISMATCH: torch {params}, expected {args.expect_params}")
    log(f"torch {torch.__version__} on {out.get('gpu', 'cpu')}: UNet depth {args.depth} base {args.base} {args.upsample}, {params} parameters")

    inference = []
    model.eval()
    with torch.inference_mode():
        for size in [int(s) for s in args.sizes.split(",")]:
            for batch in [int(b) for b in args.batches.split(",")]:
                x_cpu = torch.rand(batch, args.in_ch, size, size)
                x_dev = x_cpu.to(dev).contiguous(memory_format=fmt)

                def run_cpu_io():
                    model(x_cpu.to(dev).contiguous(memory_format=fmt)).cpu()

                def run_dev_io():
                    model(x_dev)
                    sync()

                for io, fn in (("cpu", run_cpu_io), ("device", run_dev_io)):
                    t = time.perf_counter()
                    fn()
                    first_ms = (time.perf_counter() - t) * 1000
                    fn()
                    fn()
                    times, total = timed(fn, args.seconds)
                    row = {
                        "size": size,
                        "batch": batch,
                        "io": io,
                        "firstRunMs": first_ms,
                        "runs": len(times),
                        "imagesPerSec": len(times) * batch * 1000 / total,
                        "msPerBatchMedian": statistics.median(times),
                    }
                    inference.append(row)
                    log(f"  infer {size}^2 batch {batch} io={io}: {row['imagesPerSec']:.1f} img/s, {row['msPerBatchMedian']:.2f} ms/batch (first {first_ms:.0f} ms)")
                del x_dev
    out["inference"] = inference

    w = [float(v) for v in args.loss.split(",")]
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(3)
    n, s = args.train_batch, args.train_size
    images = torch.rand(n, args.in_ch, s, s, generator=gen)
    masks = (torch.rand(n, args.classes, s, s, generator=gen) < 0.05).float()

    def step():
        x = images.to(dev).contiguous(memory_format=fmt)
        t = masks.to(dev)
        opt.zero_grad(set_to_none=True)
        loss = combo_loss(torch, model(x), t, w[0], w[1], w[2])
        loss.backward()
        opt.step()
        return loss.item()  # the trainer reads its losses every step, which also synchronises

    t = time.perf_counter()
    loss_first = step()
    first_ms = (time.perf_counter() - t) * 1000
    times = []
    loss_last = loss_first
    for _ in range(args.train_steps):
        t = time.perf_counter()
        loss_last = step()
        times.append((time.perf_counter() - t) * 1000)
    out["train"] = {
        "size": s,
        "batch": n,
        "steps": len(times),
        "firstStepMs": first_ms,
        "stepMsMedian": statistics.median(times) if times else None,
        "stepMsMean": statistics.fmean(times) if times else None,
        "imagesPerSec": n * 1000 / statistics.fmean(times) if times else None,
        "lossFirst": loss_first,
        "lossLast": loss_last,
    }
    log(f"  train {s}^2 batch {n}: median {out['train']['stepMsMedian']:.2f} ms/step over {len(times)} steps (first {first_ms:.0f} ms)")
    if dev.type == "cuda":
        out["maxMemoryAllocatedMiB"] = torch.cuda.max_memory_allocated(dev) / 2**20
    out["ok"] = True
    print("TORCH_JSON " + json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
