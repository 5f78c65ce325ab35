/**
 * Command-line argument parsers shared by the trainer, synth and segment CLIs. Each takes the raw
 * string commander hands an option and returns the typed value, or throws commander's
 * InvalidArgumentError, which commander prints as one line ("error: option '--x <n>' argument 'y'
 * is invalid. <message>") and exits non-zero.
 *
 * `fromSchema` turns a zod schema into a parser, so a CLI whose options are declared as zod
 * schemas (trainer/config.ts) checks a flag with exactly the bounds its config enforces.
 */
import { InvalidArgumentError, Option } from 'commander';
import { z } from 'zod';
import { IntensitySchema, type Intensity } from '../preprocess/spec.ts';

export type ArgParser<T> = (value: string) => T;

/** A decimal number, rejecting '' and whitespace (which Number() reads as 0). */
function num(value: string): number {
  return value.trim() === '' ? Number.NaN : Number(value);
}

const isIntText = (value: string): boolean => /^\s*[+-]?\d+\s*$/.test(value);

/** An integer in lo..hi (inclusive). */
export function int(lo = Number.MIN_SAFE_INTEGER, hi = Number.MAX_SAFE_INTEGER): ArgParser<number> {
  return (value) => {
    const n = num(value);
    if (!isIntText(value) || n < lo || n > hi) {
      throw new InvalidArgumentError(hi === Number.MAX_SAFE_INTEGER ? `must be an integer >= ${lo}.` : `expected an integer in ${lo}..${hi}`);
    }
    return n;
  };
}

