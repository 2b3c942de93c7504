/**
 * @module Rule conditions: argument paths, principal references and the operators, compiled once per policy set and
 * evaluated per call against the tool's or prompt's arguments.
 *
 * Every condition answers true, false or {@link UNEVALUABLE} (a missing argument, a type the operator does not take,
 * a principal reference that does not resolve, a regex input over {@link MAX_REGEX_INPUT}). The engine reads
 * "unevaluable" as a match for a deny rule and a non-match for an allow rule, so what cannot be checked is refused.
 * Nothing is coerced: `42` is not `"42"` and `["c-42"]` is not `"c-42"`.
 *
 * Param paths (`param:`), a small grammar:
 *
 *     path    := head tail*            e.g.  customer.id   items[0].sku   meta["key with space"]
 *     head    := name | bracket
 *     tail    := "." name | bracket
 *     name    := [A-Za-z0-9_$-]+       a property of an object
 *     bracket := "[" index "]"         an element of a list: 0 or [1-9][0-9]{0,8}
 *              | "[" string "]"        a property of an object, any non-empty name, as a JSON string literal
 *
 * Only own properties resolve (never `__proto__`, `constructor` or anything else inherited), names only on mappings
 * and indexes only on lists.
 *
 * Principal references in string values: `${principal.tenant}`, `${principal.consumerId}` (or
 * `${principal.consumer}`), `${principal.keyId}`, `${principal.claims.<path>}` / `${principal.claims[<...>]...}`.
 * A string that is exactly one reference takes the referenced value with its JSON type (a claim may be a number or
 * a list); a reference inside a longer string must be a string or a number and is spliced in. Any other `${...}` is
 * refused when the policy is loaded.
 *
 * Regexes are anchored (`^(?:p)$`, so `abc` never matches "xabcx"), compiled once with the `u` flag, refused when
 * a repeated group itself repeats (catastrophic backtracking), and never run on strings over MAX_REGEX_INPUT.
 */

/** A JSON value as arguments and conditions carry it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonScalar = null | boolean | number | string;

/** A condition's answer: true, false, or "cannot be evaluated" (fail closed: deny matches, allow does not). */
export const UNEVALUABLE = undefined;
export type ConditionResult = boolean | typeof UNEVALUABLE;

/** Longer strings are not run through a condition's regex (bounded work per call); the condition is unevaluable. */
export const MAX_REGEX_INPUT = 4096;
export const MAX_PATTERN_LENGTH = 256;
export const MAX_PATH_LENGTH = 256;
const MAX_PATH_DEPTH = 32;

export const OPERATORS = ["eq", "neq", "in", "not_in", "regex", "prefix", "lt", "lte", "gt", "gte", "exists"] as const;
export type Operator = (typeof OPERATORS)[number];

/** What of the principal a condition may reference (the engine's PolicyPrincipal satisfies it). */
export interface PrincipalFacts {
  readonly tenant: string;
  readonly consumer: string;
  readonly keyId: string;
  readonly claims?: Readonly<Record<string, unknown>> | undefined;
}

/** The condition shape the schema validates (kept structural so this module does not import the schema). */
export interface ConditionSpec {
  param: string;
  operator: Operator;
  value?: unknown;
}

export interface CompiledCondition {
  readonly param: string;
  readonly operator: Operator;
  evaluate(args: unknown, principal: PrincipalFacts): ConditionResult;
}

// ---------------------------------------------------------------------------------------------------------------
// Paths

export type PathSegment = { readonly key: string } | { readonly index: number };

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const NAME = /[A-Za-z0-9_$-]+/y;
const INDEX = /(0|[1-9][0-9]{0,8})\]/y;
const QUOTED = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9A-Fa-f]{4}))*"\]/y;

