/**
 * DIMSE in and out as an app resource: with DIMSE_PORT set, a C-STORE SCP (scp.ts) receives images,
 * groups them by series (series-buffer.ts), segments each complete series through segmentInstances and
 * sends its SEG to DIMSE_DESTINATION by C-STORE (series-pipeline.ts, store-scu.ts).
 *
 * Library: dcmjs-dimse (npm, MIT; C-ECHO/C-STORE/... SCP and SCU over dcmjs, the DICOM library the
 * service already parses and writes SEGs with). Chosen over dcmtk's storescp/storescu through child
 * processes because: it runs in-process, so the SCP can refuse a C-STORE with a real status (A700 when
 * a series or DIMSE_MAX_BYTES is over its limit) and reject an association by calling AE title, with
 * decisions made per request from the service's own state, where storescp would accept everything to
 * disk and leave us to poll a directory; no files with patient data land on disk; no extra binary in the
 * images (dcmtk stays a test tool, as the other hospital tests use it); and everything is one process
 * to start, limit, meter and close with the app. Its limits, handled here: the README calls it a
 * work in progress (it is used here for C-ECHO and C-STORE only, and tested against dcmtk and Orthanc),
 * its Server binds no host (scp.ts runs its own listener), its association timeout is never armed for an
 * accepted socket (scp.ts arms it), and it logs to the console (silenced; we log through pino).
 *
 * The SCP listens once the app is ready (a port in use fails the start, like the HTTP port) and
 * rejects associations transiently until the engine has started. On close (after the HTTP listener,
 * before the engine: plugins close in reverse order) it stops listening, cuts open associations,
 * drops buffered series and aborts the one being processed, each logged by series UID.
 */
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import type { DimseConfig } from './config.ts';
import { SeriesBuffer, ByteBudget } from './series-buffer.ts';
import { SeriesPipeline } from './series-pipeline.ts';
import { DimseServer } from './scp.ts';

export interface DimseHandle {
  /** The SCP's bound port. */
  port: number;
  aeTitle: string;
  /** What is held now: open associations, series buffered and in the pipeline, bytes. */
  stats(): { associations: number; bufferedSeries: number; pendingSeries: number; heldBytes: number };
  /** Resolves once no series is buffered, queued or being processed (tests, drain). */
  settled(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The DIMSE SCP, when DIMSE_PORT is set (else undefined). */
    dimse: DimseHandle | undefined;
  }
}

export interface DimsePluginOptions {
  /** Default: the service configuration's (DIMSE_* variables). */
  config?: DimseConfig;
}

export default fp(
  async (app, opts: DimsePluginOptions) => {
    const config = opts.config ?? app.config.dimse;
    if (config.port === undefined) {
      app.decorate('dimse', undefined as DimseHandle | undefined);
      return;
    }
    const log = (app.log as Logger).child({ component: 'dimse' });
    const metrics = app.metrics.dimse;
    const budget = new ByteBudget(config.maxBytes);
    const pipeline = new SeriesPipeline({ config, engine: () => app.lifecycle.engine, budget, log, metrics });
    const buffer = new SeriesBuffer({
      maxInstances: config.maxInstances,
      maxFrames: config.maxFrames,
      idleMs: config.seriesIdleMs,
      budget,
      onComplete: (series) => {
        log.info({ seriesInstanceUid: series.seriesInstanceUid, instances: series.instances.length, frames: series.frames, bytes: series.bytes, trigger: series.trigger }, 'DIMSE series complete; segmenting');
        pipeline.push(series);
      },
      onRefused: (s, done) => {
        if (!done) {
          log.warn({ seriesInstanceUid: s.seriesInstanceUid, reason: s.reason, dropped: s.dropped }, `series over the limit: its instances are refused (A700) and it will not be segmented (${s.reason})`);
          return;
        }
        metrics.series('refused');
        log.warn({ seriesInstanceUid: s.seriesInstanceUid, reason: s.reason, dropped: s.dropped, refused: s.refused }, `series not segmented: ${s.reason}`);
      },
    });
    const server = new DimseServer({
      config,
      buffer,
      budget,
      log,
      metrics,
      unavailable: () => {
        const phase = app.lifecycle.phase;
        if (phase === 'draining' || phase === 'stopped') return `the service is ${phase}`;
        if (!app.lifecycle.engine) return 'models are still loading';
        return undefined;
      },
    });

    let port = 0;
    const settled = async () => {
      for (;;) {
        await pipeline.idle();
        if (buffer.size === 0 && pipeline.pending === 0) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    app.decorate('dimse', {
      get port() {
        return port;
      },
      aeTitle: config.aeTitle,
      stats: () => ({ associations: server.active, bufferedSeries: buffer.size, pendingSeries: pipeline.pending, heldBytes: budget.held }),
      settled,
    });

    app.addHook('onReady', async () => {
      port = await server.listen(config.port!, config.host);
      const d = config.destination!;
      log.info(
        { port, host: config.host, aeTitle: config.aeTitle, destination: `${d.aeTitle}@${d.host}:${d.port}`, allowedCallingAets: config.allowedCallingAets ?? 'any', maxAssociations: config.maxAssociations, maxInstances: config.maxInstances, maxFrames: config.maxFrames, maxBytes: config.maxBytes },
        'DIMSE C-STORE SCP listening',
      );
    });

    app.addHook('onClose', async () => {
      await server.close();
      for (const s of buffer.clear()) {
        metrics.series('failed');
        log.warn({ seriesInstanceUid: s.seriesInstanceUid, instances: s.instances }, 'series not segmented: the service shut down before the series was complete');
      }
      await pipeline.close();
      log.info('DIMSE SCP closed');
    });
  },
  { fastify: '5.x', name: 'dimse', decorators: { fastify: ['config', 'metrics', 'lifecycle'] } },
);
