/**
 * A minimal DICOMweb client: WADO-RS retrieve of a series / instance (multipart/related application/dicom),
 * STOW-RS store, QIDO-RS instance list. Every call has a timeout; failures are DicomwebError with a kind
 * the HTTP layer maps to 404 / 502 / 504. Messages name URLs and statuses, never DICOM content.
 */
import { boundaryOf, buildMultipart, parseMultipart, MultipartError } from './multipart.ts';

export type DicomwebFailure = 'not-found' | 'unreachable' | 'timeout' | 'bad-response' | 'rejected';

export class DicomwebError extends Error {
  constructor(
    readonly kind: DicomwebFailure,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'DicomwebError';
  }
}

export interface DicomwebClientOptions {
  /** Base URL of the DICOMweb service, e.g. http://pacs:8042/dicom-web (no trailing slash needed). */
  baseUrl: string;
  /** Sent as the Authorization header (e.g. "Bearer ..." or "Basic ..."). */
  authorization?: string;
  timeoutMs?: number;
  /** Largest retrieve body accepted. */
  maxBytes?: number;
}

const uidOk = (u: string) => /^[0-9.]{1,64}$/.test(u);

export class DicomwebClient {
  private readonly base: string;
  constructor(private readonly opts: DicomwebClientOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, '');
  }

  private async call(path: string, init: RequestInit & { accept: string }, what: string): Promise<Response> {
    const headers: Record<string, string> = { accept: init.accept, ...(init.headers as Record<string, string> | undefined) };
    if (this.opts.authorization) headers.authorization = this.opts.authorization;
    const url = `${this.base}${path}`;
    let r: Response;
    try {
      r = await fetch(url, { ...init, headers, signal: AbortSignal.timeout(this.opts.timeoutMs ?? 30_000) });
    } catch (e) {
      const err = e as Error;
      if (err.name === 'TimeoutError' || err.name === 'AbortError') throw new DicomwebError('timeout', `${what}: the PACS did not answer within ${this.opts.timeoutMs ?? 30_000} ms`);
      throw new DicomwebError('unreachable', `${what}: the PACS is unreachable (${(err.cause as Error | undefined)?.message ?? err.message})`);
    }
    if (r.status === 404 || r.status === 204) {
      await r.body?.cancel();
      throw new DicomwebError('not-found', `${what}: the PACS has no such object (HTTP ${r.status})`, r.status);
    }
    if (!r.ok) {
      await r.body?.cancel();
      throw new DicomwebError('bad-response', `${what}: the PACS answered HTTP ${r.status}`, r.status);
    }
    return r;
  }

  private async body(r: Response, what: string): Promise<Uint8Array> {
    try {
      const len = Number(r.headers.get('content-length') ?? 0);
      if (this.opts.maxBytes && len > this.opts.maxBytes) throw new DicomwebError('bad-response', `${what}: ${len} bytes is more than the ${this.opts.maxBytes} allowed`);
      return new Uint8Array(await r.arrayBuffer());
    } catch (e) {
      if (e instanceof DicomwebError) throw e;
      const err = e as Error;
      if (err.name === 'TimeoutError' || err.name === 'AbortError') throw new DicomwebError('timeout', `${what}: the PACS stopped sending within ${this.opts.timeoutMs ?? 30_000} ms`);
      throw new DicomwebError('unreachable', `${what}: the transfer broke off (${err.message})`);
    }
  }

  /** WADO-RS: every instance of a series, as Part 10 bytes. */
  async retrieveSeries(study: string, series: string): Promise<Uint8Array[]> {
    if (!uidOk(study) || !uidOk(series)) throw new DicomwebError('not-found', 'study and series must be UIDs');
    return this.retrieve(`/studies/${study}/series/${series}`, `WADO-RS series ${series}`);
  }

  /** WADO-RS: one instance. */
  async retrieveInstance(study: string, series: string, instance: string): Promise<Uint8Array> {
    if (![study, series, instance].every(uidOk)) throw new DicomwebError('not-found', 'study, series and instance must be UIDs');
    const parts = await this.retrieve(`/studies/${study}/series/${series}/instances/${instance}`, `WADO-RS instance ${instance}`);
    if (parts.length !== 1) throw new DicomwebError('bad-response', `WADO-RS instance ${instance}: ${parts.length} parts`);
    return parts[0]!;
  }

  private async retrieve(path: string, what: string): Promise<Uint8Array[]> {
    const r = await this.call(path, { method: 'GET', accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' }, what);
    const body = await this.body(r, what);
    try {
      const parts = parseMultipart(body, boundaryOf(r.headers.get('content-type')));
      if (parts.length === 0) throw new DicomwebError('not-found', `${what}: empty answer`);
      return parts.map((p) => p.body);
    } catch (e) {
      if (e instanceof MultipartError) throw new DicomwebError('bad-response', `${what}: ${e.message}`);
      throw e;
    }
  }

  /** STOW-RS: stores instances (into the given study when named); returns the PACS's JSON answer. */
  async store(instances: Uint8Array[], study?: string): Promise<Record<string, unknown>> {
    if (study !== undefined && !uidOk(study)) throw new DicomwebError('not-found', 'study must be a UID');
    const { body, contentType } = buildMultipart(instances);
    const what = 'STOW-RS';
    const r = await this.call(study ? `/studies/${study}` : '/studies', { method: 'POST', accept: 'application/dicom+json', body, headers: { 'content-type': contentType } }, what);
    const text = new TextDecoder().decode(await this.body(r, what));
    let json: Record<string, unknown> = {};
    try {
      json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      throw new DicomwebError('bad-response', `${what}: the answer is not JSON`);
    }
    // FailedSOPSequence (0008,1198) with items = some instance was refused (Orthanc sends it empty when none was).
    const failed = (json['00081198'] as { Value?: Array<Record<string, { Value?: unknown[] }>> } | undefined)?.Value ?? [];
    if (failed.length > 0) {
      const reason = failed[0]?.['00081197']?.Value?.[0];
      throw new DicomwebError('rejected', `${what}: the PACS refused the instance(s) (failure reason ${String(reason ?? '?')})`, r.status);
    }
    return json;
  }

  /** QIDO-RS: SOP Instance UIDs of a series. */
  async listInstances(study: string, series: string): Promise<string[]> {
    if (!uidOk(study) || !uidOk(series)) throw new DicomwebError('not-found', 'study and series must be UIDs');
    const what = `QIDO-RS series ${series}`;
    const r = await this.call(`/studies/${study}/series/${series}/instances`, { method: 'GET', accept: 'application/dicom+json' }, what);
    const list = JSON.parse(new TextDecoder().decode(await this.body(r, what))) as Array<Record<string, { Value?: string[] }>>;
    return list.map((x) => x['00080018']?.Value?.[0]).filter((u): u is string => typeof u === 'string');
  }
}
