/**
 * Closed-loop load from its own process (forked by run.ts, talks over IPC): `clients` loops, each
 * on its own keep-alive connection, POST a DICOM body (round-robin over the files given), wait for
 * the whole answer, send the next. Warm-up, then the measured window, then stop sending and let
 * the in-flight answers drain (not counted). The parent gets {event:'window-start'} and
 * {event:'window-end'} when the window opens and closes (to read the server's CPU and counters at
 * the same instants) and then the result: answers completed inside the window, their latency
 * percentiles, and non-200 answers / errors.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({
  options: {
    url: { type: 'string' },
    body: { type: 'string', multiple: true },
    clients: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '4' },
    duration: { type: 'string', default: '20' },
  },
});

const url = new URL(a.url!);
const bodies = a.body!.map((f) => readFileSync(f));
const clients = Number(a.clients);
const agent = new Agent({ keepAlive: true, maxSockets: clients });
const send = (msg: unknown) => (process.send ? process.send(msg) : console.log(JSON.stringify(msg)));

function post(body: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      { host: url.hostname, port: url.port, path: url.pathname + url.search, method: 'POST', agent, headers: { 'content-type': 'application/dicom', 'content-length': body.length } },
      (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(-1));
      },
    );
    req.setTimeout(300_000, () => req.destroy());
    req.on('error', () => resolve(-1));
    req.end(body);
  });
}

const t0 = Date.now();
const windowStart = t0 + Number(a.warmup) * 1000;
const windowEnd = windowStart + Number(a.duration) * 1000;
const latencies: number[] = [];
let failed = 0;
let failedTotal = 0;
let next = 0;

const loop = async () => {
  while (Date.now() < windowEnd) {
    const body = bodies[next++ % bodies.length]!;
    const start = Date.now();
    const status = await post(body);
    const end = Date.now();
    if (status !== 200) failedTotal++;
    if (end >= windowStart && end <= windowEnd) {
      if (status === 200) latencies.push(end - start);
      else failed++;
    }
  }
};
setTimeout(() => send({ event: 'window-start' }), windowStart - Date.now());
setTimeout(() => send({ event: 'window-end' }), windowEnd - Date.now());
await Promise.all(Array.from({ length: clients }, loop));
latencies.sort((x, y) => x - y);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
send({
  event: 'result',
  ok: latencies.length,
  failed,
  failedTotal,
  seconds: (windowEnd - windowStart) / 1000,
  imagesPerSecond: latencies.length / ((windowEnd - windowStart) / 1000),
  p50Ms: pct(0.5),
  p99Ms: pct(0.99),
});
agent.destroy();
process.disconnect?.();
