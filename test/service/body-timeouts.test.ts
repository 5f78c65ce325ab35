/**
 * Issue 15, defect 3: request bodies under deadlines and a memory budget, driven by real slow clients
 * over raw sockets. A stalled upload (headers, a few bytes, then nothing) and a trickling one (a byte
 * now and then, never idle long enough) are answered 408 problem+json and their connections closed;
 * bodies beyond MAX_INFLIGHT_BODY_BYTES are refused 503 with Retry-After before being read; a
 * stalled multipart upload is caught too; and normal requests keep being served meanwhile.
 * (Before: requestTimeout/connectionTimeout were 0 and nothing answered: the sockets stayed open.)
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { modelRepository, postDicom, startInProcess, testDicom, type InProcess } from './helpers.ts';

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** ms from the first byte sent to the answer's arrival. */
  answeredMs: number;
  /** ms from the first byte sent until the server closed the connection. */
  closedMs: number;
}

/** Opens a socket, sends `head`, then calls `drip(socket)`; resolves with the answer once the server closes. */
function rawRequest(url: string, head: string, drip: (s: Socket) => void, maxMs = 20_000): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), hostname);
    const t0 = performance.now();
    let data = '';
    let answeredMs = -1;
    const guard = setTimeout(() => {
      s.destroy();
      reject(new Error(`no close within ${maxMs} ms; got so far: ${JSON.stringify(data.slice(0, 300))}`));
    }, maxMs);
    s.on('data', (d) => {
      if (answeredMs < 0) answeredMs = performance.now() - t0;
      data += d.toString('latin1');
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(guard);
      const [headText = '', body = ''] = data.split('\r\n\r\n');
      const [statusLine = '', ...lines] = headText.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1] ?? 0), headers, body, answeredMs, closedMs: performance.now() - t0 });
    });
    s.on('connect', () => {
      s.write(head);
      drip(s);
    });
  });
}

const dicomHead = (length: number, path = '/segment') =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/dicom\r\nContent-Length: ${length}\r\n\r\n`;

describe('request body timeouts and in-flight budget (real slow sockets)', () => {
  let srv: InProcess;
  let repo: { remove: () => Promise<void> };
  const LIMIT = 1024 * 1024;
  before(async () => {
    const r = await modelRepository();
    repo = r;
    srv = await startInProcess({
      MODEL_REPOSITORY: r.dir,
      BODY_LIMIT_BYTES: String(LIMIT),
      BODY_IDLE_TIMEOUT_MS: '600',
      BODY_TIMEOUT_MS: '2000',
      MAX_INFLIGHT_BODY_BYTES: String(Math.floor(2.5 * LIMIT)),
    });
  });
  after(async () => {
    await srv?.close();
    await repo?.remove();
  });

  it('a stalled upload is answered 408 problem+json after BODY_IDLE_TIMEOUT_MS and its connection closed', async () => {
    const a = await rawRequest(srv.url, dicomHead(LIMIT - 10), (s) => s.write(Buffer.alloc(100)));
    assert.equal(a.status, 408, JSON.stringify(a));
    assert.match(a.headers['content-type'] ?? '', /application\/problem\+json/);
    const body = JSON.parse(a.body) as { code: string; detail: string };
    assert.equal(body.code, 'BODY_TIMEOUT');
    assert.match(body.detail, /BODY_IDLE_TIMEOUT_MS/);
    assert.equal(a.headers.connection, 'close');
    assert.ok(a.answeredMs >= 500 && a.answeredMs < 3000, `answered after ${a.answeredMs.toFixed(0)} ms`);
    assert.ok(a.closedMs < a.answeredMs + 2000, `closed ${a.closedMs.toFixed(0)} ms`);
  });

  it('a trickling upload (never idle long enough) is answered 408 at BODY_TIMEOUT_MS', async () => {
    let timer: NodeJS.Timeout | undefined;
    const a = await rawRequest(srv.url, dicomHead(LIMIT - 10), (s) => {
      timer = setInterval(() => s.writable && s.write(Buffer.alloc(16)), 200);
      s.on('close', () => clearInterval(timer));
    });
    clearInterval(timer);
    assert.equal(a.status, 408, JSON.stringify(a));
    const body = JSON.parse(a.body) as { code: string; detail: string };
    assert.equal(body.code, 'BODY_TIMEOUT');
    assert.match(body.detail, /BODY_TIMEOUT_MS/);
    assert.ok(a.answeredMs >= 1900 && a.answeredMs < 5000, `answered after ${a.answeredMs.toFixed(0)} ms`);
  });

  it('a stalled multipart upload is answered 408 too', async () => {
    const boundary = 'XyZ';
    const start = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.dcm"\r\nContent-Type: application/dicom\r\n\r\n`;
    const head = `POST /segment HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${LIMIT - 100}\r\n\r\n`;
    const a = await rawRequest(srv.url, head, (s) => s.write(start + 'x'.repeat(50)));
    assert.equal(a.status, 408, JSON.stringify(a));
    assert.equal((JSON.parse(a.body) as { code: string }).code, 'BODY_TIMEOUT');
  });

  it('bodies beyond MAX_INFLIGHT_BODY_BYTES are refused 503 with Retry-After before being read; good requests are served meanwhile', async () => {
    // Two stalled uploads of 1 MiB each hold 2 of the 2.5 MiB budget until they time out.
    const sockets: Socket[] = [];
    const stalled = [0, 1].map(() =>
      rawRequest(srv.url, dicomHead(LIMIT - 10), (s) => {
        sockets.push(s);
        s.write(Buffer.alloc(10));
      }),
    );
    await new Promise((r) => setTimeout(r, 150));
    const third = await rawRequest(srv.url, dicomHead(LIMIT - 10), () => undefined);
    assert.equal(third.status, 503, JSON.stringify(third));
    assert.equal((JSON.parse(third.body) as { code: string }).code, 'BODY_CAPACITY');
    assert.ok(Number(third.headers['retry-after']) >= 1);
    assert.ok(third.answeredMs < 500, `refused at once (${third.answeredMs.toFixed(0)} ms)`);
    // A small request still fits in the budget and is served.
    const ok = await postDicom(srv.url, testDicom());
    assert.equal(ok.status, 200);
    await ok.arrayBuffer();
    for (const a of await Promise.all(stalled)) assert.equal(a.status, 408);
    // Budget released: a full-size body is accepted again (answered, not refused).
    const again = await postDicom(srv.url, new Uint8Array(LIMIT - 10));
    assert.notEqual(again.status, 503);
    await again.arrayBuffer();
    assert.equal(srv.service.app.inflightBodyBytes(), 0);
  });
});
