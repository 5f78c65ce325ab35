// Docker HEALTHCHECK for the service: exit 0 when GET /livez answers 2xx, 1 otherwise.
// Plain JavaScript run by the node binary the image already has: no curl (and its TLS and libcurl
// dependencies) added to the image for one local HTTP GET, and no tsx start-up cost every interval.
// Kubernetes ignores HEALTHCHECK and uses the Deployment's probes on the same paths instead.
const port = process.env.PORT || '8080';
// A HOST of 0.0.0.0 / :: listens everywhere, loopback included; a specific address must be dialled itself.
const host = !process.env.HOST || process.env.HOST === '0.0.0.0' || process.env.HOST === '::' ? '127.0.0.1' : process.env.HOST;
const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/livez`;
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(4000) });
  process.exit(res.ok ? 0 : 1);
} catch {
  process.exit(1);
}
