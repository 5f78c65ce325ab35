/**
 * The base of every typed core error, and the registry that lets one cross a thread boundary.
 *
 * A CodedError carries a stable `code` (API: clients and the HTTP layer read it), an HTTP-ish `status`
 * (what the failure means for a request: 4xx the input's fault, 5xx ours; the HTTP layer may refine it)
 * and a one-line `message`. Each concrete class is registered once, next to its declaration, with
 * `registerError(Class)`. structured clone keeps only an Error's message, so `toWireError` sends the
 * class name and every own field, and `fromWireError` rebuilds an instance of the registered class with
 * the same code and fields (an unregistered or plain error is handed to the caller's fallback).
 */

export abstract class CodedError<C extends string = string> extends Error {
  readonly code: C;
  /** 400..599: what this failure means for a request (the HTTP layer's default mapping). */
  readonly status: number;
  constructor(code: C, message: string, status: number) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
  }
}

type ErrorClass = abstract new (...args: never[]) => CodedError;

const registry = new Map<string, ErrorClass>();

/** Make `cls` crossable: its instances are rebuilt as `cls` by fromWireError. Call once per class. */
export function registerError(cls: ErrorClass): void {
  const have = registry.get(cls.name);
  if (have && have !== cls) throw new Error(`registerError: two error classes named ${cls.name}`);
  registry.set(cls.name, cls);
}

export function isRegisteredError(name: string): boolean {
  return registry.has(name);
}

/** A typed error as it crosses postMessage: plain, structured-cloneable data. */
export interface WireError {
  name: string;
  message: string;
  code?: string;
  /** Every own field of the error (code, status, details, field, model, ...), for registered classes. */
  fields?: Record<string, unknown>;
  stack?: string;
}

export function toWireError(e: unknown): WireError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) };
  const w: WireError = { name: e.name, message: e.message };
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string') w.code = code;
  if (e.stack) w.stack = e.stack;
  if (e instanceof CodedError && registry.get(e.name) === e.constructor) {
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e)) if (k !== 'stack' && k !== 'message' && typeof v !== 'function') fields[k] = v;
    w.fields = fields;
  }
  return w;
}

/**
 * The registered class's instance for `w` (same class, code, status and fields; the stack is the
 * thrower's), or `fallback(w)` for an error whose class is not registered.
 */
export function fromWireError(w: WireError, fallback: (w: WireError) => Error): Error {
  const cls = w.fields ? registry.get(w.name) : undefined;
  if (!cls) return fallback(w);
  const e = Object.create(cls.prototype) as CodedError;
  // As Error's own constructor defines it: non-enumerable.
  Object.defineProperty(e, 'message', { value: w.message, writable: true, configurable: true, enumerable: false });
  Object.assign(e, w.fields);
  Object.defineProperty(e, 'stack', { value: w.stack ?? `${w.name}: ${w.message}`, writable: true, configurable: true, enumerable: false });
  return e;
}
