import { describe, expect, it } from "vitest";
import { z } from "zod";
import { compilePolicies } from "../../src/policy/engine.ts";
import { hasNestedQuantifier } from "../../src/policy/conditions.ts";
import { defaultRuleId, policySchema } from "../../src/policy/schema.ts";

const policiesSchema = z.array(policySchema);

/** Issues as the config loader prints them: `policies[0].rules[1].action: message`. */
function issues(policy: unknown): string[] {
  const parsed = policiesSchema.safeParse([policy]);
  if (parsed.success) return [];
  return parsed.error.issues.map((issue) => {
    const path = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
    return `policies${path}: ${issue.message}`;
  });
}

const rule = (r: Record<string, unknown>) => ({ id: "p", roles: ["r"], rules: [r] });
const cond = (c: unknown) => rule({ tool: "t", action: "allow", conditions: [c] });

describe("policy schema", () => {
  it("accepts the seed's policies and the extended shape, with defaults filled in", () => {
    const parsed = policiesSchema.parse([
      { id: "reader-policy", name: "Read-only access", roles: ["reader"], rules: [{ tool: "get_*", action: "allow" }, { tool: "*", action: "deny" }] },
      {
        id: "crm-policy",
        roles: ["writer", "*"],
        rules: [
          { server: "mcp-stripe", action: "deny" },
          {
            id: "own-customers",
            server: "crm",
            tool: "query_*",
            action: "allow",
            conditions: [
              { param: "customer.id", operator: "eq", value: "${principal.consumerId}" },
              { param: "items[0].sku", operator: "exists" },
              { param: 'meta["key with space"]', operator: "in", value: "${principal.claims.groups}" },
              { param: "amount", operator: "lte", value: 100 },
              { param: "code", operator: "regex", value: "[A-Z]{3}" },
              { param: "bucket", operator: "prefix", value: "${principal.tenant}-" },
              { param: "env", operator: "not_in", value: ["prod", null, 1, true] },
              { param: "filter", operator: "eq", value: { status: ["open", "pending"] } },
            ],
          },
          { prompt: "*", action: "allow" },
          { server: "docs", resource: "file:///public/*", action: "allow" },
          { action: "allow" },
        ],
      },
    ]);
    expect(parsed[0]?.rules).toEqual([
      { tool: "get_*", action: "allow", conditions: [] },
      { tool: "*", action: "deny", conditions: [] },
    ]);
    expect(parsed[1]?.rules[1]?.conditions[1]).toEqual({ param: "items[0].sku", operator: "exists", value: true });
    // Whatever the schema accepts compiles.
    expect(compilePolicies(parsed).ruleCount).toBe(7);
  });

  it("names a rule by its index when it has no id", () => {
    expect(defaultRuleId("reader-policy", 2)).toBe("reader-policy.rules[2]");
  });

  it.each([
    // Policies.
    ["no roles", { id: "p", roles: [], rules: [] }, ['policies[0].roles: must name at least one role ("*" for every authenticated caller)']],
    ["empty role", { id: "p", roles: [""] }, ["policies[0].roles[0]: must not be empty"]],
    ["bad policy id", { id: "-p", roles: ["r"] }, ["policies[0].id: must be 1-128 characters of A-Z a-z 0-9 _ . : @ -"]],
    ["unknown policy key", { id: "p", roles: ["r"], rule: [] }, ['policies[0]: Unrecognized key: "rule"']],
    // Rules.
    ["unknown action", rule({ tool: "t", action: "permit" }), ['policies[0].rules[0].action: Invalid option: expected one of "allow"|"deny"']],
    ["missing action", rule({ tool: "t" }), ['policies[0].rules[0].action: Invalid option: expected one of "allow"|"deny"']],
    ["unknown rule key", rule({ tools: "t", action: "allow" }), ['policies[0].rules[0]: Unrecognized key: "tools"']],
    ["bad rule id", rule({ id: "a b", action: "allow" }), ["policies[0].rules[0].id: must be 1-128 characters of A-Z a-z 0-9 _ . : @ -"]],
    [
      "tool and prompt",
      rule({ tool: "t", prompt: "p", action: "allow" }),
      ["policies[0].rules[0].prompt: give at most one of tool, prompt or resource (this rule has tool and prompt); write one rule for each"],
    ],
    [
      "tool and resource",
      rule({ tool: "t", resource: "r", action: "deny" }),
      ["policies[0].rules[0].resource: give at most one of tool, prompt or resource (this rule has tool and resource); write one rule for each"],
    ],
    [
      "conditions on a resource rule",
      rule({ resource: "file:///*", action: "allow", conditions: [{ param: "a", operator: "exists" }] }),
      ["policies[0].rules[0].conditions: resource rules cannot have conditions (reading a resource has no arguments)"],
    ],
    [
      "conditions on a server-level rule (it covers resources too)",
      rule({ server: "crm", action: "deny", conditions: [{ param: "a", operator: "exists" }] }),
      ['policies[0].rules[0].conditions: conditions test arguments, so they need a tool or prompt rule (e.g. tool: "*")'],
    ],
    // Globs.
    ["empty glob", rule({ tool: "", action: "allow" }), ["policies[0].rules[0].tool: must not be empty"]],
    ["glob too long", rule({ server: "s".repeat(257), action: "allow" }), ["policies[0].rules[0].server: must be at most 256 characters"]],
    ["glob not a string", rule({ tool: 5, action: "allow" }), ["policies[0].rules[0].tool: must be a glob (a string such as get_* or {get,list}_*)"]],
    [
      "unbalanced bracket",
      rule({ prompt: "get_[", action: "allow" }),
      ['policies[0].rules[0].prompt: is not a valid glob: Missing closing: "]" - use "\\\\]" to match literal characters'],
    ],
    [
      "unbalanced extglob",
      rule({ tool: "@(a|b", action: "allow" }),
      ['policies[0].rules[0].tool: is not a valid glob: Missing closing: ")" - use "\\\\)" to match literal characters'],
    ],
    [
      "regex group in a glob",
      rule({ resource: "x(?=y)", action: "allow" }),
      ['policies[0].rules[0].resource: must not contain "(?" (regex syntax; use @(a|b), !(a), ? and * instead)'],
    ],
    // Conditions: shape.
    ["condition not an object", cond("a == 1"), ["policies[0].rules[0].conditions[0]: must be a condition: { param, operator, value }"]],
    [
      "unknown operator",
      cond({ param: "a", operator: "like", value: "x" }),
      ["policies[0].rules[0].conditions[0].operator: operator must be one of eq, neq, in, not_in, regex, prefix, lt, lte, gt, gte, exists"],
    ],
    ["unknown condition key", cond({ param: "a", operator: "eq", value: 1, note: "x" }), ['policies[0].rules[0].conditions[0]: Unrecognized key: "note"']],
    [
      "missing param",
      cond({ operator: "eq", value: 1 }),
      ["policies[0].rules[0].conditions[0].param: must be an argument path (a string such as customer.id or items[0].sku)"],
    ],
    // Conditions: param paths.
    [
      "empty path segment",
      cond({ param: "a..b", operator: "exists" }),
      [
        'policies[0].rules[0].conditions[0].param: expected a name (A-Z a-z 0-9 _ $ -; quote others as ["..."]) at character 3 of "a..b" (a path is like customer.id, items[0].sku or meta["key with space"])',
      ],
    ],
    ["empty path", cond({ param: "", operator: "exists" }), ["policies[0].rules[0].conditions[0].param: must not be empty"]],
    [
      "trailing dot",
      cond({ param: "a.", operator: "exists" }),
      [
        'policies[0].rules[0].conditions[0].param: expected a name (A-Z a-z 0-9 _ $ -; quote others as ["..."]) at character 3 of "a." (a path is like customer.id, items[0].sku or meta["key with space"])',
      ],
    ],
    [
      "empty brackets",
      cond({ param: "a[]", operator: "exists" }),
      [
        'policies[0].rules[0].conditions[0].param: expected an index (0, 1, …) or a "quoted name" and "]" at character 3 of "a[]" (a path is like customer.id, items[0].sku or meta["key with space"])',
      ],
    ],
    [
      "empty quoted name",
      cond({ param: 'a[""]', operator: "exists" }),
      ['policies[0].rules[0].conditions[0].param: empty name at character 3 of "a[""]" (a path is like customer.id, items[0].sku or meta["key with space"])'],
    ],
    [
      "negative index",
      cond({ param: "a[-1]", operator: "exists" }),
      [
        'policies[0].rules[0].conditions[0].param: expected an index (0, 1, …) or a "quoted name" and "]" at character 3 of "a[-1]" (a path is like customer.id, items[0].sku or meta["key with space"])',
      ],
    ],
    // Conditions: values per operator.
    ["eq without value", cond({ param: "a", operator: "eq" }), ["policies[0].rules[0].conditions[0].value: is required (any JSON value)"]],
    [
      "in with a plain string",
      cond({ param: "a", operator: "in", value: "dev" }),
      [
        'policies[0].rules[0].conditions[0].value: must be a list of strings, numbers, booleans or nulls, or exactly one principal reference such as "${principal.claims.groups}"',
      ],
    ],
    [
      "in with a nested list",
      cond({ param: "a", operator: "not_in", value: [["dev"]] }),
      ["policies[0].rules[0].conditions[0].value: must be a list of strings, numbers, booleans or nulls"],
    ],
    [
      "regex that does not compile",
      cond({ param: "a", operator: "regex", value: "(" }),
      ["policies[0].rules[0].conditions[0].value: is not a valid regular expression: Invalid regular expression: /^(?:()$/u: Unterminated group"],
    ],
    ["regex too long", cond({ param: "a", operator: "regex", value: "a".repeat(257) }), ["policies[0].rules[0].conditions[0].value: must be at most 256 characters"]],
    [
      "regex not a string",
      cond({ param: "a", operator: "regex", value: 5 }),
      ["policies[0].rules[0].conditions[0].value: must be a regular expression (a string of at most 256 characters)"],
    ],
    [
      "regex with a principal reference",
      cond({ param: "a", operator: "regex", value: "${principal.tenant}-.*" }),
      ["policies[0].rules[0].conditions[0].value: a regex cannot reference the principal (${...}); use eq, in or prefix for that"],
    ],
    [
      "regex with a nested quantifier",
      cond({ param: "a", operator: "regex", value: "(a+)+b" }),
      [
        "policies[0].rules[0].conditions[0].value: has a repeated group that itself repeats, like (a+)+ or (a*b?)*: that can take exponential time on a crafted argument; rewrite it without the nesting",
      ],
    ],
    ["prefix not a string", cond({ param: "a", operator: "prefix", value: 1 }), ["policies[0].rules[0].conditions[0].value: must be a string"]],
    ["lt with a boolean", cond({ param: "a", operator: "lt", value: true }), ["policies[0].rules[0].conditions[0].value: must be a number or a string"]],
    ["gte without value", cond({ param: "a", operator: "gte" }), ["policies[0].rules[0].conditions[0].value: must be a number or a string"]],
    ["exists with a string", cond({ param: "a", operator: "exists", value: "yes" }), ["policies[0].rules[0].conditions[0].value: must be true or false"]],
    // Principal references.
    [
      "unknown principal field",
      cond({ param: "a", operator: "eq", value: "${principal.email}" }),
      [
        "policies[0].rules[0].conditions[0].value: ${principal.email} is not a principal reference (use ${principal.tenant}, ${principal.consumerId}, ${principal.keyId} or ${principal.claims.<path>})",
      ],
    ],
    [
      "environment-style reference",
      cond({ param: "a", operator: "prefix", value: "${HOME}/" }),
      [
        "policies[0].rules[0].conditions[0].value: ${HOME} is not a principal reference (use ${principal.tenant}, ${principal.consumerId}, ${principal.keyId} or ${principal.claims.<path>})",
      ],
    ],
    [
      "reference nested in an eq value",
      cond({ param: "a", operator: "eq", value: { owner: ["${principal.role}"] } }),
      [
        "policies[0].rules[0].conditions[0].value: ${principal.role} is not a principal reference (use ${principal.tenant}, ${principal.consumerId}, ${principal.keyId} or ${principal.claims.<path>})",
      ],
    ],
    [
      "claims without a path",
      cond({ param: "a", operator: "eq", value: "${principal.claims}" }),
      [
        "policies[0].rules[0].conditions[0].value: ${principal.claims} is not a principal reference (use ${principal.tenant}, ${principal.consumerId}, ${principal.keyId} or ${principal.claims.<path>})",
      ],
    ],
    [
      "bad claim path",
      cond({ param: "a", operator: "eq", value: "${principal.claims.a..b}" }),
      [
        'policies[0].rules[0].conditions[0].value: ${principal.claims.a..b}: the claim path expected a name (A-Z a-z 0-9 _ $ -; quote others as ["..."]) at character 3 of "a..b" (a path is like customer.id, items[0].sku or meta["key with space"])',
      ],
    ],
    [
      "unterminated reference",
      cond({ param: "a", operator: "eq", value: "${principal.tenant" }),
      ['policies[0].rules[0].conditions[0].value: "${principal.tenant" has an unterminated or nested ${...}'],
    ],
    [
      "in with a reference inside a longer string",
      cond({ param: "a", operator: "in", value: "x-${principal.tenant}" }),
      [
        'policies[0].rules[0].conditions[0].value: must be a list of strings, numbers, booleans or nulls, or exactly one principal reference such as "${principal.claims.groups}"',
      ],
    ],
    // Several problems at once: each with its own path.
    [
      "several problems",
      { id: "p", roles: ["r"], rules: [{ tool: "ok", action: "allow" }, { tool: "[", action: "nope", conditions: [{ param: "a", operator: "exists", value: 1 }] }] },
      [
        'policies[0].rules[1].tool: is not a valid glob: Missing closing: "]" - use "\\\\]" to match literal characters',
        'policies[0].rules[1].action: Invalid option: expected one of "allow"|"deny"',
        "policies[0].rules[1].conditions[0].value: must be true or false",
      ],
    ],
  ] as [string, unknown, string[]][])("refuses %s", (_, policy, expected) => {
    expect(issues(policy)).toEqual(expected);
  });

  it.each([
    ["(a+)+", true],
    ["(a*b?)*", true],
    ["(x+){2,}", true],
    ["((ab)+c)*", true],
    ["(?:a+)+", true],
    ["(ab)+", false],
    ["(a|b)*c", false],
    ["a+b*", false],
    ["(a+)?", false],
    ["[(a+)+]", false],
    ["\\(a+\\)+", false],
    ["(?:ab)?", false],
    ["INV-[0-9]{4}", false],
  ] as const)("flags %s as a nested quantifier: %s", (pattern, expected) => {
    expect(hasNestedQuantifier(pattern)).toBe(expected);
  });
});
