/**
 * Coded concepts for DICOM SEG segments (PS3.16 CID 7150 categories, CID 7151 types). A model's manifest
 * may name them per label (`segments` in model.json, validated by SegmentCodesSchema here); for labels it
 * does not name, a small table keyed by common label words gives sensible SNOMED CT defaults, and
 * anything unknown is "Tissue" / "Morphologically Altered Structure".
 */
import { z } from 'zod';
import { labelColour } from '../palette.ts';

/** No backslash (the DICOM value separator) and no control characters. */
const dicomText = (max: number) => z.string().trim().min(1).max(max).regex(/^[^\\\x00-\x1f]*$/, 'no backslash or control characters');

/** A Code Sequence item (PS3.3 Table 8.8-1), with DICOM's own keywords: CodeValue (SH), CodingSchemeDesignator (SH), CodeMeaning (LO). */
export const CodeSchema = z.strictObject({
  CodeValue: dicomText(16),
  CodingSchemeDesignator: dicomText(16),
  CodeMeaning: dicomText(64),
});
export type Code = z.infer<typeof CodeSchema>;

/** A label's codes as model.json names them: the segmented property category (CID 7150) and type (CID 7151). */
export const SegmentCodesSchema = z.strictObject({ category: CodeSchema, type: CodeSchema });

export interface SegmentCodes {
  category: Code;
  type: Code;
  /** CIELab as DICOM stores it (PS3.3 C.10.7.1.1: L 0..0xFFFF, a/b offset 0x8080); a viewer's default colour. */
  cielab?: [number, number, number];
}

const sct = (CodeValue: string, CodeMeaning: string): Code => ({ CodeValue, CodingSchemeDesignator: 'SCT', CodeMeaning });

export const CATEGORY = {
  tissue: sct('85756007', 'Tissue'),
  anatomicalStructure: sct('123037004', 'Anatomical Structure'),
  morphologicallyAltered: sct('49755003', 'Morphologically Altered Structure'),
} as const;

/** Label word (lower case, matched as a whole word of the label) -> codes. First match wins. */
const TABLE: Array<[RegExp, Omit<SegmentCodes, 'cielab'>]> = [
  [/\bpneumothora(x|ces)\b/, { category: CATEGORY.morphologicallyAltered, type: sct('36118008', 'Pneumothorax') }],
  [/\b(tumou?r|neoplasm|glioma)s?\b/, { category: CATEGORY.morphologicallyAltered, type: sct('108369006', 'Neoplasm') }],
  [/\b(lesion)s?\b/, { category: CATEGORY.morphologicallyAltered, type: sct('52988006', 'Lesion') }],
  [/\b(nodule)s?\b/, { category: CATEGORY.morphologicallyAltered, type: sct('27925004', 'Nodule') }],
  [/\b(o?edema)\b/, { category: CATEGORY.morphologicallyAltered, type: sct('79654002', 'Edema') }],
  [/\blungs?\b/, { category: CATEGORY.anatomicalStructure, type: sct('39607008', 'Lung') }],
  [/\bheart\b/, { category: CATEGORY.anatomicalStructure, type: sct('80891009', 'Heart') }],
  [/\bbrain\b/, { category: CATEGORY.anatomicalStructure, type: sct('12738006', 'Brain') }],
  [/\bliver\b/, { category: CATEGORY.anatomicalStructure, type: sct('10200004', 'Liver') }],
  [/\bkidneys?\b/, { category: CATEGORY.anatomicalStructure, type: sct('64033007', 'Kidney') }],
  [/\bspleen\b/, { category: CATEGORY.anatomicalStructure, type: sct('78961009', 'Spleen') }],
];

export const DEFAULT_CODES: Omit<SegmentCodes, 'cielab'> = { category: CATEGORY.tissue, type: CATEGORY.morphologicallyAltered };

/** The codes for a label: exact table match on its words ("left_lung", "Lung", "brain tumour" all work). */
export function codesForLabel(label: string, segmentNumber = 1): SegmentCodes {
  const words = label.toLowerCase().replace(/[^a-z0-9]+/g, ' ');
  const hit = TABLE.find(([re]) => re.test(words));
  const base = hit ? hit[1] : DEFAULT_CODES;
  return { ...base, cielab: srgbToDicomLab(labelColour(segmentNumber - 1)) };
}

/**
 * writeSeg's `codes` for the SEG's labels (segment i + 1 is labels[i]) from a manifest's `segments`:
 * the named labels' category and type, with the palette colour codesForLabel gives their segment number.
 * Undefined when the manifest names none (writeSeg then uses codesForLabel for every label).
 */
export function manifestCodes(labels: readonly string[], named: Readonly<Record<string, z.infer<typeof SegmentCodesSchema>>> | undefined): Record<string, SegmentCodes> | undefined {
  if (!named) return undefined;
  const out: Record<string, SegmentCodes> = {};
  labels.forEach((label, i) => {
    const c = named[label];
    if (c) out[label] = { ...codesForLabel(label, i + 1), category: c.category, type: c.type };
  });
  return Object.keys(out).length > 0 ? out : undefined;
}

/** sRGB (0..255) -> DICOM-scaled CIELab (D65), as PS3.3 C.10.7.1.1 stores RecommendedDisplayCIELabValue. */
export function srgbToDicomLab([r8, g8, b8]: readonly [number, number, number]): [number, number, number] {
  const lin = (c: number) => {
    const v = c / 255;
    return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  const [r, g, b] = [lin(r8), lin(g8), lin(b8)];
  const x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
  const y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  const z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
  const f = (t: number) => (t > 216 / 24389 ? Math.cbrt(t) : (24389 / 27 * t + 16) / 116);
  const L = 116 * f(y) - 16;
  const a = 500 * (f(x) - f(y));
  const bb = 200 * (f(y) - f(z));
  const clamp = (v: number) => Math.max(0, Math.min(0xffff, Math.round(v)));
  return [clamp((L * 0xffff) / 100), clamp(((a + 128) * 0xffff) / 255), clamp(((bb + 128) * 0xffff) / 255)];
}
