/**
 * CORS for browser viewers (OHIF and the like, issue 13): CORS_ORIGINS names the web origins whose
 * pages may call this API (`*` for any; unset = no CORS headers at all, the default).
 *
 * Registered before the bearer check, so a preflight (which browsers send without the Authorization
 * header) is answered 204 by @fastify/cors itself, and the CORS headers are on every later answer of
 * an allowed origin, 401 and other problems included (a page can read why it was refused). A request
 * from an origin not on the list gets no CORS headers: its preflight falls through to the 404 problem,
 * and the browser refuses the page the answer. Credentials (cookies) are not used: the API token
 * travels in Authorization, which the preflight allows.
 */
import type { FastifyCorsOptions } from '@fastify/cors';
import { z } from 'zod';

/** Headers a page may send beyond the CORS-safelisted ones. */
export const CORS_ALLOWED_HEADERS = ['Authorization', 'Content-Type', 'Accept', 'X-Request-Id', 'Inference-Header-Content-Length'] as const;
/** Response headers a page may read: where results live, why to wait, the request id, the OIP binary header. */
export const CORS_EXPOSED_HEADERS = ['Content-Location', 'Location', 'Content-Disposition', 'Retry-After', 'WWW-Authenticate', 'X-Request-Id', 'Inference-Header-Content-Length'] as const;
/** How long a browser may cache a preflight answer. */
export const CORS_MAX_AGE_SECONDS = 600;

const ORIGIN = /^https?:\/\/[^/\s?#@]+$/i;

/** CORS_ORIGINS: `*`, or a comma-separated list of origins (scheme://host[:port], no path). */
export const CorsOriginsSchema = z
  .string()
  .trim()
  .transform((v, ctx): '*' | string[] => {
    if (v === '*') return '*';
    const list = v
      .split(',')
      .map((o) => o.trim())
      .filter(Boolean);
    const bad = list.find((o) => !ORIGIN.test(o));
    if (bad !== undefined || list.length === 0) {
      ctx.addIssue({ code: 'custom', message: `must be * or a comma-separated list of origins such as https://viewer.example.org (scheme://host[:port], no path)${bad !== undefined ? `; ${JSON.stringify(bad)} is not one` : ''}` });
      return z.NEVER;
    }
    // Browsers send the origin in lower case with no default port; compare in that form.
    return [...new Set(list.map((o) => new URL(o).origin))];
  });

/** @fastify/cors options for the configured origins. */
export function corsOptions(origins: '*' | readonly string[]): FastifyCorsOptions {
  const allowed = origins === '*' ? undefined : new Set(origins);
  return {
    // No Origin header: not a CORS request (curl, same-origin) and no headers. An origin off the list: none either.
    origin: (origin, cb) => cb(null, origin === undefined ? false : allowed === undefined ? '*' : allowed.has(origin) ? origin : false),
    methods: ['GET', 'HEAD', 'POST'],
    allowedHeaders: [...CORS_ALLOWED_HEADERS],
    exposedHeaders: [...CORS_EXPOSED_HEADERS],
    maxAge: CORS_MAX_AGE_SECONDS,
    credentials: false,
    // An OPTIONS with an Origin but no Access-Control-Request-Method is answered like a preflight instead
    // of @fastify/cors's plain-text 400 (every error here is problem+json).
    strictPreflight: false,
  };
}