/** Parses a param path (the grammar above); the error says where it went wrong. */
export function parsePath(text: string): Parsed<PathSegment[]> {
  if (text.length === 0) return { ok: false, error: "must not be empty" };
  if (text.length > MAX_PATH_LENGTH) return { ok: false, error: `must be at most ${MAX_PATH_LENGTH} characters` };
  const segments: PathSegment[] = [];
  let at = 0;
  const fail = (what: string): Parsed<PathSegment[]> => ({
    ok: false,
    error: `${what} at character ${at + 1} of "${text}" (a path is like customer.id, items[0].sku or meta["key with space"])`,
  });
  while (at < text.length) {
    const first = segments.length === 0;
    const ch = text[at];
    if (ch === "[") {
      at += 1;
      INDEX.lastIndex = at;
      const index = INDEX.exec(text);
      if (index) {
        segments.push({ index: Number(index[1]) });
        at = INDEX.lastIndex;
      } else {
        QUOTED.lastIndex = at;
        const quoted = QUOTED.exec(text);
        if (!quoted) return fail('expected an index (0, 1, …) or a "quoted name" and "]"');
        const key = JSON.parse(quoted[0].slice(0, -1)) as string;
        if (key.length === 0) return fail("empty name");
        segments.push({ key });
        at = QUOTED.lastIndex;
      }
    } else {
      if (!first) {
        if (ch !== ".") return fail('expected "." or "["');
        at += 1;
      }
      NAME.lastIndex = at;
      const name = NAME.exec(text);
      if (!name) return fail("expected a name (A-Z a-z 0-9 _ $ -; quote others as [\"...\"])");
      segments.push({ key: name[0] });
      at = NAME.lastIndex;
    }
    if (segments.length > MAX_PATH_DEPTH) return fail(`more than ${MAX_PATH_DEPTH} segments`);
  }
  return { ok: true, value: segments };
}

/** The value at a path, or undefined when any step is missing, inherited or of the wrong shape. */
export function resolvePath(root: unknown, path: readonly PathSegment[]): unknown {
  let current = root;
  for (const segment of path) {
    if ("index" in segment) {
      if (!Array.isArray(current) || segment.index >= current.length) return undefined;
      current = ownValue(current, String(segment.index));
    } else {
      if (current === null || typeof current !== "object" || Array.isArray(current)) return undefined;
      current = ownValue(current, segment.key);
    }
    if (current === undefined) return undefined;
  }
  return current;
}

function ownValue(target: object, key: string): unknown {
  // A data property of the object itself; accessors and anything inherited do not count.
  const descriptor = Object.getOwnPropertyDescriptor(target, key);
  return descriptor && "value" in descriptor ? descriptor.value : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// JSON types and equality

export type JsonType = "null" | "boolean" | "number" | "string" | "array" | "object";

/** The JSON type of a value, or undefined for what JSON cannot hold (undefined, NaN, functions, bigint…). */
export function jsonType(value: unknown): JsonType | undefined {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return "boolean";
    case "number":
      return Number.isFinite(value) ? "number" : undefined;
    case "string":
      return "string";
    case "object":
      return Array.isArray(value) ? "array" : "object";
    default:
      return undefined;
  }
}

function isScalar(value: unknown): value is JsonScalar {
  const type = jsonType(value);
  return type !== undefined && type !== "array" && type !== "object";
}

/** Deep equality of JSON values (own enumerable properties; recursion bounded by `expected`, the config side). */
export function jsonEqual(actual: unknown, expected: unknown): boolean {
  if (actual === expected) return jsonType(actual) !== undefined;
  const type = jsonType(expected);
  if (type !== jsonType(actual)) return false;
  if (type === "array") {
    const a = actual as unknown[];
    const e = expected as unknown[];
    return a.length === e.length && e.every((item, i) => jsonEqual(ownValue(a, String(i)), item));
  }
  if (type === "object") {
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    const keys = Object.keys(e);
    if (Object.keys(a).length !== keys.length) return false;
    return keys.every((key) => Object.hasOwn(a, key) && jsonEqual(ownValue(a, key), e[key]));
  }
  return false;
}

// ---------------------------------------------------------------------------------------------------------------
// Principal references and value templates

type PrincipalRef = (principal: PrincipalFacts) => unknown;

const REFERENCE = /\$\{([^{}]*)\}/g;

function parseReference(body: string): Parsed<PrincipalRef> {
  switch (body) {
    case "principal.tenant":
      return { ok: true, value: (p) => p.tenant };
    case "principal.consumerId":
    case "principal.consumer":
      return { ok: true, value: (p) => p.consumer };
    case "principal.keyId":
      return { ok: true, value: (p) => p.keyId };
  }
  const claims = "principal.claims";
  if (body.startsWith(`${claims}.`) || body.startsWith(`${claims}[`)) {
    const rest = body.slice(claims.length + (body[claims.length] === "." ? 1 : 0));
    const path = parsePath(rest);
    if (!path.ok) return { ok: false, error: `\${${body}}: the claim path ${path.error}` };
    return { ok: true, value: (p) => (p.claims === undefined ? undefined : resolvePath(p.claims, path.value)) };
  }
  return {
    ok: false,
    error: `\${${body}} is not a principal reference (use \${principal.tenant}, \${principal.consumerId}, \${principal.keyId} or \${principal.claims.<path>})`,
  };
}

