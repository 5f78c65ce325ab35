/**
 * Training report written next to the model: training-curves.png (training and validation loss,
 * total and per term, validation Dice beside the all-empty baseline, and the learning rate per
 * epoch; an SVG drawn here and rasterised by sharp), scalars.csv (the same figures as numbers), validation-overlays.png (image / truth /
 * prediction for a few validation images) and training-log.json (every per-epoch figure).
 * Single-label overlays use the same palette's blue (truth) and orange (prediction), with a legend.
 * Multi-class runs add each class's validation Dice to the curves and draw the overlays as class
 * maps, one colour per class from the Okabe-Ito palette (distinguishable with the common forms of
 * colour blindness), with a legend.
 */
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { labelColour, labelColourHex } from '../core/palette.ts';
import { LOSS_SETS, type LossSet } from './model/loss-set.ts';
import type { EpochMetrics } from './run/types.ts';
import { DEFAULT_THRESHOLD } from '../core/segmentation/postprocessing.ts';
import { isForeground } from '../core/segmentation/threshold.ts';

export type { EpochMetrics };

/** One colour per loss term, in LOSS_TERMS order (Tableau 10, skipping the total's and the Dice series'). */
const TERM_COLOURS = ['#9467bd', '#2ca02c', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(10)));
  return out;
}

interface Series {
  label: string;
  colour: string;
  values: number[];
  dashed?: boolean;
  /** Legend: 'pair' shows a solid and a dashed swatch (the next series is the dashed one and has 'none'). */
  legend?: 'pair' | 'none';
}

/**
 * One plot: axes, ticks, series, an optional best-epoch mark, and the legend in the top right above
 * the data (the y range gets headroom for it, the ticks stop at the data's range), so it never hides
 * a curve. A fixed `yRange` (Dice 0..1) keeps its ticks.
 */
function panel(x0: number, y0: number, w: number, h: number, title: string, epochs: number[], series: Series[], yRange?: [number, number], mark?: number): string {
  const all = series.flatMap((s) => s.values).filter(Number.isFinite);
  let [lo, hi] = yRange ?? [Math.min(...all), Math.max(...all)];
  const left = x0 + 60;
  const right = x0 + w - 15;
  const top = y0 + 35;
  const bottom = y0 + h - 45;
  const legend = series.filter((s) => s.legend !== 'none');
  const legendH = 10 + legend.length * 16;
  if (!yRange) {
    const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1;
    lo = Math.max(0, lo - pad);
    hi += pad;
  }
  const tickHi = hi;
  const share = Math.min(0.6, (legendH + 6) / (bottom - top));
  hi += ((hi - lo) * share) / (1 - share);
  const xMin = epochs[0] ?? 1;
  const xMax = Math.max(epochs[epochs.length - 1] ?? 1, xMin + 1);
  const sx = (e: number): number => left + ((e - xMin) / (xMax - xMin)) * (right - left);
  const sy = (v: number): number => bottom - ((v - lo) / (hi - lo)) * (bottom - top);
  const parts: string[] = [];
  parts.push(`<text x="${(left + right) / 2}" y="${y0 + 20}" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`);
  for (const t of niceTicks(lo, tickHi)) {
    parts.push(`<line x1="${left}" x2="${right}" y1="${sy(t)}" y2="${sy(t)}" stroke="#e3e3e3"/>`);
    parts.push(`<text x="${left - 6}" y="${sy(t) + 4}" text-anchor="end" font-size="11">${t}</text>`);
  }
  const xt = epochs.length <= 12 ? epochs : niceTicks(xMin, xMax, 8).filter((t) => Number.isInteger(t));
  for (const t of xt) parts.push(`<text x="${sx(t)}" y="${bottom + 16}" text-anchor="middle" font-size="11">${t}</text>`);
  parts.push(`<text x="${(left + right) / 2}" y="${bottom + 34}" text-anchor="middle" font-size="12">epoch</text>`);
  parts.push(`<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#444"/>`);
  if (mark !== undefined) {
    parts.push(`<line x1="${sx(mark)}" x2="${sx(mark)}" y1="${top}" y2="${bottom}" stroke="#999" stroke-dasharray="4 3"/>`);
    // Left of the line when it is in the right half, so the text stays inside the panel.
    const atRight = sx(mark) > (left + right) / 2;
    parts.push(`<text x="${sx(mark) + (atRight ? -4 : 4)}" y="${bottom - 6}" font-size="11" fill="#666"${atRight ? ' text-anchor="end"' : ''}>best (epoch ${mark})</text>`);
  }
  const dashOf = (s: Series): string => (s.dashed ? ' stroke-dasharray="6 4"' : '');
  for (const s of series) {
    const pts = s.values.map((v, i) => (Number.isFinite(v) ? `${sx(epochs[i]!).toFixed(1)},${sy(v).toFixed(1)}` : '')).filter(Boolean);
    if (pts.length > 1) parts.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${s.colour}" stroke-width="2"${dashOf(s)}/>`);
    for (const p of pts) {
      const [px, py] = p.split(',');
      parts.push(`<circle cx="${px}" cy="${py}" r="2.5" fill="${s.colour}"/>`);
    }
  }
  legend.forEach((s, k) => {
    const ly = top + 14 + k * 16;
    if (s.legend === 'pair') {
      parts.push(`<line x1="${right - 150}" x2="${right - 141}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.colour}" stroke-width="2"/>`);
      parts.push(`<line x1="${right - 137}" x2="${right - 128}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.colour}" stroke-width="2" stroke-dasharray="3 2"/>`);
    } else parts.push(`<line x1="${right - 150}" x2="${right - 128}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.colour}" stroke-width="2"${dashOf(s)}/>`);
    parts.push(`<text x="${right - 122}" y="${ly}" font-size="11">${esc(s.label)}</text>`);
  });
  return parts.join('\n');
}

