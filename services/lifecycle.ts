import type { Engine } from '../core/engine/index.ts';
import { Problem } from './problem.ts';

export type Phase = 'starting' | 'running' | 'draining' | 'stopped';

/**
 * Where the process is in its life, as the probes report it. The HTTP server listens before the
 * engine has loaded its models (so /startupz and /livez answer during a slow start), which is why
 * the engine is attached here later instead of being passed to the app up front.
 */
export class Lifecycle {
  phase: Phase = 'starting';
  engine: Engine | undefined;
  /** Set when Engine.start failed; the process exits, but probes can say why meanwhile. */
  startupError: string | undefined;
  readonly startedAt = new Date();

  attach(engine: Engine): void {
    this.engine = engine;
    if (this.phase === 'starting') this.phase = 'running';
  }

  /** Ready = the engine is up (a live worker, the default model loaded: Engine.readiness()), and we are not shutting down. */
  ready(): boolean {
    return this.readiness().ready;
  }

  /** ready(), with the reason when not (the /readyz body). */
  readiness(): { ready: true } | { ready: false; reason: string } {
    if (this.phase === 'draining' || this.phase === 'stopped') return { ready: false, reason: `the service is ${this.phase}` };
    if (!this.engine) return { ready: false, reason: this.startupError ? `engine failed to start: ${this.startupError}` : 'models are still loading' };
    return this.engine.readiness();
  }

  /** Startup is complete once the engine started, whatever happens after (draining keeps it true). */
  started(): boolean {
    return this.engine !== undefined;
  }

  beginDrain(): void {
    if (this.phase === 'starting' || this.phase === 'running') this.phase = 'draining';
  }

  /**
   * The engine for a request. While draining it is still returned: requests that reach a handler
   * were accepted and must be served; the listener is what stops new ones.
   */
  requireEngine(): Engine {
    if (!this.engine) {
      throw new Problem('not-ready', this.startupError ? `engine failed to start: ${this.startupError}` : 'models are still loading', {
        retryAfterSeconds: 2,
        code: 'NOT_READY',
      });
    }
    return this.engine;
  }
}
