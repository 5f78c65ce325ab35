/** Kubernetes probes and OIP health bodies. */
import { z } from 'zod';

const PhaseSchema = z.enum(['starting', 'running', 'draining', 'stopped']);

export const LivenessSchema = z.object({ status: z.literal('ok') });
export const ReadinessSchema = z
  .object({
    status: z.enum(['ready', 'not-ready']),
    phase: PhaseSchema,
    reason: z.string().optional().describe('Why not ready (e.g. the default model failed to load), when not.'),
    models: z.array(z.object({ name: z.string(), version: z.string(), ready: z.boolean() })),
    store: z.object({ kind: z.enum(['memory', 'redis']), healthy: z.boolean() }),
  })
  .meta({ id: 'Readiness' });
export const StartupSchema = z
  .object({ status: z.enum(['started', 'starting']), phase: PhaseSchema, error: z.string().optional().describe('Why the engine failed to start.') })
  .meta({ id: 'Startup' });
export const OipLiveSchema = z.object({ live: z.boolean() });
export const OipReadySchema = z.object({ ready: z.boolean() });