/** A config value with its principal references compiled: resolves to a JSON value, or undefined if one fails. */
export type ValueTemplate = (principal: PrincipalFacts) => unknown;

/** Compiles the references in every string of a JSON value (recursively). */
export function compileTemplate(value: unknown): Parsed<ValueTemplate> {
  if (typeof value === "string") return compileString(value);
  if (Array.isArray(value)) {
    const items: ValueTemplate[] = [];
    for (const item of value) {
      const compiled = compileTemplate(item);
      if (!compiled.ok) return compiled;
      items.push(compiled.value);
    }
    if (items.every((t) => isConstant(t))) return constant(value);
    return {
      ok: true,
      value: (p) => {
        const out: unknown[] = [];
        for (const item of items) {
          const v = item(p);
          if (v === undefined) return undefined;
          out.push(v);
        }
        return out;
      },
    };
  }
  if (value !== null && typeof value === "object") {
    const entries: [string, ValueTemplate][] = [];
    for (const [key, item] of Object.entries(value)) {
      const compiled = compileTemplate(item);
      if (!compiled.ok) return compiled;
      entries.push([key, compiled.value]);
    }
    if (entries.every(([, t]) => isConstant(t))) return constant(value);
    return {
      ok: true,
      value: (p) => {
        const out: [string, unknown][] = [];
        for (const [key, item] of entries) {
          const v = item(p);
          if (v === undefined) return undefined;
          out.push([key, v]);
        }
        return Object.fromEntries(out);
      },
    };
  }
  return constant(value);
}

const constants = new WeakSet<ValueTemplate>();
function constant(value: unknown): Parsed<ValueTemplate> {
  const template: ValueTemplate = () => value;
  constants.add(template);
  return { ok: true, value: template };
}
function isConstant(template: ValueTemplate): boolean {
  return constants.has(template);
}

function compileString(text: string): Parsed<ValueTemplate> {
  const parts: (string | PrincipalRef)[] = [];
  let last = 0;
  for (const match of text.matchAll(REFERENCE)) {
    const ref = parseReference(match[1] ?? "");
    if (!ref.ok) return ref;
    if (match.index > last) parts.push(text.slice(last, match.index));
    parts.push(ref.value);
    last = match.index + match[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  const stray = parts.find((part): part is string => typeof part === "string" && part.includes("${"));
  if (stray !== undefined) return { ok: false, error: `"${stray}" has an unterminated or nested \${...}` };
  if (parts.length === 1 && typeof parts[0] === "function") {
    const ref = parts[0];
    // The whole string: the referenced value keeps its JSON type (a list claim for `in`, a number for `lt`).
    return {
      ok: true,
      value: (p) => {
        const v = ref(p);
        return jsonType(v) === undefined ? undefined : v;
      },
    };
  }
  if (parts.every((part) => typeof part === "string")) return constant(text);
  return {
    ok: true,
    value: (p) => {
      let out = "";
      for (const part of parts) {
        if (typeof part === "string") {
          out += part;
          continue;
        }
        const v = part(p);
        if (typeof v === "string" || (typeof v === "number" && Number.isFinite(v))) out += String(v);
        else return undefined;
      }
      return out;
    },
  };
}

/** Why a value's principal references are invalid, or undefined when they are fine (or there are none). */
export function templateError(value: unknown): string | undefined {
  const compiled = compileTemplate(value);
  return compiled.ok ? undefined : compiled.error;
}

/** True when a string is exactly one principal reference (the form `in`/`not_in` accept instead of a list). */
export function isWholeReference(value: string): boolean {
  const matches = [...value.matchAll(REFERENCE)];
  return matches.length === 1 && matches[0]?.[0] === value;
}

// ---------------------------------------------------------------------------------------------------------------
// Regexes

/** Condition regexes are anchored: `abc` matches "abc" only, never "xabcx". */
export function compileConditionRegex(pattern: string): Parsed<RegExp> {
  if (pattern.length > MAX_PATTERN_LENGTH) return { ok: false, error: `must be at most ${MAX_PATTERN_LENGTH} characters` };
  if (pattern.includes("${")) {
    return { ok: false, error: "a regex cannot reference the principal (${...}); use eq, in or prefix for that" };
  }
  if (hasNestedQuantifier(pattern)) {
    return {
      ok: false,
      error: "has a repeated group that itself repeats, like (a+)+ or (a*b?)*: that can take exponential time on a crafted argument; rewrite it without the nesting",
    };
  }
  try {
    return { ok: true, value: new RegExp(`^(?:${pattern})$`, "u") };
  } catch (error) {
    return { ok: false, error: `is not a valid regular expression: ${(error as Error).message}` };
  }
}

/**
 * True when a group containing a quantifier is itself repeated with `*`, `+` or `{…}`: the classic shape of
 * catastrophic backtracking. A heuristic (it does not catch overlapping alternations such as `(a|a)*`), which with
 * the {@link MAX_REGEX_INPUT} cap keeps a condition's worst case bounded for the patterns people write.
 */
export function hasNestedQuantifier(pattern: string): boolean {
  const groups: boolean[] = []; // per open group: does it contain a quantifier?
  const markQuantified = () => {
    if (groups.length > 0) groups[groups.length - 1] = true;
  };
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      i++;
      continue;
    }
    if (inClass) {
      if (c === "]") inClass = false;
      continue;
    }
    if (c === "[") inClass = true;
    else if (c === "(") {
      groups.push(false);
      if (pattern[i + 1] === "?") i++; // (?: (?= (?! (?<name>: not a quantifier
    } else if (c === ")") {
      const quantified = groups.pop() ?? false;
      const next = pattern[i + 1];
      if (quantified && (next === "*" || next === "+" || next === "{")) return true;
      if (quantified || next === "*" || next === "+" || next === "?" || next === "{") markQuantified();
    } else if (c === "*" || c === "+" || c === "?" || c === "{") markQuantified();
  }
  return false;
}

