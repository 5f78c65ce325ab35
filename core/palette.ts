/**
 * The one label palette: Okabe-Ito's colour-blind-safe set (sRGB), label k (0-based, background left
 * out) in colour k, cycled. The service's overlays, the SEG's recommended display colours and the
 * trainer's report draw with it, so a class has the same colour everywhere.
 */
export const LABEL_COLOURS: ReadonlyArray<readonly [number, number, number]> = [
  [230, 159, 0],
  [86, 180, 233],
  [0, 158, 115],
  [240, 228, 66],
  [0, 114, 178],
  [213, 94, 0],
  [204, 121, 167],
];

export function labelColour(k: number): readonly [number, number, number] {
  return LABEL_COLOURS[k % LABEL_COLOURS.length]!;
}

/** As '#RRGGBB', for SVG. */
export function labelColourHex(k: number): string {
  return '#' + labelColour(k).map((v) => v.toString(16).padStart(2, '0').toUpperCase()).join('');
}
