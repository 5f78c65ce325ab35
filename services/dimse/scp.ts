/**
 * The C-STORE SCP: a TCP listener whose connections each run one dcmjs-dimse Scp (the library parses
 * PDUs, negotiates, reassembles DIMSE messages; this module decides). Per association: the calling AE
 * title against DIMSE_ALLOWED_CALLING_AETS, the called AE title against DIMSE_AE_TITLE, the service's
 * readiness, the DIMSE_MAX_ASSOCIATIONS limit, then the presentation contexts (contexts.ts). Per
 * C-STORE: the data set's bytes are collected as they arrive (counted against DIMSE_MAX_BYTES), framed
 * as Part 10 without re-encoding, read up to Pixel Data for its series, and handed to the SeriesBuffer.
 *
 * C-STORE statuses: 0000 stored; A700 refused, out of resources (DIMSE_MAX_BYTES held, the series is
 * over DICOMWEB_MAX_INSTANCES / DICOMWEB_MAX_FRAMES, the service is shutting down); C000 cannot
 * understand (not a readable data set, no Series Instance UID, no image). The Error Comment names the
 * reason, never a value from the data set.
 *
 * Our own listener instead of the library's Server: it binds a host (Server.listen takes only a port),
 * reports the bound port (DIMSE_PORT=0 in tests), counts associations and closes its sockets on demand.
 */
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import dimse from 'dcmjs-dimse';
import type { association as dimseAssociation, requests as dimseRequests, responses as dimseResponses } from 'dcmjs-dimse';
import type { Logger } from 'pino';
import { readHeader } from '../../core/seg/write-seg.ts';
import type { DimseMetrics } from '../metrics.ts';
import type { DimseConfig } from './config.ts';
import { negotiate } from './contexts.ts';
import { part10 } from './part10.ts';
import type { ByteBudget, SeriesBuffer } from './series-buffer.ts';

const { Scp, Dataset } = dimse;
const { CEchoResponse, CStoreResponse } = dimse.responses;
const { Status, RejectResult, RejectSource, RejectReason } = dimse.constants;

// The library logs association dumps and errors to the console through loglevel; ours go through pino.
dimse.log.setLevel('silent');

/** C-STORE failure statuses (PS3.4 B.2.3). */
export const STORE_STATUS = {
  success: Status.Success,
  outOfResources: 0xa700,
  cannotUnderstand: 0xc000,
} as const;

export interface ScpContext {
  config: DimseConfig;
  buffer: SeriesBuffer;
  budget: ByteBudget;
  log: Logger;
  metrics: DimseMetrics;
  /** Why associations are refused now (engine not started, shutting down), or undefined. */
  unavailable(): string | undefined;
}

/** The data set of one C-STORE as it arrives, its bytes reserved in the budget as they come. */
class InstanceCollector extends Writable {
  chunks: Buffer[] = [];
  bytes = 0;
  overflow = false;
  constructor(
    private readonly budget: ByteBudget,
    readonly transferSyntaxUid: string,
  ) {
    // A high-water mark no PDU reaches: write() always returns true, so the library never waits for 'drain'.
    super({ highWaterMark: 2 ** 30 });
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.overflow && this.budget.tryReserve(chunk.length)) {
      this.chunks.push(chunk);
      this.bytes += chunk.length;
    } else if (!this.overflow) {
      this.overflow = true;
      this.discard();
    }
    callback();
  }
  /** Gives back what was reserved (refused, failed, or the connection dropped mid-transfer). */
  discard(): void {
    this.budget.release(this.bytes);
    this.chunks = [];
    this.bytes = 0;
  }
}

let nextAssociationId = 1;

export class DimseServer {
  private readonly server: NetServer;
  private readonly connections = new Set<ServiceScp>();
  /** Associations accepted and not yet ended. */
  active = 0;
  closing = false;

  constructor(readonly ctx: ScpContext) {
    const c = ctx.config;
    this.server = createServer((socket) => this.connection(socket));
    // A hard cap beyond the association limit, for connections that never associate (they also time out).
    this.server.maxConnections = c.maxAssociations * 2 + 2;
    this.server.on('error', (e) => ctx.log.error({ err: { message: e.message } }, 'DIMSE listener error'));
  }

