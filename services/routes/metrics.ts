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
        description: `Prometheus text exposition. Every metric of ours is prefixed \`unet_\`; a \`model\` label only
takes served model names or \`unknown\` (a client's made-up \`?model=\` creates no series); \`route\` is
the route pattern, never the raw path. \`unet_http_requests_total\`, \`unet_http_request_duration_seconds\`,
\`unet_segmentations_total\`, \`unet_inference_queue_seconds\`, \`unet_inference_queue_depth\`,
\`unet_inference_batch_size\`, \`unet_inference_duration_seconds\`, \`unet_dicom_decode_duration_seconds\`,
\`unet_preprocess_duration_seconds\`, \`unet_model_execution_provider_info\`, \`unet_model_ready\`, and the
Node process defaults (\`process_*\`, \`nodejs_*\`). The README's Metrics table describes each.`,
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