// ---------------------------------------------------------------------------------------------------------------
// Operators

/** Compiles a validated condition; throws on what the schema refuses (a bug: compile only validated policies). */
export function compileCondition(condition: ConditionSpec): CompiledCondition {
  const { param, operator } = condition;
  const path = unwrap(parsePath(param), `param "${param}"`);
  const at = (args: unknown) => resolvePath(args, path);
  const make = (evaluate: CompiledCondition["evaluate"]): CompiledCondition => ({ param, operator, evaluate });

  if (operator === "exists") {
    const want = condition.value === undefined ? true : condition.value === true;
    return make((args) => (at(args) !== undefined) === want);
  }
  if (operator === "regex") {
    const regex = unwrap(compileConditionRegex(String(condition.value)), `regex of "${param}"`);
    return make((args) => {
      const actual = at(args);
      if (typeof actual !== "string" || actual.length > MAX_REGEX_INPUT) return UNEVALUABLE;
      return regex.test(actual);
    });
  }
  const expected = unwrap(compileTemplate(condition.value), `value of "${param}"`);
  switch (operator) {
    case "eq":
    case "neq": {
      const negate = operator === "neq";
      return make((args, principal) => {
        const actual = at(args);
        const want = expected(principal);
        const type = jsonType(actual);
        if (type === undefined || type !== jsonType(want)) return UNEVALUABLE;
        return jsonEqual(actual, want) !== negate;
      });
    }
    case "in":
    case "not_in": {
      const negate = operator === "not_in";
      return make((args, principal) => {
        const actual = at(args);
        const list = expected(principal);
        if (!isScalar(actual) || !Array.isArray(list) || !list.every(isScalar)) return UNEVALUABLE;
        return list.some((item) => item === actual) !== negate;
      });
    }
    case "prefix":
      return make((args, principal) => {
        const actual = at(args);
        const prefix = expected(principal);
        if (typeof actual !== "string" || typeof prefix !== "string") return UNEVALUABLE;
        return actual.startsWith(prefix);
      });
    case "lt":
    case "lte":
    case "gt":
    case "gte": {
      const compare = COMPARE[operator];
      return make((args, principal) => {
        const actual = at(args);
        const bound = expected(principal);
        const type = jsonType(actual);
        if ((type !== "number" && type !== "string") || type !== jsonType(bound)) return UNEVALUABLE;
        return compare(actual as number | string, bound as number | string);
      });
    }
  }
}

const COMPARE: Record<"lt" | "lte" | "gt" | "gte", (a: number | string, b: number | string) => boolean> = {
  lt: (a, b) => a < b,
  lte: (a, b) => a <= b,
  gt: (a, b) => a > b,
  gte: (a, b) => a >= b,
};

function unwrap<T>(parsed: Parsed<T>, what: string): T {
  if (!parsed.ok) throw new Error(`invalid policy condition (validate with policySchema first): ${what} ${parsed.error}`);
  return parsed.value;
}