  /** Starts listening; resolves with the bound port. */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const fail = (e: Error) => reject(new Error(`DIMSE: cannot listen on ${host}:${port} (${e.message})`));
      this.server.once('error', fail);
      this.server.listen(port, host, () => {
        this.server.off('error', fail);
        resolve((this.server.address() as { port: number }).port);
      });
    });
  }

  /** Stops listening and drops every connection (an association in progress is cut; its sender will retry). */
  async close(): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const scp of this.connections) scp.socket.destroy();
    await closed;
  }

  private connection(socket: Socket): void {
    const c = this.ctx.config;
    if (this.closing) {
      socket.destroy();
      return;
    }
    const scp = new ServiceScp(socket, this, {
      connectTimeout: c.idleTimeoutMs,
      associationTimeout: c.associationTimeoutMs,
      pduTimeout: c.idleTimeoutMs,
    });
    this.connections.add(scp);
    socket.once('close', () => this.connections.delete(scp));
  }
}

type ScpOptions = ConstructorParameters<typeof Scp>[1];

class ServiceScp extends Scp {
  declare socket: Socket;
  private readonly id = nextAssociationId++;
  private readonly remote: string;
  private callingAe = '';
  private accepted = false;
  private released = false;
  private collector: InstanceCollector | undefined;
  private readonly collected = new WeakMap<object, InstanceCollector>();

  constructor(
    socket: Socket,
    private readonly server: DimseServer,
    opts: ScpOptions,
  ) {
    super(socket, opts);
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const self = this as unknown as { connected: boolean; connectedTime: number };
    // The library's Server sets `connected`; it never sets `connectedTime` for an accepted socket (only a
    // client's 'connect' does), which leaves its association timeout unarmed. Both are set here.
    self.connected = true;
    self.connectedTime = Date.now();
    this.on('networkError', (e: Error) => {
      this.ctx.log.warn({ associationId: this.id, callingAe: this.callingAe || undefined, remote: this.remote, err: { message: e.message.replace(/\s+/g, ' ').slice(0, 200) } }, 'DIMSE connection error; closing it');
      this.endSocket();
    });
    this.on('close', () => this.ended());
  }

  private get ctx(): ScpContext {
    return this.server.ctx;
  }

