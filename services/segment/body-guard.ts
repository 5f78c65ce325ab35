/**
 * Request bodies under a deadline and a memory budget (issue 15, defect 3). Without it a client that
 * sends headers and then a byte now and then (or nothing) holds its connection and whatever it sent
 * for ever; ten stalled 60 MiB uploads pinned ~500 MiB.
 *
 * - The whole body must arrive within `bodyTimeoutMs` of the headers, and no gap between two chunks
 *   may exceed `bodyIdleTimeoutMs`: otherwise the request is answered 408 (problem+json, code
 *   BODY_TIMEOUT) with `Connection: close`, and Node closes the socket after that answer.
 * - At most `maxInflightBodyBytes` of request bodies are received or held at once (each counts its
 *   Content-Length, or `bodyLimitBytes` when chunked, until its response is finished or its socket
 *   closes); a request beyond that is answered 503 (code BODY_CAPACITY, Retry-After) before any byte
 *   of its body is read.
 *
 * Runs in onRequest after authentication (registered after the auth plugin), so an unauthenticated
 * client can neither hold the budget nor learn about it. Arrival is watched where Node's HTTP parser
 * hands body bytes to the request stream (`IncomingMessage.push`), so it covers every body form
 * (raw DICOM through Fastify's parser, multipart through busboy) whether or not a consumer is reading.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Problem, sendProblem } from '../problem.ts';

export interface BodyGuardOptions {
  bodyTimeoutMs: number;
  bodyIdleTimeoutMs: number;
  bodyLimitBytes: number;
  maxInflightBodyBytes: number;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Bytes of request bodies currently reserved (for tests and the chaos suite's figures). */
    inflightBodyBytes: () => number;
  }
}

function declaredLength(request: FastifyRequest): number | undefined {
  const h = request.headers['content-length'];
  if (h === undefined) return undefined;
  const n = Number(h);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

const hasBody = (request: FastifyRequest) => request.headers['transfer-encoding'] !== undefined || (declaredLength(request) ?? 0) > 0;

export default fp(
  async (app, opts: BodyGuardOptions) => {
    let inflight = 0;
    app.decorate('inflightBodyBytes', () => inflight);

    const timeOut = (request: FastifyRequest, reply: FastifyReply, detail: string) => {
      if (reply.sent || request.raw.complete) return;
      request.log.info({ status: 408, received: request.raw.readableLength }, `request body timed out: ${detail}`);
      reply.header('connection', 'close');
      sendProblem(reply, new Problem('request-timeout', detail, { code: 'BODY_TIMEOUT' }));
    };

    app.addHook('onRequest', async (request, reply) => {
      if (!hasBody(request)) return;
      const reserve = Math.min(declaredLength(request) ?? opts.bodyLimitBytes, opts.bodyLimitBytes);
      if (inflight + reserve > opts.maxInflightBodyBytes) {
        reply.header('connection', 'close');
        throw new Problem(
          'overloaded',
          `too many request bodies in flight (${inflight} of MAX_INFLIGHT_BODY_BYTES ${opts.maxInflightBodyBytes} bytes held, this one needs ${reserve}); retry shortly`,
          { code: 'BODY_CAPACITY', retryAfterSeconds: 1 },
        );
      }
      inflight += reserve;
      const raw = request.raw;
      let idle: NodeJS.Timeout | undefined;
      const armIdle = () => {
        clearTimeout(idle);
        idle = setTimeout(() => timeOut(request, reply, `no request body bytes for ${opts.bodyIdleTimeoutMs} ms (BODY_IDLE_TIMEOUT_MS)`), opts.bodyIdleTimeoutMs);
      };
      const deadline = setTimeout(() => timeOut(request, reply, `the request body did not arrive within ${opts.bodyTimeoutMs} ms (BODY_TIMEOUT_MS)`), opts.bodyTimeoutMs);
      armIdle();
      const push = raw.push;
      raw.push = function (chunk: unknown, encoding?: BufferEncoding): boolean {
        if (chunk === null) {
          clearTimeout(idle);
          clearTimeout(deadline);
        } else armIdle();
        return push.call(this, chunk, encoding);
      };
      let released = false;
      reply.raw.once('close', () => {
        clearTimeout(idle);
        clearTimeout(deadline);
        if (!released) {
          released = true;
          inflight -= reserve;
        }
      });
    });
  },
  { fastify: '5.x', name: 'body-guard' },
);
