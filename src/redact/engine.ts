/**
 * @module The redaction engine: compiled once per config version, it rewrites a JSON-RPC payload for one direction
 * (request, response, audit) and one server and item. Pure (the keyed hash is passed in), linear in the size of the
 * payload, and shape-aware, so the result is still a valid MCP message: text content is scanned (and, when field
 * rules exist and the text is JSON, its fields are matched too), structured content and arguments are walked,
 * images, audio and blobs pass through untouched or are replaced by a text block — never corrupted.
 *
 * Several rules may apply to one call; their detectors and fields add up, and where two rules give a detector
 * different actions the one that reveals less wins: drop, then mask, then hash, then partial.
 *
 * The audit copy is redacted with every rule that covers `response` or `audit`, plus a baseline no tenant can turn
 * off: secrets (API keys, tokens, private keys, this gateway's own keys) are masked.
 */
import { compileGlob, type GlobMatcher } from "../policy/glob.ts";
import { findPii, partialForm, type DetectorName } from "./detectors.ts";
import { accepts, advance, parseFieldPath, startState, type PathSegment, type PathState } from "./paths.ts";
import { defaultRedactionRuleId, type Direction, type RedactionAction, type RedactionConfig } from "./schema.ts";

/** What one call of one item needs: the applicable rules merged. */
export interface RedactionPlan {
  ruleIds: string[];
  detectors: ReadonlyMap<DetectorName, RedactionAction>;
  fields: readonly { segments: PathSegment[]; action: RedactionAction }[];
  binary: "pass" | "drop";
}

export interface RedactionTarget {
  server: string;
  /** The upstream tool or prompt name, or the resource URI. */
  name: string;
}

export interface CompiledRedaction {
  /** The plan for a direction and item, or undefined when no rule applies (then there is nothing to do). */
  plan(direction: Direction, target: RedactionTarget): RedactionPlan | undefined;
}

/** A keyed hash of a value (HMAC with the tenant's key), hex; the engine shows a prefix of it. */
export type Hasher = (text: string) => string | undefined;

/** Past this depth a value is replaced whole: walking it would cost stack, and nobody's data is that deep. */
export const MAX_REDACTION_DEPTH = 64;

const REVEALS_LESS: readonly RedactionAction[] = ["drop", "mask", "hash", "partial"];
const AUDIT_BASELINE_ID = "gateway:audit-secrets";

interface CompiledRule {
  id: string;
  servers: GlobMatcher[] | undefined;
  tools: GlobMatcher[] | undefined;
  directions: ReadonlySet<Direction>;
  detectors: Map<DetectorName, RedactionAction>;
  fields: { segments: PathSegment[]; action: RedactionAction }[];
  binary: "pass" | "drop";
}

export function compileRedaction(config: RedactionConfig | undefined): CompiledRedaction {
  const rules: CompiledRule[] = (config?.rules ?? []).map((rule, i) => ({
    id: rule.id ?? defaultRedactionRuleId(i),
    servers: rule.servers?.map(compileGlob),
    tools: rule.tools?.map(compileGlob),
    directions: new Set(rule.directions),
    detectors: new Map(rule.detectors.map((d) => [d, rule.actions[d] ?? rule.action])),
    fields: rule.fields.map((f) => {
      const parsed = parseFieldPath(f.path);
      if (!parsed.ok) throw new Error(`invalid field path reached the engine: ${parsed.error}`);
      return { segments: parsed.segments, action: f.action };
    }),
    binary: rule.binary,
  }));
  const baseline: CompiledRule = {
    id: AUDIT_BASELINE_ID,
    servers: undefined,
    tools: undefined,
    directions: new Set(["audit"]),
    detectors: new Map([["secret", "mask"]]),
    fields: [],
    binary: "pass",
  };
  const covers = (rule: CompiledRule, direction: Direction) =>
    rule.directions.has(direction) || (direction === "audit" && rule.directions.has("response"));
  const matches = (globs: GlobMatcher[] | undefined, name: string) => globs === undefined || globs.some((g) => g.test(name));

  return {
    plan(direction, target) {
      const applicable = [...rules, baseline].filter(
        (rule) => covers(rule, direction) && matches(rule.servers, target.server) && matches(rule.tools, target.name),
      );
      if (applicable.length === 0) return undefined;
      const detectors = new Map<DetectorName, RedactionAction>();
      for (const rule of applicable) {
        for (const [detector, action] of rule.detectors) {
          const held = detectors.get(detector);
          if (held === undefined || REVEALS_LESS.indexOf(action) < REVEALS_LESS.indexOf(held)) detectors.set(detector, action);
        }
      }
      return {
        ruleIds: applicable.map((r) => r.id),
        detectors,
        fields: applicable.flatMap((r) => r.fields),
        binary: applicable.some((r) => r.binary === "drop") ? "drop" : "pass",
      };
    },
  };
}

/** How many values were rewritten: for logs and tests, never the values themselves. */
export interface Redacted<T> {
  value: T;
  redactions: number;
}

const DROP = Symbol("drop");

