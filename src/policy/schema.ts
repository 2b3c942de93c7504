/**
 * @module The `policies:` section of gateway.yaml: who (roles) may use which tools, prompts and resources (globs on
 * server ids and upstream names), under which conditions on the arguments. Validated with zod so the config loader
 * can name the path of every bad key (`policies[2].rules[0].action: …`).
 *
 * Validation is complete here: a policy this schema accepts always compiles (see engine.ts), so a typo is an error
 * when the file is loaded, never a rule that silently never matches.
 */
import { z } from "zod";
import {
  MAX_PATTERN_LENGTH,
  OPERATORS,
  compileConditionRegex,
  isWholeReference,
  jsonType,
  parsePath,
  templateError,
  type JsonScalar,
  type JsonValue,
} from "./conditions.ts";
import { globError } from "./glob.ts";
import { idSchema } from "../ids.ts";


/** The rule id a decision names when the rule has none of its own: `reader-policy.rules[2]`. */
export function defaultRuleId(policyId: string, index: number): string {
  return `${policyId}.rules[${index}]`;
}

/** The role that makes a policy apply to every authenticated caller. */
export const EVERY_ROLE = "*";

/** A schema for values a predicate describes: the predicate returns what was wrong, or undefined. */
function checked<T>(problem: (value: unknown) => string | undefined) {
  return z.custom<T>().superRefine((value, ctx) => {
    const message = problem(value);
    if (message !== undefined) ctx.addIssue({ code: "custom", message });
  });
}

const globSchema = checked<string>((v) =>
  typeof v !== "string" ? "must be a glob (a string such as get_* or {get,list}_*)" : globError(v),
);

const paramSchema = checked<string>((v) => {
  if (typeof v !== "string") return 'must be an argument path (a string such as customer.id or items[0].sku)';
  const path = parsePath(v);
  return path.ok ? undefined : path.error;
});

function isJsonValue(value: unknown, depth = 0): value is JsonValue {
  if (depth > 64) return false;
  const type = jsonType(value);
  if (type === "array") return (value as unknown[]).every((v) => isJsonValue(v, depth + 1));
  if (type === "object") {
    const proto = Object.getPrototypeOf(value);
    return (proto === Object.prototype || proto === null) && Object.values(value as object).every((v) => isJsonValue(v, depth + 1));
  }
  return type !== undefined;
}

const isScalar = (v: unknown): v is JsonScalar => v === null || ["boolean", "number", "string"].includes(jsonType(v) ?? "");

const anyValue = checked<JsonValue>((v) =>
  v === undefined ? "is required (any JSON value)" : !isJsonValue(v) ? "must be a JSON value" : templateError(v),
);

const listValue = checked<JsonScalar[] | string>((v) => {
  if (typeof v === "string") {
    return isWholeReference(v)
      ? templateError(v)
      : 'must be a list of strings, numbers, booleans or nulls, or exactly one principal reference such as "${principal.claims.groups}"';
  }
  if (!Array.isArray(v) || !v.every(isScalar)) return "must be a list of strings, numbers, booleans or nulls";
  return templateError(v);
});

const regexValue = checked<string>((v) => {
  if (typeof v !== "string") return `must be a regular expression (a string of at most ${MAX_PATTERN_LENGTH} characters)`;
  const compiled = compileConditionRegex(v);
  return compiled.ok ? undefined : compiled.error;
});

const prefixValue = checked<string>((v) => (typeof v !== "string" ? "must be a string" : templateError(v)));

const boundValue = checked<number | string>((v) => {
  if (typeof v === "string") return templateError(v);
  return typeof v === "number" && Number.isFinite(v) ? undefined : "must be a number or a string";
});

const existsValue = checked<boolean>((v) => (typeof v === "boolean" ? undefined : "must be true or false"));

const condition = <O extends string, V extends z.ZodType>(operators: readonly [O, ...O[]], value: V) =>
  z.strictObject({ param: paramSchema, operator: z.literal(operators), value });

/**
 * One condition on the call's arguments: `{ param, operator, value }`. The operator decides what `value` may be:
 * eq/neq any JSON value; in/not_in a list of scalars (or one whole principal reference to a list); regex a pattern
 * (always anchored); prefix a string; lt/lte/gt/gte a number or a string; exists a boolean (default true).
 */
export const conditionSchema = z.discriminatedUnion(
  "operator",
  [
    condition(["eq", "neq"], anyValue),
    condition(["in", "not_in"], listValue),
    condition(["regex"], regexValue),
    condition(["prefix"], prefixValue),
    condition(["lt", "lte", "gt", "gte"], boundValue),
    condition(["exists"], existsValue.optional().default(true)),
  ],
  {
    error: (issue) =>
      issue.code === "invalid_union"
        ? `operator must be one of ${OPERATORS.join(", ")}`
        : issue.code === "invalid_type"
          ? "must be a condition: { param, operator, value }"
          : undefined,
  },
);
export type PolicyCondition = z.infer<typeof conditionSchema>;

const SUBJECT_KEYS = ["tool", "prompt", "resource"] as const;

/**
 * One rule: `server` (glob, absent = any server), at most one of `tool` / `prompt` / `resource` (glob on the
 * upstream name or resource URI; none = every tool, prompt and resource of the matching servers), `action`, and
 * `conditions` (all must hold; only on tool and prompt rules: resources have no arguments).
 */
export const policyRuleSchema = z
  .strictObject({
    id: idSchema.optional(),
    server: globSchema.optional(),
    tool: globSchema.optional(),
    prompt: globSchema.optional(),
    resource: globSchema.optional(),
    action: z.enum(["allow", "deny"]),
    conditions: z.array(conditionSchema).default([]),
  })
  .superRefine((rule, ctx) => {
    const given = SUBJECT_KEYS.filter((key) => rule[key] !== undefined);
    if (given.length > 1) {
      ctx.addIssue({
        code: "custom",
        path: [given[1] as string],
        message: `give at most one of tool, prompt or resource (this rule has ${given.join(" and ")}); write one rule for each`,
      });
    }
    if (rule.resource !== undefined && rule.conditions.length > 0) {
      ctx.addIssue({
        code: "custom",
        path: ["conditions"],
        message: "resource rules cannot have conditions (reading a resource has no arguments)",
      });
    } else if (given.length === 0 && rule.conditions.length > 0) {
      // A server-level rule also covers resources, which have no arguments: its conditions could never be judged
      // there (a deny would block every read of resources it still lists). Say which items the arguments belong to.
      ctx.addIssue({
        code: "custom",
        path: ["conditions"],
        message: 'conditions test arguments, so they need a tool or prompt rule (e.g. tool: "*")',
      });
    }
  });
export type PolicyRule = z.infer<typeof policyRuleSchema>;

export const policySchema = z.strictObject({
  id: idSchema,
  name: z.string().min(1).max(256).optional(),
  roles: z
    .array(z.string().min(1, "must not be empty").max(64, "must be at most 64 characters"))
    .min(1, 'must name at least one role ("*" for every authenticated caller)'),
  rules: z.array(policyRuleSchema).default([]),
});
export type PolicyConfig = z.infer<typeof policySchema>;
