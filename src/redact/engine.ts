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
import { parseFieldPath, pathMatches, type Location, type PathSegment } from "./paths.ts";
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

  /** A string with every finding of the plan's detectors replaced per its action. */
  text(text: string): string {
    if (this.detectorNames.length === 0 || text.length === 0) return text;
    const findings = findPii(text, this.detectorNames);
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

  /** A JSON value walked from `location`: field rules first (they take the whole value), then strings scanned. */
  json(value: unknown, location: (string | number)[], depth: number): unknown {
    if (this.plan.fields.length > 0 && location.length > 0) {
      const field = this.plan.fields.find((f) => pathMatches(f.segments, location));
      if (field) {
        this.redactions++;
        return this.fieldValue(value, field.action);
      }
    }
    if (typeof value === "string") return this.text(value);
    if (value === null || typeof value !== "object") return value;
    if (depth >= MAX_REDACTION_DEPTH) {
      this.redactions++;
      return "[REDACTED:too-deep]";
    }
    if (Array.isArray(value)) {
      const out: unknown[] = [];
      value.forEach((item, i) => {
        const walked = this.json(item, [...location, i], depth + 1);
        if (walked !== DROP) out.push(walked);
      });
      return out;
    }
    // fromEntries defines own properties: a key such as "__proto__" stays a plain key.
    const entries: [string, unknown][] = [];
    for (const [key, item] of Object.entries(value)) {
      const walked = this.json(item, [...location, key], depth + 1);
      if (walked !== DROP) entries.push([key, walked]);
    }
    return Object.fromEntries(entries);
  }

  /** A text that may be JSON: with field rules, JSON text is matched field by field and written back compactly. */
  textOrJson(text: string): string {
    if (this.plan.fields.length > 0 && /^\s*[[{]/.test(text)) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return this.text(text);
      }
      return JSON.stringify(this.json(parsed, [], 0));
    }
    return this.text(text);
  }

  binary<T>(value: T, what: string): T | { type: "text"; text: string } {
    if (this.plan.binary === "pass") return value;
    this.redactions++;
    return { type: "text", text: `[REDACTED:${what}]` };
  }

  private fieldValue(value: unknown, action: RedactionAction): unknown {
    if (action === "drop") return DROP;
    if (action === "mask") return "[REDACTED:field]";
    if (action === "hash") return this.hashed("field", JSON.stringify(value) ?? "null");
    if (typeof value === "string" || typeof value === "number") {
      const text = String(value);
      return text.length > 4 ? `${"*".repeat(Math.min(text.length - 4, 32))}${text.slice(-4)}` : "****";
    }
    return "[REDACTED:field]";
  }

  private replacement(detector: DetectorName, match: string, partial: () => string): string {
    const action = this.plan.detectors.get(detector) ?? "mask";
    if (action === "drop") return "";
    if (action === "partial") return partial();
    if (action === "hash") return this.hashed(detector, match);
    return `[REDACTED:${detector}]`;
  }

  /** Equal values give equal tags within a tenant; without a key the value is masked instead (fail closed). */
  private hashed(what: string, text: string): string {
    const digest = this.hasher(text);
    return digest === undefined ? `[REDACTED:${what}]` : `[HASH:${what}:${digest.slice(0, 16)}]`;
  }
}

type Json = Record<string, unknown>;

/** A call's arguments (tools/call, prompts/get), walked from their root. */
export function redactArguments<T>(plan: RedactionPlan, args: T, hasher: Hasher): Redacted<T> {
  const walker = new Walker(plan, hasher);
  const value = walker.json(args, [], 0);
  return { value: (value === DROP ? {} : value) as T, redactions: walker.redactions };
}

/** An upstream's answer to `method`, rewritten so it keeps the MCP result's shape. */
export function redactResult(plan: RedactionPlan, method: string, result: Json, hasher: Hasher): Redacted<Json> {
  const walker = new Walker(plan, hasher);
  const out: Json = { ...result };
  if (method === "tools/call" || method === "prompts/get" || method === "resources/read" || method === "completion/complete") {
    if (Array.isArray(result.content)) out.content = result.content.map((block) => contentBlock(walker, block));
    if (result.structuredContent !== undefined) out.structuredContent = walker.json(result.structuredContent, [], 0);
    if (Array.isArray(result.messages)) {
      out.messages = result.messages.map((m) => (isObject(m) ? { ...m, content: contentBlock(walker, m.content) } : m));
    }
    if (typeof result.description === "string") out.description = walker.text(result.description);
    if (Array.isArray(result.contents)) out.contents = result.contents.map((c) => resourceContents(walker, c));
    if (isObject(result.completion) && Array.isArray(result.completion.values)) {
      out.completion = { ...result.completion, values: result.completion.values.map((v) => (typeof v === "string" ? walker.text(v) : v)) };
    }
  } else {
    // A shape this engine does not know: every string in it is scanned, nothing is skipped.
    return { value: walker.json(result, [], 0) as Json, redactions: walker.redactions };
  }
  return { value: out, redactions: walker.redactions };
}

/** Free text the gateway relays (an upstream's error message, a progress message). */
export function redactText(plan: RedactionPlan, text: string, hasher: Hasher): Redacted<string> {
  const walker = new Walker(plan, hasher);
  return { value: walker.text(text), redactions: walker.redactions };
}

/** Any JSON value, walked whole (log notification data, completion context). */
export function redactJson<T>(plan: RedactionPlan, value: T, hasher: Hasher): Redacted<T> {
  const walker = new Walker(plan, hasher);
  const out = walker.json(value, [], 0);
  return { value: (out === DROP ? null : out) as T, redactions: walker.redactions };
}

function contentBlock(walker: Walker, block: unknown): unknown {
  if (!isObject(block)) return walker.json(block, [], 0);
  switch (block.type) {
    case "text":
      return typeof block.text === "string" ? { ...block, text: walker.textOrJson(block.text) } : block;
    case "image":
    case "audio":
      return walker.binary(block, block.type);
    case "resource":
      return { ...block, resource: resourceContents(walker, block.resource) };
    default:
      return walker.json(block, [], 0);
  }
}

function resourceContents(walker: Walker, contents: unknown): unknown {
  if (!isObject(contents)) return contents;
  if (typeof contents.blob === "string") {
    const kept = walker.binary(contents, "blob");
    return kept === contents ? contents : { uri: contents.uri, mimeType: "text/plain", text: (kept as { text: string }).text };
  }
  if (typeof contents.text === "string") return { ...contents, text: walker.textOrJson(contents.text) };
  return contents;
}

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