  private endSocket(): void {
    this.socket.end();
    // A peer that does not close its side is cut after a grace period.
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  private ended(): void {
    this.collector?.discard();
    this.collector = undefined;
    if (!this.accepted) return;
    this.accepted = false;
    this.server.active--;
    this.ctx.buffer.associationEnded(this.id, this.released);
    if (!this.released) this.ctx.log.info({ associationId: this.id, callingAe: this.callingAe, remote: this.remote }, 'DIMSE association ended without a release; its series complete after DIMSE_SERIES_IDLE_MS');
  }

  private reject(result: number, source: number, reason: number, why: string, level: 'info' | 'warn'): void {
    this.ctx.metrics.association('rejected');
    this.ctx.log[level]({ associationId: this.id, callingAe: this.callingAe, remote: this.remote, reason: why }, 'DIMSE association rejected');
    this.sendAssociationReject(result, source, reason);
    this.endSocket();
  }

  override associationRequested(association: dimseAssociation.Association): void {
    const { config: c, metrics, log } = this.ctx;
    this.callingAe = association.getCallingAeTitle().trim();
    const called = association.getCalledAeTitle().trim();
    if (c.allowedCallingAets && !c.allowedCallingAets.includes(this.callingAe)) {
      return this.reject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CallingAeNotRecognized, 'calling AE title not in DIMSE_ALLOWED_CALLING_AETS', 'warn');
    }
    if (called !== c.aeTitle) {
      return this.reject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CalledAeNotRecognized, `called AE title "${called}" is not DIMSE_AE_TITLE "${c.aeTitle}"`, 'warn');
    }
    const unavailable = this.server.closing ? 'the service is shutting down' : this.ctx.unavailable();
    if (unavailable) {
      return this.reject(RejectResult.Transient, RejectSource.ServiceProviderPresentation, RejectReason.TemporaryCongestion, unavailable, 'info');
    }
    if (this.server.active >= c.maxAssociations) {
      return this.reject(RejectResult.Transient, RejectSource.ServiceProviderPresentation, RejectReason.LocalLimitExceeded, `DIMSE_MAX_ASSOCIATIONS (${c.maxAssociations}) open`, 'warn');
    }
    const contexts = negotiate(association);
    this.accepted = true;
    this.server.active++;
    metrics.association('accepted');
    this.sendAssociationAccept();
    log.info({ associationId: this.id, callingAe: this.callingAe, remote: this.remote, contexts }, 'DIMSE association accepted');
  }

  override associationReleaseRequested(): void {
    this.released = true;
    this.sendAssociationReleaseResponse();
    // The series this association sent are complete now (the socket closes after the peer reads the reply).
    if (this.accepted) {
      this.accepted = false;
      this.server.active--;
      this.ctx.buffer.associationEnded(this.id, true);
    }
  }

  override abort(): void {
    this.ctx.log.info({ associationId: this.id, callingAe: this.callingAe, remote: this.remote }, 'DIMSE association aborted by the peer');
    this.endSocket();
  }

  override cEchoRequest(request: dimseRequests.CEchoRequest, callback: (response: dimseResponses.CEchoResponse) => void): void {
    const response = CEchoResponse.fromRequest(request);
    response.setStatus(Status.Success);
    callback(response);
  }

  override createStoreWritableStream(context: dimseAssociation.PresentationContext, request: dimseRequests.CStoreRequest): Writable {
    this.collector?.discard();
    const collector = new InstanceCollector(this.ctx.budget, context.getAcceptedTransferSyntaxUid() ?? '');
    this.collector = collector;
    this.collected.set(request, collector);
    return collector;
  }

  override createDatasetFromStoreWritableStream(_writable: Writable, context: dimseAssociation.PresentationContext, callback: (dataset: InstanceType<typeof Dataset>) => void): void {
    // The bytes stay with their collector (found by request in cStoreRequest); the library only needs a Dataset object.
    this.collector = undefined;
    callback(new Dataset({}, context.getAcceptedTransferSyntaxUid()));
  }

  override cStoreRequest(request: dimseRequests.CStoreRequest, callback: (response: dimseResponses.CStoreResponse) => void): void {
    const { log, metrics, budget, buffer } = this.ctx;
    const answer = (status: number, comment?: string) => {
      const response = CStoreResponse.fromRequest(request);
      response.setStatus(status);
      if (comment) response.setErrorComment(comment.slice(0, 64));
      metrics.instance(status === STORE_STATUS.success ? 'stored' : 'refused');
      callback(response);
    };
    const sopInstanceUid = String(request.getAffectedSopInstanceUid() ?? '').replace(/\0/g, '').trim();
    const sopClassUid = String(request.getAffectedSopClassUid() ?? '').replace(/\0/g, '').trim();
    const c = this.collected.get(request);
    this.collected.delete(request);
    const ids = { associationId: this.id, callingAe: this.callingAe, sopInstanceUid };
    if (!c) return answer(STORE_STATUS.cannotUnderstand, 'no data set received');
    if (c.overflow) {
      log.warn({ ...ids, heldBytes: budget.held, maxBytes: budget.max }, 'C-STORE refused: DIMSE_MAX_BYTES of received data is held');
      return answer(STORE_STATUS.outOfResources, 'out of resources: too much received data held');
    }
    if (this.server.closing) {
      c.discard();
      return answer(STORE_STATUS.outOfResources, 'out of resources: the service is shutting down');
    }
    let header: Record<string, unknown>;
    let bytes: Buffer;
    try {
      bytes = part10({ sopClassUid, sopInstanceUid, transferSyntaxUid: c.transferSyntaxUid, sourceAeTitle: this.callingAe }, c.chunks);
      header = readHeader(bytes);
    } catch {
      c.discard();
      log.warn(ids, 'C-STORE refused: the data set is not readable');
      return answer(STORE_STATUS.cannotUnderstand, 'cannot understand: the data set is not readable');
    }
    const seriesInstanceUid = String(header.SeriesInstanceUID ?? '');
    const studyInstanceUid = String(header.StudyInstanceUID ?? '');
    if (!seriesInstanceUid || !(Number(header.Rows) > 0)) {
      c.discard();
      log.warn({ ...ids, reason: seriesInstanceUid ? 'no Rows' : 'no SeriesInstanceUID' }, 'C-STORE refused: not an image of a series');
      return answer(STORE_STATUS.cannotUnderstand, `cannot understand: ${seriesInstanceUid ? 'no image (Rows)' : 'no Series Instance UID'}`);
    }
    // The budget holds what arrived; the file adds its meta group.
    budget.force(bytes.length - c.bytes);
    const outcome = buffer.add(this.id, { sopInstanceUid, studyInstanceUid, seriesInstanceUid, bytes, frames: Number(header.NumberOfFrames ?? 1) || 1 });
    if (!outcome.stored) return answer(STORE_STATUS.outOfResources, `refused: ${outcome.reason}`);
    log.debug({ ...ids, seriesInstanceUid, bytes: bytes.length }, 'C-STORE received');
    answer(STORE_STATUS.success);
  }
}