export const positiveInt: ArgParser<number> = (value) => {
  const n = num(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer.');
  return n;
};

export const nonNegativeInt: ArgParser<number> = (value) => {
  const n = num(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer.');
  return n;
};

export const positiveNumber: ArgParser<number> = (value) => {
  const n = num(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number.');
  return n;
};

export const finiteNumber: ArgParser<number> = (value) => {
  const n = num(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError('must be a number.');
  return n;
};

/** A number in lo..hi; `open` excludes the bounds. */
export function floatInRange(lo: number, hi: number, o: { open?: boolean } = {}): ArgParser<number> {
  return (value) => {
    const n = num(value);
    const ok = o.open ? n > lo && n < hi : n >= lo && n <= hi;
    if (!ok) throw new InvalidArgumentError(o.open ? `must be a number between ${lo} and ${hi} (exclusive).` : `expected a number in ${lo}..${hi}`);
    return n;
  };
}

/** A probability strictly between 0 and 1 (thresholds, priors). */
export const probability: ArgParser<number> = floatInRange(0, 1, { open: true });

/** A fraction in 0..1 inclusive. */
export const fraction: ArgParser<number> = floatInRange(0, 1);

/** One of `values`. (For plain choices prefer commander's Option.choices, which lists them in --help.) */
export function oneOf<const T extends string>(values: readonly T[]): ArgParser<T> {
  return (value) => {
    if (!(values as readonly string[]).includes(value)) throw new InvalidArgumentError(`must be one of ${values.join(', ')}.`);
    return value as T;
  };
}

/** Comma-separated positive integers; '' is the empty list. */
export const positiveIntList: ArgParser<number[]> = (value) => {
  if (value.trim() === '') return [];
  const xs = value.split(',').map((s) => num(s));
  if (xs.some((n) => !Number.isInteger(n) || n < 1)) throw new InvalidArgumentError('must be comma-separated positive integers.');
  return xs;
};

/** Comma-separated non-negative numbers, exactly `names.length` of them, as a record keyed by `names`. */
export function namedNumbers<const K extends string>(names: readonly K[], example?: readonly number[]): ArgParser<Record<K, number>> {
  return (value) => {
    const xs = value.split(',').map((s) => num(s));
    if (xs.length !== names.length || xs.some((n) => !Number.isFinite(n) || n < 0)) {
      throw new InvalidArgumentError(`must be ${names.length} non-negative numbers: ${names.join(',')}${example ? ` (e.g. ${example.join(',')})` : ''}.`);
    }
    return Object.fromEntries(names.map((k, i) => [k, xs[i]!])) as Record<K, number>;
  };
}

export interface Size {
  height: number;
  width: number;
}

/** A positive pixel size: '256' (square) or '<height>x<width>' ('256x320'). */
export const size: ArgParser<Size> = (value) => {
  const m = /^\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?$/.exec(value);
  const height = m ? Number(m[1]) : Number.NaN;
  const width = m?.[2] !== undefined ? Number(m[2]) : height;
  if (!(height >= 1 && width >= 1)) throw new InvalidArgumentError('must be a positive size in pixels: N or HxW (e.g. 256 or 256x320).');
  return { height, width };
};

/**
 * A parser from a zod schema: the text is read as a number when the schema takes one, then checked
 * by the schema, so the flag has the schema's bounds and the schema's message.
 */
export function fromSchema<S extends z.ZodType>(schema: S): ArgParser<z.output<S>> {
  const numeric = takesNumber(schema);
  return (value) => {
    const r = schema.safeParse(numeric ? num(value) : value);
    if (!r.success) throw new InvalidArgumentError(`${r.error.issues[0]?.message ?? 'invalid value'}.`);
    return r.data;
  };
}

function takesNumber(schema: z.ZodType): boolean {
  let s: z.ZodType = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap() as z.ZodType;
  return s instanceof z.ZodNumber;
}

/**
 * Options declared as the entries of a zod object: each entry's schema gives the type, bounds,
 * default (`.default()`) and help text (`.describe()`); `CliMeta` adds the flag. `schemaOptions`
 * makes the commander options, `optionValues` reads them back under the entry's key (whatever
 * commander's attribute name for the flag), ready for the object schema's own parse.
 */
export interface CliMeta {
  /** '--batch-size <n>', '--verbose', '--no-augment' (a switch that defaults to true). */
  flag: string;
  /** Argument parser; by default numbers are parsed and checked by the entry's schema, and enums become choices. */
  parse?: ArgParser<unknown>;
  /** --help text for the default, when printing the value itself is unhelpful. */
  defaultText?: string;
}

export type OptionShape = Readonly<Record<string, z.ZodType>>;

function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap() as z.ZodType;
  return s;
}

export function schemaOptions(shape: OptionShape, cliOf: (key: string) => CliMeta | undefined): Option[] {
  const out: Option[] = [];
  for (const [key, schema] of Object.entries(shape)) {
    const cli = cliOf(key);
    if (!cli) continue;
    const o = new Option(cli.flag, schema.description);
    const inner = unwrap(schema);
    const empty = schema.safeParse(undefined);
    if (!empty.success) o.makeOptionMandatory();
    else if (empty.data !== undefined && !(inner instanceof z.ZodBoolean)) o.default(empty.data, cli.defaultText);
    if (cli.parse) o.argParser(cli.parse);
    else if (inner instanceof z.ZodEnum) o.choices(inner.options.map(String));
    else if (inner instanceof z.ZodNumber) o.argParser(fromSchema(schema));
    out.push(o);
  }
  return out;
}

export function optionValues(shape: OptionShape, cliOf: (key: string) => CliMeta | undefined, opts: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(shape)) {
    const cli = cliOf(key);
    if (!cli) continue;
    const v = opts[new Option(cli.flag).attributeName()];
    if (v !== undefined) out[key] = v;
  }
  return out;
}

/** Comma-separated finite numbers (core/cli/args.ts has no plain number-list parser yet). */
export const numberList: ArgParser<number[]> = (value) => {
  const xs = value.split(',').map((s) => (s.trim() === '' ? Number.NaN : Number(s)));
  if (xs.length === 0 || xs.some((n) => !Number.isFinite(n))) throw new InvalidArgumentError('must be comma-separated numbers (e.g. 0.485,0.456,0.406).');
  return xs;
};

/** Comma-separated labels, non-empty. */
export const labelList: ArgParser<string[]> = (value) => {
  const xs = value.split(',').map((s) => s.trim());
  if (xs.some((s) => s === '')) throw new InvalidArgumentError('must be comma-separated non-empty labels (e.g. lung,heart).');
  return xs;
};

/**
 * An intensity mapping, the trainer's --intensity syntax: minmax | zscore[:CLIP] | range:LOW:HIGH |
 * window:CENTER:WIDTH | dicom-window[:minmax|zscore], as the trainer and the import tool take it.
 */
export const intensity: ArgParser<Intensity> = (value) => {
  const [kind, a, b, ...rest] = value.split(':');
  const n = (s: string | undefined) => (s === undefined || s.trim() === '' ? Number.NaN : Number(s));
  const raw =
    kind === 'range'
      ? { kind, low: n(a), high: n(b) }
      : kind === 'window'
        ? { kind, center: n(a), width: n(b) }
        : kind === 'zscore'
          ? { kind, ...(a === undefined ? {} : { clip: n(a) }) }
          : kind === 'dicom-window'
            ? { kind, ...(a === undefined ? {} : { fallback: a }) }
            : { kind };
  const extra = rest.length > 0 || (kind === 'minmax' && a !== undefined) || ((kind === 'zscore' || kind === 'dicom-window') && b !== undefined);
  const r = IntensitySchema.safeParse(raw);
  if (extra || !r.success || (r.data.kind === 'range' && !(r.data.high > r.data.low))) {
    throw new InvalidArgumentError('must be minmax, zscore[:CLIP], range:LOW:HIGH, window:CENTER:WIDTH or dicom-window[:minmax|zscore].');
  }
  return r.data;
};
