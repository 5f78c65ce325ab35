/**
 * DIMSE settings: the DIMSE_* variables, which services/config.ts parses with every other variable
 * (one line naming the variable on a bad value). The C-STORE SCP is off unless DIMSE_PORT is set.
 * The per-series limits are not declared here: DIMSE uses the series limits the DICOMweb route uses
 * (DICOMWEB_MAX_INSTANCES, DICOMWEB_MAX_FRAMES), passed in by services/config.ts.
 */
import { z } from 'zod';
import { envInt } from '../env.ts';


/** An AE title: 1 to 16 characters of the DICOM default repertoire, no backslash, not all spaces (PS3.5 6.2). */
const AE_TITLE = /^[\x20-\x5b\x5d-\x7e]{1,16}$/;
const aeTitleOk = (s: string) => AE_TITLE.test(s) && s.trim().length > 0;
const aeTitle = z.string().refine(aeTitleOk, 'must be an AE title: 1 to 16 printable ASCII characters, no backslash').transform((s) => s.trim());

/** AE@host:port (host a name, an IPv4 address or a bracketed IPv6 address). */
const DESTINATION = /^([^@]{1,16})@(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;

export interface DimseDestination {
  aeTitle: string;
  host: string;
  port: number;
}

export function parseDestination(text: string): DimseDestination | undefined {
  const m = DESTINATION.exec(text.trim());
  if (!m || !aeTitleOk(m[1]!)) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { aeTitle: m[1]!.trim(), host: m[2]!.replace(/^\[|\]$/g, ''), port };
}

export const DimseEnvSchema = z.object({
  DIMSE_PORT: envInt(0, 65535).optional().describe('TCP port of the C-STORE SCP; unset = DIMSE off; 0 = any free port (tests).'),
  DIMSE_HOST: z.string().min(1).optional().describe('Address the SCP binds; default HOST.'),
  DIMSE_AE_TITLE: aeTitle.default('UNETSEG').describe('The service\'s AE title: called AE title the SCP answers to, calling AE title of the SEG sends.'),
  DIMSE_ALLOWED_CALLING_AETS: z
    .string()
    .transform((s, ctx) => {
      const list = s.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
      const bad = list.find((x) => !aeTitleOk(x));
      if (list.length === 0 || bad !== undefined) {
        ctx.addIssue({ code: 'custom', message: 'must be a comma-separated list of AE titles (1 to 16 printable ASCII characters each, no backslash)' });
        return z.NEVER;
      }
      return list;
    })
    .optional()
    .describe('Comma-separated calling AE titles allowed to associate; unset = any.'),
  DIMSE_DESTINATION: z
    .string()
    .transform((s, ctx) => {
      const d = parseDestination(s);
      if (!d) {
        ctx.addIssue({ code: 'custom', message: 'must be AE@host:port, e.g. ORTHANC@pacs.example:4242' });
        return z.NEVER;
      }
      return d;
    })
    .optional()
    .describe('Where each series\' SEG is sent with C-STORE: AE@host:port. Required when DIMSE_PORT is set.'),
  DIMSE_MODEL: z.string().min(1).max(200).optional().describe('Model (name or name:version) that segments received series; default the default model.'),
  DIMSE_MAX_ASSOCIATIONS: envInt(1, 1000).default(8).describe('Associations open at once; more are rejected (transient, local limit exceeded).'),
  DIMSE_ASSOCIATION_TIMEOUT_MS: envInt(100, 600_000).default(30_000).describe('A connection must request an association within this; also the connect + association limit of a SEG send.'),
  DIMSE_IDLE_TIMEOUT_MS: envInt(100, 3_600_000).default(60_000).describe('An association silent this long is aborted (both directions).'),
  DIMSE_SERIES_IDLE_MS: envInt(10, 3_600_000).default(10_000).describe('A series counts as complete when its association is released, or when no instance of it arrived for this long.'),
  DIMSE_MAX_BYTES: envInt(1024, 64 * 1024 ** 3).default(512 * 1024 ** 2).describe('Received instances (and SEGs waiting to be sent) held at once, in bytes; beyond it C-STORE is answered A700 out of resources.'),
  DIMSE_SEND_RETRIES: envInt(0, 20).default(3).describe('Retries of a failed SEG send (after the first attempt).'),
  DIMSE_SEND_RETRY_DELAY_MS: envInt(1, 600_000).default(2000).describe('Delay before the first retry; doubles with each further retry.'),
});

export interface DimseConfig {
  /** undefined = the SCP is off. */
  port: number | undefined;
  host: string;
  aeTitle: string;
  /** undefined = any calling AE title may associate. */
  allowedCallingAets: string[] | undefined;
  destination: DimseDestination | undefined;
  model: string | undefined;
  maxAssociations: number;
  associationTimeoutMs: number;
  idleTimeoutMs: number;
  seriesIdleMs: number;
  maxBytes: number;
  sendRetries: number;
  sendRetryDelayMs: number;
  /** The series limits every series route shares (DICOMWEB_MAX_INSTANCES, DICOMWEB_MAX_FRAMES). */
  maxInstances: number;
  maxFrames: number;
}

/**
 * The parsed DIMSE_* variables as settings; `shared` carries what other blocks declare (the listen
 * host, the series limits). A missing destination while the SCP is on is reported on DIMSE_DESTINATION.
 */
export function dimseSettings(
  e: z.infer<typeof DimseEnvSchema>,
  shared: { host: string; maxInstances: number; maxFrames: number },
  ctx: z.RefinementCtx,
): DimseConfig | undefined {
  if (e.DIMSE_PORT !== undefined && e.DIMSE_DESTINATION === undefined) {
    ctx.addIssue({ code: 'custom', path: ['DIMSE_DESTINATION'], message: 'must be set (AE@host:port) when DIMSE_PORT is set: the SEG of every received series goes there' });
    return undefined;
  }
  return {
    port: e.DIMSE_PORT,
    host: e.DIMSE_HOST ?? shared.host,
    aeTitle: e.DIMSE_AE_TITLE,
    allowedCallingAets: e.DIMSE_ALLOWED_CALLING_AETS,
    destination: e.DIMSE_DESTINATION,
    model: e.DIMSE_MODEL,
    maxAssociations: e.DIMSE_MAX_ASSOCIATIONS,
    associationTimeoutMs: e.DIMSE_ASSOCIATION_TIMEOUT_MS,
    idleTimeoutMs: e.DIMSE_IDLE_TIMEOUT_MS,
    seriesIdleMs: e.DIMSE_SERIES_IDLE_MS,
    maxBytes: e.DIMSE_MAX_BYTES,
    sendRetries: e.DIMSE_SEND_RETRIES,
    sendRetryDelayMs: e.DIMSE_SEND_RETRY_DELAY_MS,
    maxInstances: shared.maxInstances,
    maxFrames: shared.maxFrames,
  };
}