/**
 * Keys that type or route a message (outside the payloads): kept as they are, so the message stays valid and goes
 * where it was going. Everything else outside the payloads is scanned.
 */
const SHAPE_KEYS = new Set(["type", "uri", "uriTemplate", "mimeType", "role", "level", "name", "progressToken", "progress", "total", "isError", "hasMore", "nextCursor", "cursor", "resultType", "ref"]);
/** Keys whose values are payloads: their own JSON, where field paths are anchored and every key and value is data. */
const PAYLOAD_KEYS = new Set(["arguments", "structuredContent", "data"]);
/** How much of a key is read as context for the value below it (an SSN is recognised after "ssn: "). */
const KEY_CONTEXT = 32;

/** Per field path, the automaton's state at this point of a payload; undefined where no path can match any more. */
type FieldStates = (PathState | undefined)[] | undefined;

class Walker {
  redactions = 0;
  private readonly plan: RedactionPlan;
  private readonly hasher: Hasher;
  private readonly detectorNames: DetectorName[];

  constructor(plan: RedactionPlan, hasher: Hasher) {
    this.plan = plan;
    this.hasher = hasher;
    this.detectorNames = [...plan.detectors.keys()];
  }

  /** A string with every finding of the plan's detectors replaced; `context` (a key) helps find, is never rewritten. */
  text(text: string, context = ""): string {
    if (this.detectorNames.length === 0 || text.length === 0) return text;
    const prefix = context === "" ? "" : `${context.slice(-KEY_CONTEXT)}: `;
    const findings = findPii(prefix + text, this.detectorNames)
      .filter((f) => f.end > prefix.length)
      .map((f) => ({ ...f, start: Math.max(f.start, prefix.length) - prefix.length, end: f.end - prefix.length }));
    if (findings.length === 0) return text;
    let out = "";
    let at = 0;
    for (const finding of findings) {
      out += text.slice(at, finding.start);
      out += this.replacement(finding.detector, text.slice(finding.start, finding.end), () => partialForm(finding, text));
      at = finding.end;
      this.redactions++;
    }
    return out + text.slice(at);
  }

  /** The field paths' start, at the root of a payload. */
  payloadStart(): FieldStates {
    return this.plan.fields.length === 0 ? undefined : this.plan.fields.map((f) => startState(f.segments));
  }

  /**
   * A payload value: field rules take a whole value (the least revealing action among the paths that match), keys
   * and strings are scanned, each string with its key as context.
   */
  payload(value: unknown, states: FieldStates, depth: number, key = ""): unknown {
    if (typeof value === "string") return this.text(value, key);
    if (value === null || typeof value !== "object") return value;
    if (depth >= MAX_REDACTION_DEPTH) {
      this.redactions++;
      return "[REDACTED:too-deep]";
    }
    const child = (step: string | number, item: unknown, childKey: string): unknown => {
      const next = this.advance(states, step);
      const action = this.fieldAction(next);
      if (action !== undefined) {
        this.redactions++;
        return this.fieldValue(item, action);
      }
      return this.payload(item, next, depth + 1, childKey);
    };
    if (Array.isArray(value)) {
      const out: unknown[] = [];
      value.forEach((item, i) => {
        const walked = child(i, item, key);
        if (walked !== DROP) out.push(walked);
      });
      return out;
    }
    // fromEntries defines own properties: a key such as "__proto__" stays a plain key.
    const entries: [string, unknown][] = [];
    for (const [name, item] of Object.entries(value)) {
      const walked = child(name, item, name);
      if (walked !== DROP) entries.push([this.text(name), walked]);
    }
    return Object.fromEntries(entries);
  }

  /** Outside the payloads: shape keys kept, payload keys walked as payloads, text blocks, binaries, the rest scanned. */
  envelope(value: unknown, depth: number): unknown {
    if (typeof value === "string") return this.text(value);
    if (value === null || typeof value !== "object") return value;
    if (depth >= MAX_REDACTION_DEPTH) {
      this.redactions++;
      return "[REDACTED:too-deep]";
    }
    if (Array.isArray(value)) return value.map((item) => this.envelope(item, depth + 1));
    const record = value as Json;
    if ((record.type === "image" || record.type === "audio") && typeof record.data === "string") return this.binary(record, record.type);
    if (typeof record.blob === "string") {
      if (this.plan.binary === "pass") return record;
      this.redactions++;
      return { uri: record.uri, mimeType: "text/plain", text: "[REDACTED:blob]" };
    }
    const entries: [string, unknown][] = [];
    for (const [name, item] of Object.entries(record)) {
      if (SHAPE_KEYS.has(name)) entries.push([name, item]);
      else if (PAYLOAD_KEYS.has(name)) entries.push([name, this.payloadRoot(item)]);
      else if (name === "text" && typeof item === "string") entries.push([name, this.textOrJson(item)]);
      else entries.push([name, this.envelope(item, depth + 1)]);
    }
    return Object.fromEntries(entries);
  }

  payloadRoot(value: unknown): unknown {
    return this.payload(value, this.payloadStart(), 0);
  }

