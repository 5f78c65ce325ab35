/**
 * DICOMweb client mode settings: the DICOMWEB_* variables, which services/config.ts parses with every
 * other variable (one line naming the variable on a bad value). Client mode is off unless DICOMWEB_URL is set.
 */
import { z } from 'zod';
import { envInt } from '../env.ts';

const int = (min: number, max: number, def: number) => envInt(min, max).default(def);

export const DicomwebEnvSchema = z.object({
  DICOMWEB_URL: z.url({ protocol: /^https?$/ }).optional().describe('Base URL of the PACS DICOMweb service (e.g. http://orthanc:8042/dicom-web); unset = client mode off.'),
  DICOMWEB_AUTHORIZATION: z.string().min(1).optional().describe('Authorization header sent to the PACS, e.g. "Basic dXNlcjpwdw==" or "Bearer ...". Never logged.'),
  DICOMWEB_TIMEOUT_MS: int(100, 600_000, 30_000).describe('Timeout of each PACS call (WADO-RS retrieve, STOW-RS store), in ms.'),
  DICOMWEB_MAX_INSTANCES: int(1, 100_000, 1000).describe('Most instances a series may have.'),
  DICOMWEB_MAX_FRAMES: int(1, 100_000, 2000).describe('Most frames a series may have (all instances together).'),
  DICOMWEB_MAX_BYTES: int(1, 8 * 1024 ** 3, 1024 ** 3).describe('Largest WADO-RS answer accepted, in bytes.'),
});

export interface DicomwebConfig {
  url: string | undefined;
  authorization: string | undefined;
  timeoutMs: number;
  maxInstances: number;
  maxFrames: number;
  maxBytes: number;
}

/** The parsed DICOMWEB_* variables (services/config.ts parses them with every other variable) as settings. */
export function dicomwebSettings(c: z.infer<typeof DicomwebEnvSchema>): DicomwebConfig {
  return {
    url: c.DICOMWEB_URL,
    authorization: c.DICOMWEB_AUTHORIZATION,
    timeoutMs: c.DICOMWEB_TIMEOUT_MS,
    maxInstances: c.DICOMWEB_MAX_INSTANCES,
    maxFrames: c.DICOMWEB_MAX_FRAMES,
    maxBytes: c.DICOMWEB_MAX_BYTES,
  };
}
