/**
 * A circuit breaker for a dependency the service can live without (the Redis result store): after
 * `threshold` consecutive failures it opens and calls fail at once (no connect wait, no command
 * timeout) for a cool-down; then one call is let through (half-open): success closes it, failure opens
 * it again with the cool-down doubled (up to `maxCooldownMs`). So an outage costs each request
 * nothing but the stored copy, and the dependency is retried on its own.
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  threshold: number;
  cooldownMs: number;
  maxCooldownMs: number;
  now?: () => number;
}

export class CircuitOpenError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
    this.name = 'CircuitOpenError';
  }
}

export class CircuitBreaker {
  private failures = 0;
  private openUntil = 0;
  private cooldown: number;
  private trial = false;
  private readonly now: () => number;

  constructor(private readonly opts: BreakerOptions) {
    this.cooldown = opts.cooldownMs;
    this.now = opts.now ?? Date.now;
  }

  get state(): BreakerState {
    if (this.failures < this.opts.threshold) return 'closed';
    return this.now() < this.openUntil || this.trial ? 'open' : 'half-open';
  }

  /** Milliseconds until a call may be tried again (0 when closed or half-open). */
  retryAfterMs(): number {
    return this.state === 'closed' ? 0 : Math.max(0, this.openUntil - this.now());
  }

  /** Runs `fn` unless the circuit is open (then throws CircuitOpenError at once). */
  async run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const state = this.state;
    if (state === 'open') throw new CircuitOpenError(`${what}: circuit open after ${this.failures} consecutive failures`, Math.max(this.openUntil - this.now(), 1000));
    const isTrial = state === 'half-open';
    if (isTrial) this.trial = true;
    try {
      const out = await fn();
      this.failures = 0;
      this.cooldown = this.opts.cooldownMs;
      return out;
    } catch (e) {
      this.failures++;
      if (this.failures >= this.opts.threshold) {
        if (isTrial) this.cooldown = Math.min(this.cooldown * 2, this.opts.maxCooldownMs);
        this.openUntil = this.now() + this.cooldown;
      }
      throw e;
    } finally {
      if (isTrial) this.trial = false;
    }
  }
}