  /**
   * A text that may be JSON: with field rules, JSON text is matched field by field, and written back (compactly)
   * only when something in it was rewritten — so a text nothing applies to keeps its form and its large numbers.
   */
  textOrJson(text: string): string {
    if (this.plan.fields.length > 0 && /^\s*[[{]/.test(text)) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return this.text(text);
      }
      const before = this.redactions;
      const walked = this.payloadRoot(parsed);
      return this.redactions === before ? text : JSON.stringify(walked);
    }
    return this.text(text);
  }

  binary(value: Json, what: string): unknown {
    if (this.plan.binary === "pass") return value;
    this.redactions++;
    return { type: "text", text: `[REDACTED:${what}]` };
  }

  private advance(states: FieldStates, step: string | number): FieldStates {
    if (states === undefined) return undefined;
    let alive = false;
    const next = states.map((state, i) => {
      if (state === undefined) return undefined;
      const advanced = advance((this.plan.fields[i] as { segments: PathSegment[] }).segments, state, step);
      if (advanced.size === 0) return undefined;
      alive = true;
      return advanced;
    });
    return alive ? next : undefined;
  }

  /** The least revealing action among the field paths that match here, if any. */
  private fieldAction(states: FieldStates): RedactionAction | undefined {
    if (states === undefined) return undefined;
    let chosen: RedactionAction | undefined;
    states.forEach((state, i) => {
      const field = this.plan.fields[i] as { segments: PathSegment[]; action: RedactionAction };
      if (state === undefined || !accepts(field.segments, state)) return;
      if (chosen === undefined || REVEALS_LESS.indexOf(field.action) < REVEALS_LESS.indexOf(chosen)) chosen = field.action;
    });
    return chosen;
  }

  private fieldValue(value: unknown, action: RedactionAction): unknown {
    if (action === "drop") return DROP;
    if (action === "mask") return "[REDACTED:field]";
    if (action === "hash") return this.hashed("field", JSON.stringify(value) ?? "null");
    if (typeof value === "string" || typeof value === "number") {
      // By code points, so the four kept are never half an emoji.
      const points = Array.from(String(value));
      return points.length > 4 ? `${"*".repeat(Math.min(points.length - 4, 32))}${points.slice(-4).join("")}` : "****";
    }
    return "[REDACTED:field]";
  }

  private replacement(detector: DetectorName, match: string, partial: () => string): string {
    const action = this.plan.detectors.get(detector) ?? "mask";
    if (action === "drop") return "";
    if (action === "partial") return partial();
    if (action === "hash") return this.hashed(detector, normalised(detector, match));
    return `[REDACTED:${detector}]`;
  }

  /** Equal values give equal tags within a tenant; without a key the value is masked instead (fail closed). */
  private hashed(what: string, text: string): string {
    const digest = this.hasher(text);
    return digest === undefined ? `[REDACTED:${what}]` : `[HASH:${what}:${digest.slice(0, 16)}]`;
  }
}

/** One value, one tag: "123-45-6789" and "123 45 6789" are the same SSN, Jane@Example.com the same address. */
function normalised(detector: DetectorName, match: string): string {
  if (detector === "ssn" || detector === "card" || detector === "phone" || detector === "iban") return match.replace(/[^0-9A-Za-z]/g, "").toUpperCase();
  if (detector === "email") return match.toLowerCase();
  return match;
}

type Json = Record<string, unknown>;

/** A call's arguments (tools/call, prompts/get): a payload, walked from its root. */
export function redactArguments<T>(plan: RedactionPlan, args: T, hasher: Hasher): Redacted<T> {
  const walker = new Walker(plan, hasher);
  return { value: walker.payloadRoot(args) as T, redactions: walker.redactions };
}

/**
 * A whole JSON-RPC params or result object, rewritten so it keeps its MCP shape: the keys that type and route it
 * stay, payloads (arguments, structured content, log and error data) are walked with field paths, text blocks and
 * every other string are scanned (`_meta` included), binaries pass or are replaced per the plan.
 */
export function redactMessage<T extends Json>(plan: RedactionPlan, message: T, hasher: Hasher): Redacted<T> {
  const walker = new Walker(plan, hasher);
  return { value: walker.envelope(message, 0) as T, redactions: walker.redactions };
}

/** An upstream's result (tools/call, prompts/get, resources/read, completion/complete). */
export function redactResult(plan: RedactionPlan, _method: string, result: Json, hasher: Hasher): Redacted<Json> {
  return redactMessage(plan, result, hasher);
}

/** Free text the gateway relays (an upstream's error message). */
export function redactText(plan: RedactionPlan, text: string, hasher: Hasher): Redacted<string> {
  const walker = new Walker(plan, hasher);
  return { value: walker.text(text), redactions: walker.redactions };
}

/** Any JSON value as a payload (an upstream error's data). */
export function redactJson<T>(plan: RedactionPlan, value: T, hasher: Hasher): Redacted<T> {
  const walker = new Walker(plan, hasher);
  return { value: walker.payloadRoot(value) as T, redactions: walker.redactions };
}
