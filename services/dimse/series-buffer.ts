/**
 * Received instances grouped by series until the series is complete: when every association that
 * brought instances of it has been released, or when none arrived for DIMSE_SERIES_IDLE_MS (an
 * aborted association, or a sender that keeps its association open). A series over the per-series
 * limits is refused as a whole: its held instances are dropped, its further instances are refused,
 * and on completion it is reported as refused instead of segmented (a partial series would give a
 * SEG that silently misses slices).
 *
 * Bytes are accounted in one ByteBudget shared with the receiving streams and the SEGs waiting to be
 * sent, so DIMSE_MAX_BYTES bounds what DIMSE holds in memory.
 */

/** Bytes held at once; reservations beyond `max` fail (the C-STORE is refused) unless forced. */
export class ByteBudget {
  held = 0;
  constructor(readonly max: number) {}

  tryReserve(n: number): boolean {
    if (this.held + n > this.max) return false;
    this.held += n;
    return true;
  }

  /** A reservation that must not fail (a SEG already made is sent, not dropped). */
  force(n: number): void {
    this.held += n;
  }

  release(n: number): void {
    this.held = Math.max(0, this.held - n);
  }
}

export interface BufferedInstance {
  sopInstanceUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  /** Part 10 bytes; their size is already reserved in the budget. */
  bytes: Buffer;
  frames: number;
}

export interface CompleteSeries {
  seriesInstanceUid: string;
  studyInstanceUid: string;
  /** Part 10 files, in arrival order; `bytes` of budget is reserved for them until released. */
  instances: Buffer[];
  bytes: number;
  frames: number;
  /** What completed it. */
  trigger: 'released' | 'idle';
  firstAt: number;
}

export interface RefusedSeries {
  seriesInstanceUid: string;
  reason: string;
  /** Instances the SCP accepted before the limit was crossed (dropped) and refused after. */
  dropped: number;
  refused: number;
}

interface Entry {
  seriesInstanceUid: string;
  studyInstanceUid: string;
  instances: Map<string, { bytes: Buffer; frames: number }>;
  frames: number;
  bytes: number;
  associations: Set<number>;
  timer: NodeJS.Timeout | undefined;
  refused: RefusedSeries | undefined;
  firstAt: number;
}

export interface SeriesBufferOptions {
  maxInstances: number;
  maxFrames: number;
  idleMs: number;
  budget: ByteBudget;
  onComplete(series: CompleteSeries): void;
  /** Called once when a series crosses a limit, and again (`done`) when it completes. */
  onRefused(series: RefusedSeries, done: boolean): void;
}

export type AddOutcome = { stored: true } | { stored: false; reason: string };

export class SeriesBuffer {
  private readonly entries = new Map<string, Entry>();
  constructor(private readonly o: SeriesBufferOptions) {}

  /** Series currently held (not yet complete). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Adds one instance received on `association`. On refusal the instance's reserved bytes are
   * released here; on success they belong to the series.
   */
  add(association: number, x: BufferedInstance): AddOutcome {
    let e = this.entries.get(x.seriesInstanceUid);
    if (!e) {
      e = {
        seriesInstanceUid: x.seriesInstanceUid,
        studyInstanceUid: x.studyInstanceUid,
        instances: new Map(),
        frames: 0,
        bytes: 0,
        associations: new Set(),
        timer: undefined,
        refused: undefined,
        firstAt: Date.now(),
      };
      this.entries.set(x.seriesInstanceUid, e);
    }
    e.associations.add(association);
    this.touch(e);
    if (e.refused) {
      e.refused.refused++;
      this.o.budget.release(x.bytes.length);
      return { stored: false, reason: e.refused.reason };
    }
    // The same SOP Instance sent again (a retry) replaces the earlier copy.
    const earlier = e.instances.get(x.sopInstanceUid);
    const instances = e.instances.size + (earlier ? 0 : 1);
    const frames = e.frames - (earlier?.frames ?? 0) + x.frames;
    const over =
      instances > this.o.maxInstances
        ? `series over ${this.o.maxInstances} instances`
        : frames > this.o.maxFrames
          ? `series over ${this.o.maxFrames} frames`
          : undefined;
    if (over) {
      e.refused = { seriesInstanceUid: e.seriesInstanceUid, reason: over, dropped: e.instances.size, refused: 1 };
      this.o.budget.release(e.bytes + x.bytes.length);
      e.instances.clear();
      e.bytes = 0;
      e.frames = 0;
      this.o.onRefused(e.refused, false);
      return { stored: false, reason: over };
    }
    if (earlier) this.o.budget.release(earlier.bytes.length);
    e.instances.set(x.sopInstanceUid, { bytes: x.bytes, frames: x.frames });
    e.bytes += x.bytes.length - (earlier?.bytes.length ?? 0);
    e.frames = frames;
    return { stored: true };
  }

  /** An association ended: on a release, the series only it was sending are complete. */
  associationEnded(association: number, released: boolean): void {
    for (const e of [...this.entries.values()]) {
      if (!e.associations.delete(association)) continue;
      if (released && e.associations.size === 0) this.complete(e, 'released');
    }
  }

  /** Drops everything (shutdown); returns what was held, for the log. */
  clear(): Array<{ seriesInstanceUid: string; instances: number }> {
    const dropped = [...this.entries.values()].map((e) => ({ seriesInstanceUid: e.seriesInstanceUid, instances: e.instances.size }));
    for (const e of this.entries.values()) {
      clearTimeout(e.timer);
      this.o.budget.release(e.bytes);
    }
    this.entries.clear();
    return dropped;
  }

  private touch(e: Entry): void {
    clearTimeout(e.timer);
    e.timer = setTimeout(() => this.complete(e, 'idle'), this.o.idleMs);
  }

  private complete(e: Entry, trigger: CompleteSeries['trigger']): void {
    if (this.entries.get(e.seriesInstanceUid) !== e) return;
    clearTimeout(e.timer);
    this.entries.delete(e.seriesInstanceUid);
    if (e.refused) {
      this.o.onRefused(e.refused, true);
      return;
    }
    if (e.instances.size === 0) return;
    this.o.onComplete({
      seriesInstanceUid: e.seriesInstanceUid,
      studyInstanceUid: e.studyInstanceUid,
      instances: [...e.instances.values()].map((i) => i.bytes),
      bytes: e.bytes,
      frames: e.frames,
      trigger,
      firstAt: e.firstAt,
    });
  }
}
