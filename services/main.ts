/**
 * Process entry point (`npm start`): configuration, the HTTP service, and signals.
 *   SIGTERM / SIGINT  graceful drain: readiness off at once, keep listening SHUTDOWN_DELAY_SECONDS, then
 *                     close the listener and let accepted requests finish; exit 0, or 1 if that
 *                     exceeds DRAIN_TIMEOUT_SECONDS
 *   SIGHUP            re-scan the model repository (same as POST /admin/reload)
 */
import { ConfigError, loadConfig, type ServiceConfig } from './config.ts';
import { createLogger } from './app.ts';
import { startService } from './server.ts';

let config: ServiceConfig;
try {
  config = loadConfig();
} catch (e) {
  if (e instanceof ConfigError) {
    process.stderr.write(`${e.message}\n`);
    process.exit(2);
  }
  throw e;
}

const logger = createLogger(config.logLevel);
const service = await startService(config, { logger }).catch((e: Error) => {
  logger.fatal({ err: { message: e.message } }, 'could not start the HTTP server');
  process.exit(1);
});

service.engineStarted.catch(async () => {
  // No models means nothing to serve; let the orchestrator restart us with the error in the log.
  await service.app.close().catch(() => undefined);
  process.exit(1);
});

let signalled = false;
const stop = (signal: NodeJS.Signals) => {
  if (signalled) {
    logger.warn({ signal }, 'second signal during drain; exiting now');
    process.exit(1);
  }
  signalled = true;
  logger.info({ signal }, 'shutdown requested');
  service.shutdown().then(
    () => process.exit(0),
    (e: Error) => {
      logger.error({ err: { message: e.message } }, 'shutdown did not complete cleanly');
      process.exit(1);
    },
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('SIGHUP', () => {
  logger.info('SIGHUP: reloading models');
  service.reload().catch((e: Error) => logger.error({ err: { message: e.message } }, 'model reload failed'));
});
