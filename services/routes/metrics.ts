import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { TAGS } from '../contract/openapi.ts';
import { open as errors } from '../contract/problem.ts';

const metricsRoutes: FastifyPluginAsyncZod = async (app) => {
  const registry = app.metrics.registry;
  app.metrics.setQueueDepthSource(() => app.lifecycle.engine?.queueDepth() ?? 0);
  app.get(
    '/metrics',
    {
      config: { public: true, quiet: true, rateLimit: false },
      schema: {
        tags: [TAGS.operations],
        operationId: 'metrics',
        summary: 'Prometheus metrics',
        description: `Prometheus text exposition: \`http_requests_total\` and \`http_request_duration_seconds\` by
method, route pattern and status; \`segmentations_total\`; \`inference_queue_depth\`;
\`inference_batch_size\`; \`inference_duration_seconds\` by model and execution provider;
\`dicom_decode_duration_seconds\`; \`preprocess_duration_seconds\`;
\`model_execution_provider{model,version,provider,requested}\` (1 = active);
\`model_ready\`; and the Node process defaults (\`process_*\`, \`nodejs_*\`).`,
        response: { 200: { description: 'Metrics.', content: { 'text/plain': { schema: z.string() } } }, ...errors },
      },
    },
    async (_request, reply) => {
      reply.type(registry.contentType);
      return registry.metrics();
    },
  );
};
export default metricsRoutes;