/** The colour of foreground class k (0-based among the non-background classes): core/palette.ts, as the service draws it. */
export const classColour = (k: number): string => labelColourHex(k);

export function curvesSvg(history: readonly EpochMetrics[], title: string, losses: LossSet = LOSS_SETS.sigmoid): string {
  const W = 1000;
  const top = 410;
  const H = top + 330;
  const epochs = history.map((h) => h.epoch);
  const best = history.filter((h) => h.best).pop();
  const classLabels = Object.keys(history.find((h) => h.valClassDice)?.valClassDice ?? {});
  // Training solid, validation dashed, in both loss panels; histories from before the validation
  // loss was recorded have no validation series.
  const hasVal = history.some((h) => Number.isFinite(h.valLoss));
  const termSeries = losses.terms.flatMap((t, i) => {
    const colour = TERM_COLOURS[i % TERM_COLOURS.length]!;
    const train: Series = { label: t.label, colour, values: history.map((h) => h.trainLosses[t.name] ?? Number.NaN) };
    if (!hasVal) return [train];
    return [{ ...train, legend: 'pair' as const }, { label: t.label, colour, values: history.map((h) => h.valLosses?.[t.name] ?? Number.NaN), dashed: true, legend: 'none' as const }];
  });
  const body = [
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="16">${esc(title)}</text>`,
    panel(0, 30, W / 2, top - 30, `${losses.title}: weighted total`, epochs, [
      { label: 'train', colour: '#1f77b4', values: history.map((h) => h.trainLoss) },
      ...(hasVal ? [{ label: 'validation', colour: '#1f77b4', values: history.map((h) => h.valLoss ?? Number.NaN), dashed: true }] : []),
    ]),
    panel(W / 2, 30, W / 2, top - 30, classLabels.length ? 'validation Dice (mean over classes, and per class)' : 'validation Dice', epochs, [
      { label: classLabels.length ? 'mean, model resolution' : 'model resolution', colour: '#d62728', values: history.map((h) => h.valDice) },
      { label: classLabels.length ? 'mean, original resolution' : 'original resolution', colour: '#ff7f0e', values: history.map((h) => h.valDiceOriginal), dashed: true },
      ...classLabels.map((l, k) => ({ label: l, colour: classColour(k), values: history.map((h) => h.valClassDice?.[l] ?? Number.NaN) })),
      // The predict-nothing score: a Dice on this line learned nothing.
      ...(history.some((h) => Number.isFinite(h.valBaseline)) ? [{ label: 'all-empty baseline', colour: '#555555', values: history.map((h) => h.valBaseline ?? Number.NaN), dashed: true }] : []),
    ], [0, 1], best?.epoch),
    panel(0, top, W / 2, H - top, hasVal ? 'loss terms (unweighted): train solid, validation dashed' : 'loss terms (unweighted)', epochs, termSeries),
    panel(W / 2, top, W / 2, H - top, 'learning rate', epochs, [{ label: 'lr', colour: '#0072B2', values: history.map((h) => h.lr) }], [0, Math.max(...history.map((h) => h.lr).filter(Number.isFinite), 1e-12) * 1.1]),
  ];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans, sans-serif">\n${body.join('\n')}\n</svg>\n`;
}

export async function writeCurvesPng(path: string, history: readonly EpochMetrics[], title: string, losses?: LossSet): Promise<void> {
  await sharp(Buffer.from(curvesSvg(history, title, losses))).png().toFile(path);
}

export interface OverlayExample {
  id: string;
  /** H*W grey values (first channel of the model input, unnormalised 0..1). */
  image: Float32Array;
  truth: Uint8Array;
  /** H*W probabilities. */
  probability: Float32Array;
  dice: number;
}

/** Single-label overlay colours, from the Okabe-Ito palette (blue / orange, safe for the common forms of colour blindness). */
export const TRUTH_COLOUR = labelColourHex(4);
export const PREDICTION_COLOUR = labelColourHex(0);

type Rgb = readonly [number, number, number];
/** A pixel of a label tinted over grey level g (60 % colour). */
const tint = (g: number, c: Rgb): Rgb => [Math.round(0.4 * g + 0.6 * c[0]), Math.round(0.4 * g + 0.6 * c[1]), Math.round(0.4 * g + 0.6 * c[2])];
/** A value of a model-resolution map at a tile's pixel (nearest, tile coordinates). */
type TileSampler = (map: ArrayLike<number>, ty: number, tx: number) => number;

interface SheetRow {
  caption: string;
  /** H*W grey values (windowed to their own min..max). */
  image: Float32Array;
  /** The colours of tiles 2 and 3 at a tile pixel, given its grey level. */
  paint(ty: number, tx: number, g: number, at: TileSampler, tile: number): readonly [Rgb, Rgb];
}

const SHEET_GAP = 4;
/** Top of the legend line, under the column titles. */
const SHEET_LEGEND_Y = 24;

/**
 * The frame every overlay sheet shares: one row per example of three tiles at model resolution
 * ([image | tile 2 | tile 3], painted by the row), column titles, the caller's legend (SVG, at
 * SHEET_LEGEND_Y) and a caption above each row.
 */
async function writeOverlaySheet(path: string, height: number, width: number, titles: readonly string[], legend: readonly string[], rows: readonly SheetRow[]): Promise<void> {
  const tile = Math.max(160, Math.min(256, Math.max(height, width)));
  const scaleY = height / tile;
  const scaleX = width / tile;
  const cols = 3;
  const gap = SHEET_GAP;
  const label = 22;
  const legendH = 26;
  const top = SHEET_LEGEND_Y + legendH;
  const W = cols * tile + (cols + 1) * gap;
  const rowH = tile + label + gap;
  const H = rows.length * rowH + gap + top;
  const rgb = Buffer.alloc(W * H * 3, 255);
  const put = (x: number, y: number, c: Rgb): void => {
    const o = (y * W + x) * 3;
    rgb[o] = c[0];
    rgb[o + 1] = c[1];
    rgb[o + 2] = c[2];
  };
  const texts: string[] = [];
  titles.forEach((t, c) => texts.push(`<text x="${gap + c * (tile + gap) + tile / 2}" y="16" text-anchor="middle" font-size="12">${esc(t)}</text>`));
  texts.push(...legend);
  const at: TileSampler = (arr, ty, tx) => arr[Math.min(height - 1, Math.floor(ty * scaleY)) * width + Math.min(width - 1, Math.floor(tx * scaleX))]!;
  rows.forEach((row, r) => {
    const y0 = top + r * rowH + label;
    texts.push(`<text x="${gap}" y="${y0 - 6}" font-size="12">${row.caption}</text>`);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of row.image) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const span = hi > lo ? hi - lo : 1;
    for (let ty = 0; ty < tile; ty++) {
      for (let tx = 0; tx < tile; tx++) {
        const g = Math.round(((at(row.image, ty, tx) - lo) / span) * 255);
        const y = y0 + ty;
        const [second, third] = row.paint(ty, tx, g, at, tile);
        put(gap + tx, y, [g, g, g]);
        put(2 * gap + tile + tx, y, second);
        put(3 * gap + 2 * tile + tx, y, third);
      }
    }
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans, sans-serif">${texts.join('')}</svg>`;
  await sharp(rgb, { raw: { width: W, height: H, channels: 3 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .png()
    .toFile(path);
}

/**
 * Rows of [image | truth in blue | prediction in orange, truth outline in blue], at model
 * resolution, under a legend naming the colours.
 */
export async function writeOverlaysPng(path: string, examples: readonly OverlayExample[], height: number, width: number, threshold = DEFAULT_THRESHOLD): Promise<void> {
  if (examples.length === 0) return;
  const truthRgb = labelColour(4);
  const predRgb = labelColour(0);
  const legend: string[] = [];
  let lx = SHEET_GAP;
  for (const [name, colour, outline] of [['truth', TRUTH_COLOUR, false], ['prediction', PREDICTION_COLOUR, false], ['truth outline', TRUTH_COLOUR, true]] as const) {
    legend.push(outline ? `<rect x="${lx + 1}" y="${29}" width="12" height="12" fill="none" stroke="${colour}" stroke-width="2"/>` : `<rect x="${lx}" y="${28}" width="14" height="14" fill="${colour}" stroke="#333"/>`);
    legend.push(`<text x="${lx + 18}" y="${40}" font-size="12">${esc(name)}</text>`);
    lx += 30 + 7.5 * name.length;
  }
  const rows = examples.map((ex): SheetRow => ({
    caption: esc(`${ex.id.length > 48 ? '...' + ex.id.slice(-45) : ex.id}   Dice ${ex.dice.toFixed(3)}   truth ${ex.truth.some((v) => v) ? 'positive' : 'empty'}`),
    image: ex.image,
    paint(ty, tx, g, at, tile) {
      const grey: Rgb = [g, g, g];
      const t = at(ex.truth, ty, tx) !== 0;
      const p = isForeground(at(ex.probability, ty, tx), threshold);
      // Truth outline: the test runs on the tile grid, so neighbours are looked up in tile coordinates.
      const edge = t && (at(ex.truth, Math.max(0, ty - 1), tx) === 0 || at(ex.truth, Math.min(tile - 1, ty + 1), tx) === 0 || at(ex.truth, ty, Math.max(0, tx - 1)) === 0 || at(ex.truth, ty, Math.min(tile - 1, tx + 1)) === 0 || ty === 0 || tx === 0 || ty === tile - 1 || tx === tile - 1);
      return [t ? tint(g, truthRgb) : grey, edge ? truthRgb : p ? tint(g, predRgb) : grey];
    },
  }));
  await writeOverlaySheet(path, height, width, ['image', 'truth', 'prediction + truth outline'], legend, rows);
}

export interface ClassOverlayExample {
  id: string;
  /** H*W grey values (first channel of the model input, unnormalised 0..1). */
  image: Float32Array;
  /** H*W class indices: the truth, and the prediction (argmax of the softmax probabilities). */
  truth: Uint8Array;
  predicted: Uint8Array;
  /** Mean Dice over the non-background classes, and each class's. */
  dice: number;
  classDice?: Record<string, number>;
}


/**
 * Multi-class overlays: rows of [image | truth | prediction], each class painted in its colour over
 * the grey image (background left grey), with a legend naming the classes and colours.
 */
export async function writeClassOverlaysPng(path: string, examples: readonly ClassOverlayExample[], height: number, width: number, labels: readonly string[], background = 0): Promise<void> {
  if (examples.length === 0) return;
  // Colour of class c: background none, the others Okabe-Ito in order.
  const fgIndex = labels.map((_, c) => (c === background ? -1 : c < background ? c : c - 1));
  const colours = labels.map((_, c) => (c === background ? null : labelColour(fgIndex[c]!)));
  // Legend: a swatch and the name of each non-background class.
  const legend: string[] = [];
  let lx = SHEET_GAP;
  labels.forEach((l, c) => {
    if (!colours[c]) return;
    legend.push(`<rect x="${lx}" y="${SHEET_LEGEND_Y + 4}" width="14" height="14" fill="${classColour(fgIndex[c]!)}" stroke="#333"/>`);
    legend.push(`<text x="${lx + 18}" y="${SHEET_LEGEND_Y + 16}" font-size="12">${esc(l)}</text>`);
    lx += 26 + 7.5 * l.length;
  });
  legend.push(`<text x="${lx + 6}" y="${SHEET_LEGEND_Y + 16}" font-size="11" fill="#555">(${esc(labels[background] ?? 'background')}: unpainted)</text>`);
  const rows = examples.map((ex): SheetRow => {
    const per = ex.classDice ? '  (' + Object.entries(ex.classDice).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ') + ')' : '';
    const colourAt = (map: Uint8Array, g: number, at: TileSampler, ty: number, tx: number): Rgb => {
      const c = colours[at(map, ty, tx)];
      return c ? tint(g, c) : [g, g, g];
    };
    return {
      caption: `${esc(ex.id.length > 40 ? '...' + ex.id.slice(-37) : ex.id)}   mean Dice ${ex.dice.toFixed(3)}${esc(per)}`,
      image: ex.image,
      paint: (ty, tx, g, at) => [colourAt(ex.truth, g, at, ty, tx), colourAt(ex.predicted, g, at, ty, tx)],
    };
  });
  await writeOverlaySheet(path, height, width, ['image', 'truth', 'prediction'], legend, rows);
}

const csvCell = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '' : String(v));

/**
 * The per-epoch scalars as CSV (one row per epoch, a header naming the columns), for a spreadsheet
 * or a tracking tool: epoch, lr, train loss and its terms, validation loss and its terms
 * (`val_loss_<term>`: `val_dice` is the validation Dice), validation Dice (model and original
 * resolution), the all-empty baseline, per-class Dice, throughput, seconds, best. A figure an epoch
 * lacks (original-resolution Dice skipped, validation loss of an epoch from an older checkpoint) is
 * an empty cell.
 */
export function scalarsCsv(history: readonly EpochMetrics[]): string {
  const terms = [...new Set(history.flatMap((h) => Object.keys(h.trainLosses)))];
  const valTerms = [...new Set(history.flatMap((h) => Object.keys(h.valLosses ?? {})))];
  const classes = [...new Set(history.flatMap((h) => Object.keys(h.valClassDice ?? {})))];
  const header = [
    'epoch', 'lr', 'train_loss', ...terms.map((t) => `train_${t}`), 'val_loss', ...valTerms.map((t) => `val_loss_${t}`),
    'val_dice', 'val_dice_original', 'val_baseline_all_empty', ...classes.map((c) => `val_dice_${c.replace(/[^A-Za-z0-9_-]/g, '_')}`),
    'train_images_per_second', 'seconds', 'best',
  ];
  const rows = history.map((h) =>
    [
      h.epoch, csvCell(h.lr), csvCell(h.trainLoss), ...terms.map((t) => csvCell(h.trainLosses[t])), csvCell(h.valLoss), ...valTerms.map((t) => csvCell(h.valLosses?.[t])),
      csvCell(h.valDice), csvCell(h.valDiceOriginal), csvCell(h.valBaseline), ...classes.map((c) => csvCell(h.valClassDice?.[c])),
      csvCell(h.trainImagesPerSecond), csvCell(h.seconds), h.best ? 1 : 0,
    ].join(','),
  );
  return [header.join(','), ...rows].join('\n') + '\n';
}

export async function writeScalarsCsv(path: string, history: readonly EpochMetrics[]): Promise<void> {
  await writeFile(path, scalarsCsv(history));
}

/**
 * What is rewritten after every epoch in a directory (the run's work directory): training-curves.png
 * and scalars.csv, so a run can be watched before it ends. Returns the two paths.
 */
export async function writeEpochReport(dir: string, history: readonly EpochMetrics[], title: string, losses?: LossSet): Promise<{ curves: string; scalars: string }> {
  const out = { curves: join(dir, 'training-curves.png'), scalars: join(dir, 'scalars.csv') };
  // Written beside and renamed over, so a viewer never reads half a file.
  const tmp = join(dir, '.training-curves.tmp.png');
  await writeCurvesPng(tmp, history, title, losses);
  await rename(tmp, out.curves);
  await writeFile(out.scalars + '.tmp', scalarsCsv(history));
  await rename(out.scalars + '.tmp', out.scalars);
  return out;
}

export async function writeTrainingLog(dir: string, log: unknown): Promise<string> {
  const path = join(dir, 'training-log.json');
  await writeFile(path, JSON.stringify(log, null, 2) + '\n');
  return path;
}
