/**
 * Response headers every answer carries (issue 15, defect 10): no MIME sniffing anywhere; results are
 * never stored by caches (they carry patient-linked UIDs), nor is anything else we answer except
 * Swagger UI's static assets; /docs is framed by no one and runs only its own scripts.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Swagger UI (@fastify/swagger-ui) loads its bundle, preset and initializer as files from /docs/static
 * (no inline script) and fetches the document from this origin; React sets inline styles and the logo
 * is a data: URI. Nothing else is allowed: no other origin, no plugins, no framing, no inline handlers.
 */
export const DOCS_CSP = [
  "default-src 'self'",
  "base-uri 'self'",
  "connect-src 'self'",
  "font-src 'self' data:",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "img-src 'self' data:",
  "object-src 'none'",
  "script-src 'self'",
  "script-src-attr 'none'",
  "style-src 'self' 'unsafe-inline'",
].join('; ');

export function securityHeaders(request: FastifyRequest, reply: FastifyReply): void {
  reply.header('x-content-type-options', 'nosniff');
  const path = request.url.split('?')[0]!;
  const docs = path === '/docs' || path.startsWith('/docs/');
  if (docs) {
    reply.header('content-security-policy', DOCS_CSP);
    reply.header('x-frame-options', 'DENY');
  }
  // Swagger UI's static files may be cached; everything else (results above all) must not be.
  if (!(docs && path.startsWith('/docs/static/') && reply.statusCode === 200)) reply.header('cache-control', 'no-store');
}
