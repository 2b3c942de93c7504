import { describe, expect, it } from "vitest";
import { z } from "zod";
import { compilePolicies, MAX_SUBJECT_NAME, MEMO_ENTRIES, type PolicyPrincipal, type PolicySubject, type SubjectKind } from "../../src/policy/engine.ts";
import { SLASH } from "../../src/policy/glob.ts";
import { policySchema, type PolicyCondition } from "../../src/policy/schema.ts";

/** Policies as gateway.yaml would give them: validated first, so every fixture is also a schema test. */
const policies = (raw: unknown[]) => z.array(policySchema).parse(raw);

const principal = (roles: string[], claims?: Record<string, unknown>): PolicyPrincipal => ({
  tenant: "acme",
  consumer: "agent-1",
  keyId: "key-1",
  roles,
  ...(claims ? { claims } : {}),
});

const subject = (kind: SubjectKind, server: string, name: string): PolicySubject => ({ server, kind, name });
const tool = (server: string, name: string) => subject("tool", server, name);

/** A decision as the tables write it: the rule that decided, or "default" for default deny. */
function outcome(decision: ReturnType<ReturnType<typeof compilePolicies>["decide"]>): string {
  if (decision.allowed) return `allow ${decision.ruleId}`;
  return decision.ruleId === null ? "deny default" : `deny ${decision.ruleId}`;
}

const ENGINE = compilePolicies(
  policies([
    {
      id: "reader-policy",
      roles: ["reader"],
      rules: [
        { tool: "get_*", action: "allow" },
        { tool: "search", action: "allow" },
        { id: "no-bulk", tool: "get_bulk*", action: "deny" },
        { server: "files", resource: "file:///reports/*", action: "allow" },
      ],
    },
    // The seed's bug: a server-wide deny in one policy must beat another policy's `get_*` allow.
    { id: "stripe-block", roles: ["reader", "writer"], rules: [{ server: "mcp-stripe", action: "deny" }] },
    {
      id: "writer-policy",
      roles: ["writer"],
      rules: [
        { server: "crm", action: "allow" },
        { server: "crm", tool: "drop_*", action: "deny" },
        { server: "{hr,payroll}", tool: "get_salary", action: "allow" },
      ],
    },
    {
      id: "everyone",
      roles: ["*"],
      rules: [
        { tool: "status", action: "allow" },
        { server: "docs", prompt: "summarize", action: "allow" },
        { server: "docs", resource: "file:///public/*", action: "allow" },
      ],
    },
    // A later, less specific deny still beats an earlier, exact allow.
    { id: "hr-lockdown", roles: ["writer"], rules: [{ server: "hr", tool: "*", action: "deny" }] },
    { id: "audit", roles: ["auditor"], rules: [{ server: "*", tool: "*_log", action: "allow" }, { tool: "*", action: "deny" }] },
    { id: "admin-policy", roles: ["admin"], rules: [{ action: "allow" }] },
  ]),
);

describe("policy decisions", () => {
  it.each([
    // Default deny.
    ["nobody with no roles", [], tool("crm", "get_customer"), "deny default"],
    ["a role no policy names", ["guest"], tool("crm", "get_customer"), "deny default"],
    ["reader, no rule covers the tool", ["reader"], tool("crm", "update_customer"), "deny default"],
    // Allow by glob and by literal name.
    ["reader, get_* on any server", ["reader"], tool("crm", "get_customer"), "allow reader-policy.rules[0]"],
    ["reader, literal tool name", ["reader"], tool("crm", "search"), "allow reader-policy.rules[1]"],
    ["reader, literal name is not a prefix", ["reader"], tool("crm", "search_all"), "deny default"],
    // Deny beats allow: same policy, later rule, explicit id.
    ["reader, deny in the same policy (explicit id)", ["reader"], tool("crm", "get_bulk_export"), "deny no-bulk"],
    // Deny beats allow across policies (the seed's bug), regardless of specificity.
    ["reader, server-wide deny beats get_* allow", ["reader"], tool("mcp-stripe", "get_balance"), "deny stripe-block.rules[0]"],
    ["reader, server-wide deny covers prompts", ["reader"], subject("prompt", "mcp-stripe", "x"), "deny stripe-block.rules[0]"],
    ["writer, later * deny beats earlier literal allow", ["writer"], tool("hr", "get_salary"), "deny hr-lockdown.rules[0]"],
    ["writer, the same allow on another server", ["writer"], tool("payroll", "get_salary"), "allow writer-policy.rules[2]"],
    ["writer, brace alternatives do not match others", ["writer"], tool("finance", "get_salary"), "deny default"],
    // Server-level rules cover every tool, prompt and resource of the server.
    ["writer, server-level allow: tool", ["writer"], tool("crm", "update_customer"), "allow writer-policy.rules[0]"],
    ["writer, server-level allow: prompt", ["writer"], subject("prompt", "crm", "draft_email"), "allow writer-policy.rules[0]"],
    ["writer, server-level allow: resource", ["writer"], subject("resource", "crm", "crm://customers/42"), "allow writer-policy.rules[0]"],
    ["writer, deny carved out of a server-level allow", ["writer"], tool("crm", "drop_table"), "deny writer-policy.rules[1]"],
    ["writer, server-level allow covers only its server", ["writer"], tool("erp", "update"), "deny default"],
    // Kind-specific rules match only their kind.
    ["reader, tool glob does not cover a prompt", ["reader"], subject("prompt", "crm", "get_summary"), "deny default"],
    ["reader, tool glob does not cover a resource", ["reader"], subject("resource", "crm", "get_x"), "deny default"],
    ["reader, resource glob", ["reader"], subject("resource", "files", "file:///reports/2026/q1.pdf"), "allow reader-policy.rules[3]"],
    ["reader, resource glob covers ../ in the URI", ["reader"], subject("resource", "files", "file:///reports/../secret"), "allow reader-policy.rules[3]"],
    ["reader, resource glob: another directory", ["reader"], subject("resource", "files", "file:///private/x"), "deny default"],
    ["reader, resource rule is server-bound", ["reader"], subject("resource", "other", "file:///reports/x"), "deny default"],
    ["reader, resource rule does not cover tools", ["reader"], tool("files", "file:///reports/x"), "deny default"],
    // "*" is every authenticated caller, with or without roles.
    ["* role, caller without roles", [], tool("anything", "status"), "allow everyone.rules[0]"],
    ["* role, prompt", ["guest"], subject("prompt", "docs", "summarize"), "allow everyone.rules[1]"],
    ["* role, prompt on another server", ["guest"], subject("prompt", "other", "summarize"), "deny default"],
    ["* role, public resource", ["guest"], subject("resource", "docs", "file:///public/readme.md"), "allow everyone.rules[2]"],
    ["* role does not lift a deny", ["reader"], tool("mcp-stripe", "status"), "deny stripe-block.rules[0]"],
    // Several roles: the union of their policies, deny still first.
    ["reader+writer, union", ["reader", "writer"], tool("crm", "update_customer"), "allow writer-policy.rules[0]"],
    ["reader+writer, first allow in config order", ["writer", "reader"], tool("crm", "get_customer"), "allow reader-policy.rules[0]"],
    ["reader+writer, deny from either role", ["reader", "writer"], tool("crm", "drop_table"), "deny writer-policy.rules[1]"],
    // An allow before a broad deny in the same policy does not win (deny overrides; not first-match).
    ["auditor, allow then deny-all in one policy", ["auditor"], tool("crm", "read_log"), "deny audit.rules[1]"],
    // Full access.
    ["admin, { action: allow } alone", ["admin"], subject("resource", "any", "x://y"), "allow admin-policy.rules[0]"],
    ["admin, deny in a policy for another role", ["admin"], tool("mcp-stripe", "get_balance"), "allow admin-policy.rules[0]"],
    ["admin+reader, the reader's deny applies too", ["admin", "reader"], tool("mcp-stripe", "get_balance"), "deny stripe-block.rules[0]"],
  ] as [string, string[], PolicySubject, string][])("%s", (_, roles, what, expected) => {
    expect(outcome(ENGINE.decide(principal(roles), what))).toBe(expected);
  });

  it("counts every rule it compiled", () => {
    expect(ENGINE.ruleCount).toBe(15);
  });

  it("names the rule and policy in a denial, and the caller's roles and the subject in a default deny", () => {
    expect(ENGINE.decide(principal(["reader"]), tool("mcp-stripe", "get_balance"))).toEqual({
      allowed: false,
      ruleId: "stripe-block.rules[0]",
      policyId: "stripe-block",
      reason: 'denied by rule "stripe-block.rules[0]" of policy "stripe-block"',
    });
    expect(ENGINE.decide(principal(["reader"]), tool("crm", "delete_x"))).toEqual({
      allowed: false,
      ruleId: null,
      policyId: null,
      reason: `no policy allows this caller's roles (reader) to use tool "delete_x" on server "crm"`,
    });
    expect(ENGINE.decide(principal([]), subject("resource", "crm", "crm://x\n"))).toMatchObject({
      reason: `no policy allows this caller's roles (none) to use resource "crm://x\\n" on server "crm"`,
    });
    expect(ENGINE.decide(principal(["writer"]), tool("crm", "x"))).toEqual({ allowed: true, ruleId: "writer-policy.rules[0]", policyId: "writer-policy" });
  });

  it("gives the same decisions whatever the order or repetition of the caller's roles", () => {
    const subjects = [tool("crm", "get_customer"), tool("crm", "drop_table"), tool("hr", "get_salary"), tool("mcp-stripe", "get_x")];
    for (const s of subjects) {
      const a = ENGINE.decide(principal(["reader", "writer"]), s);
      expect(ENGINE.decide(principal(["writer", "reader", "writer", "unknown"]), s)).toEqual(a);
    }
  });

  it("never lets a memoised decision leak to another role set, and stays correct past the memo's size", () => {
    const engine = compilePolicies(
      policies([
        { id: "a", roles: ["a"], rules: [{ tool: "t_*", action: "allow" }] },
        { id: "b", roles: ["b"], rules: [{ tool: "t_1*", action: "deny" }, { tool: "*", action: "allow" }] },
      ]),
    );
    const decide = (roles: string[], i: number) => outcome(engine.decide(principal(roles), tool("s", `t_${i}`)));
    const expected = (roles: string[], i: number) =>
      roles.includes("b") && String(i).startsWith("1") ? "deny b.rules[0]" : roles.includes("a") ? "allow a.rules[0]" : roles.includes("b") ? "allow b.rules[1]" : "deny default";
    for (let i = 0; i < MEMO_ENTRIES + 500; i++) expect(decide(["a"], i)).toBe(expected(["a"], i));
    for (const roles of [["a"], ["b"], ["a", "b"], []]) {
      for (const i of [0, 1, 12, 999, MEMO_ENTRIES + 499]) expect(decide(roles, i), `${roles} t_${i}`).toBe(expected(roles, i));
    }
    // A name too long to memoise is decided all the same; one too long to match at all is denied (fail closed).
    expect(outcome(engine.decide(principal(["a"]), tool("s", `t_${"x".repeat(1500)}`)))).toBe("allow a.rules[0]");
    expect(outcome(engine.decide(principal(["a"]), tool("s", `t_${"x".repeat(MAX_SUBJECT_NAME)}`)))).toBe("deny default");
    expect(engine.visible(principal(["a"]), tool("s", `t_${"x".repeat(MAX_SUBJECT_NAME)}`))).toBe(false);
  });

  it("fails closed on names holding the character globs use for '/' (U+E000): allow globs miss, deny globs hit", () => {
    const engine = compilePolicies(
      policies([
        { id: "p", roles: ["r"], rules: [{ tool: "get_*", action: "allow" }, { tool: "exact", action: "allow" }] },
        { id: "q", roles: ["q"], rules: [{ action: "allow" }, { tool: "zzz*", action: "deny" }] },
      ]),
    );
    expect(outcome(engine.decide(principal(["r"]), tool("s", `get_${SLASH}x`)))).toBe("deny default");
    expect(outcome(engine.decide(principal(["q"]), tool("s", `get_${SLASH}x`)))).toBe("deny q.rules[1]");
    expect(outcome(engine.decide(principal(["q"]), tool(`s${SLASH}`, "x")))).toBe("allow q.rules[0]");
  });
});

describe("policy conditions", () => {
  const CLAIMS = { groups: ["g1", "g2"], org: { id: "org-7", region: "eu" }, limits: { maxAmount: 500 }, plan: "pro" };
  type Result = true | false | "unevaluable";

  // Each row is run twice: on an allow rule (allowed only when the condition holds) and on a deny rule next to an
  // unconditional allow (denied unless the condition is false): unevaluable allows nothing and denies.
  // A fifth column gives the caller's claims instead of CLAIMS (null: a principal without claims).
  const ROWS: [string, PolicyCondition, unknown, Result, (Record<string, unknown> | null)?][] = [
    // eq / neq: same JSON type, deep equality, no coercion.
    ["eq string", { param: "customer.id", operator: "eq", value: "c-42" }, { customer: { id: "c-42" } }, true],
    ["eq other string", { param: "customer.id", operator: "eq", value: "c-42" }, { customer: { id: "c-43" } }, false],
    ["eq list vs string", { param: "customer.id", operator: "eq", value: "c-42" }, { customer: { id: ["c-42"] } }, "unevaluable"],
    ["eq number vs string", { param: "n", operator: "eq", value: "42" }, { n: 42 }, "unevaluable"],
    ["eq string vs number", { param: "n", operator: "eq", value: 42 }, { n: "42" }, "unevaluable"],
    ["eq missing argument", { param: "customer.id", operator: "eq", value: "c-42" }, { customer: {} }, "unevaluable"],
    ["eq no arguments at all", { param: "customer.id", operator: "eq", value: "c-42" }, undefined, "unevaluable"],
    ["eq path through a string", { param: "customer.id", operator: "eq", value: "c-42" }, { customer: "c-42" }, "unevaluable"],
    ["eq deep object", { param: "o", operator: "eq", value: { a: [1, { b: null }] } }, { o: { a: [1, { b: null }] } }, true],
    ["eq deep object, order of list", { param: "o", operator: "eq", value: { a: [1, 2] } }, { o: { a: [2, 1] } }, false],
    ["eq deep object, extra key", { param: "o", operator: "eq", value: { a: 1 } }, { o: { a: 1, b: 2 } }, false],
    ["eq null", { param: "x", operator: "eq", value: null }, { x: null }, true],
    ["eq boolean", { param: "x", operator: "eq", value: false }, { x: false }, true],
    ["neq different", { param: "x", operator: "neq", value: "c-42" }, { x: "c-43" }, true],
    ["neq same", { param: "x", operator: "neq", value: "c-42" }, { x: "c-42" }, false],
    ["neq other type", { param: "x", operator: "neq", value: "42" }, { x: 42 }, "unevaluable"],
    ["neq missing", { param: "x", operator: "neq", value: "42" }, {}, "unevaluable"],
    // in / not_in: a scalar argument, strict membership.
    ["in member", { param: "env", operator: "in", value: ["dev", "staging"] }, { env: "dev" }, true],
    ["in non-member", { param: "env", operator: "in", value: ["dev", "staging"] }, { env: "prod" }, false],
    ["in strict: 1 is not '1'", { param: "n", operator: "in", value: ["1", "2"] }, { n: 1 }, false],
    ["in list argument", { param: "env", operator: "in", value: ["dev"] }, { env: ["dev"] }, "unevaluable"],
    ["in missing", { param: "env", operator: "in", value: ["dev"] }, {}, "unevaluable"],
    ["in null member", { param: "env", operator: "in", value: [null, "dev"] }, { env: null }, true],
    ["not_in non-member", { param: "env", operator: "not_in", value: ["prod"] }, { env: "dev" }, true],
    ["not_in member", { param: "env", operator: "not_in", value: ["prod"] }, { env: "prod" }, false],
    ["not_in object argument", { param: "env", operator: "not_in", value: ["prod"] }, { env: { name: "prod" } }, "unevaluable"],
    ["not_in missing", { param: "env", operator: "not_in", value: ["prod"] }, {}, "unevaluable"],
    // regex: anchored, strings only, bounded input.
    ["regex whole string", { param: "s", operator: "regex", value: "abc" }, { s: "abc" }, true],
    ["regex is anchored", { param: "s", operator: "regex", value: "abc" }, { s: "xabcx" }, false],
    ["regex alternation is anchored too", { param: "s", operator: "regex", value: "ab|cd" }, { s: "abcd" }, false],
    ["regex alternation", { param: "s", operator: "regex", value: "ab|cd" }, { s: "cd" }, true],
    ["regex class", { param: "s", operator: "regex", value: "INV-[0-9]{4}" }, { s: "INV-2026" }, true],
    ["regex number argument", { param: "s", operator: "regex", value: "[0-9]+" }, { s: 42 }, "unevaluable"],
    ["regex input at the cap", { param: "s", operator: "regex", value: "a*" }, { s: "a".repeat(4096) }, true],
    ["regex input over the cap", { param: "s", operator: "regex", value: "a*" }, { s: "a".repeat(4097) }, "unevaluable"],
    ["regex missing", { param: "s", operator: "regex", value: "a*" }, {}, "unevaluable"],
    // prefix
    ["prefix", { param: "s", operator: "prefix", value: "INV-" }, { s: "INV-1" }, true],
    ["prefix no", { param: "s", operator: "prefix", value: "INV-" }, { s: "inv-1" }, false],
    ["prefix number argument", { param: "s", operator: "prefix", value: "4" }, { s: 42 }, "unevaluable"],
    // lt / lte / gt / gte: numbers with numbers, strings with strings.
    ["lt", { param: "amount", operator: "lt", value: 100 }, { amount: 99.5 }, true],
    ["lt equal", { param: "amount", operator: "lt", value: 100 }, { amount: 100 }, false],
    ["lt string argument", { param: "amount", operator: "lt", value: 100 }, { amount: "99" }, "unevaluable"],
    ["lt missing", { param: "amount", operator: "lt", value: 100 }, {}, "unevaluable"],
    ["lte equal", { param: "amount", operator: "lte", value: 100 }, { amount: 100 }, true],
    ["lte above", { param: "amount", operator: "lte", value: 100 }, { amount: 100.01 }, false],
    ["gt", { param: "amount", operator: "gt", value: 100 }, { amount: 101 }, true],
    ["gt below", { param: "amount", operator: "gt", value: 100 }, { amount: -1 }, false],
    ["gte strings", { param: "day", operator: "gte", value: "2026-01-01" }, { day: "2026-03-01" }, true],
    ["gte strings below", { param: "day", operator: "gte", value: "2026-01-01" }, { day: "2025-12-31" }, false],
    ["gte number vs string bound", { param: "day", operator: "gte", value: "2026" }, { day: 2027 }, "unevaluable"],
    // exists: always evaluable.
    ["exists present", { param: "a", operator: "exists", value: true }, { a: 1 }, true],
    ["exists present null", { param: "a", operator: "exists", value: true }, { a: null }, true],
    ["exists absent", { param: "a", operator: "exists", value: true }, {}, false],
    ["exists false, absent", { param: "a", operator: "exists", value: false }, {}, true],
    ["exists false, present", { param: "a", operator: "exists", value: false }, { a: "" }, false],
    ["exists, no arguments", { param: "a", operator: "exists", value: true }, undefined, false],
    // Paths: lists, quoted names, own properties only.
    ["index into a list", { param: "items[1].sku", operator: "eq", value: "B" }, { items: [{ sku: "A" }, { sku: "B" }] }, true],
    ["index past the end", { param: "items[2].sku", operator: "eq", value: "B" }, { items: [{ sku: "A" }, { sku: "B" }] }, "unevaluable"],
    ["a name on a list", { param: "items.length", operator: "eq", value: 2 }, { items: [1, 2] }, "unevaluable"],
    ["an index on a mapping", { param: "m[0]", operator: "eq", value: 1 }, { m: { "0": 1 } }, "unevaluable"],
    ["quoted name", { param: 'meta["key with space"]', operator: "eq", value: 1 }, { meta: { "key with space": 1 } }, true],
    ["__proto__ is not inherited", { param: "__proto__", operator: "exists", value: true }, {}, false],
    ["constructor is not inherited", { param: "constructor.name", operator: "eq", value: "Object" }, {}, "unevaluable"],
    ["toString is not inherited", { param: "toString", operator: "exists", value: true }, { a: 1 }, false],
    ["an own __proto__ key (from JSON) resolves", { param: "__proto__.x", operator: "eq", value: 1 }, JSON.parse('{"__proto__":{"x":1}}'), true],
    ["inherited through an own __proto__ does not", { param: "x", operator: "exists", value: true }, JSON.parse('{"__proto__":{"x":1}}'), false],
    // Principal references.
    ["consumerId", { param: "customer.id", operator: "eq", value: "${principal.consumerId}" }, { customer: { id: "agent-1" } }, true],
    ["consumerId, other caller's id", { param: "customer.id", operator: "eq", value: "${principal.consumerId}" }, { customer: { id: "agent-2" } }, false],
    ["consumer (alias)", { param: "c", operator: "eq", value: "${principal.consumer}" }, { c: "agent-1" }, true],
    ["keyId", { param: "k", operator: "eq", value: "${principal.keyId}" }, { k: "key-1" }, true],
    ["tenant embedded", { param: "s", operator: "prefix", value: "${principal.tenant}-" }, { s: "acme-bucket" }, true],
    ["tenant embedded, other tenant", { param: "s", operator: "prefix", value: "${principal.tenant}-" }, { s: "globex-bucket" }, false],
    ["two embedded references", { param: "s", operator: "eq", value: "${principal.tenant}/${principal.consumerId}" }, { s: "acme/agent-1" }, true],
    ["nested claim", { param: "org", operator: "eq", value: "${principal.claims.org.id}" }, { org: "org-7" }, true],
    ["array claim for in", { param: "group", operator: "in", value: "${principal.claims.groups}" }, { group: "g2" }, true],
    ["array claim for in, non-member", { param: "group", operator: "in", value: "${principal.claims.groups}" }, { group: "g3" }, false],
    ["array claim for not_in", { param: "group", operator: "not_in", value: "${principal.claims.groups}" }, { group: "g3" }, true],
    ["scalar claim for in", { param: "group", operator: "in", value: "${principal.claims.plan}" }, { group: "pro" }, "unevaluable"],
    ["reference inside a list for in", { param: "t", operator: "in", value: ["${principal.tenant}", "shared"] }, { t: "acme" }, true],
    ["number claim keeps its type", { param: "amount", operator: "lte", value: "${principal.claims.limits.maxAmount}" }, { amount: 500 }, true],
    ["number claim keeps its type, above", { param: "amount", operator: "lte", value: "${principal.claims.limits.maxAmount}" }, { amount: 501 }, false],
    ["quoted claim path", { param: "r", operator: "eq", value: '${principal.claims["org"].region}' }, { r: "eu" }, true],
    ["unresolved claim", { param: "org", operator: "eq", value: "${principal.claims.tenantId}" }, { org: "org-7" }, "unevaluable"],
    ["no claims at all", { param: "org", operator: "eq", value: "${principal.claims.org.id}" }, { org: "org-7" }, "unevaluable", null],
    ["claims without the key", { param: "org", operator: "eq", value: "${principal.claims.org.id}" }, { org: "org-7" }, "unevaluable", { org: "x" }],
    ["object claim embedded in a string", { param: "s", operator: "eq", value: "x-${principal.claims.org}" }, { s: "x-[object Object]" }, "unevaluable"],
    ["reference inside an object for eq", { param: "o", operator: "eq", value: { owner: "${principal.consumerId}" } }, { o: { owner: "agent-1" } }, true],
  ];

  const CASES = ROWS.map(([name, condition, args, result, claims]) => ({ name, condition, args, result, claims }));
  it.each(CASES)("$name: $condition.operator is $result", ({ condition, args, result, claims }) => {
    const who = principal(["r"], claims === null ? undefined : (claims ?? CLAIMS));
    const allowRule = compilePolicies(policies([{ id: "p", roles: ["r"], rules: [{ tool: "t", action: "allow", conditions: [condition] }] }]));
    expect(outcome(allowRule.decide(who, tool("s", "t"), args)), "as an allow rule").toBe(result === true ? "allow p.rules[0]" : "deny default");
    const denyRule = compilePolicies(
      policies([{ id: "p", roles: ["r"], rules: [{ tool: "t", action: "allow" }, { tool: "t", action: "deny", conditions: [condition] }] }]),
    );
    expect(outcome(denyRule.decide(who, tool("s", "t"), args)), "as a deny rule").toBe(result === false ? "allow p.rules[0]" : "deny p.rules[1]");
  });

  it("needs every condition of a rule (AND)", () => {
    const engine = compilePolicies(
      policies([
        {
          id: "p",
          roles: ["r"],
          rules: [
            {
              tool: "pay",
              action: "allow",
              conditions: [
                { param: "amount", operator: "lte", value: 100 },
                { param: "currency", operator: "in", value: ["EUR", "USD"] },
              ],
            },
          ],
        },
      ]),
    );
    const decide = (args: unknown) => outcome(engine.decide(principal(["r"]), tool("s", "pay"), args));
    expect(decide({ amount: 10, currency: "EUR" })).toBe("allow p.rules[0]");
    expect(decide({ amount: 1000, currency: "EUR" })).toBe("deny default");
    expect(decide({ amount: 10, currency: "GBP" })).toBe("deny default");
    expect(decide({ amount: 10 })).toBe("deny default");
  });

  it("takes the first allow whose conditions hold, after every deny rule", () => {
    const engine = compilePolicies(
      policies([
        {
          id: "p",
          roles: ["r"],
          rules: [
            { tool: "q", action: "allow", conditions: [{ param: "own", operator: "eq", value: true }] },
            { tool: "q", action: "allow", conditions: [{ param: "scope", operator: "eq", value: "team" }] },
            { id: "no-secrets", tool: "q", action: "deny", conditions: [{ param: "table", operator: "eq", value: "secrets" }] },
          ],
        },
      ]),
    );
    const decide = (args: unknown) => outcome(engine.decide(principal(["r"]), tool("s", "q"), args));
    expect(decide({ own: true, scope: "team", table: "t" })).toBe("allow p.rules[0]");
    expect(decide({ own: false, scope: "team", table: "t" })).toBe("allow p.rules[1]");
    expect(decide({ own: true, table: "secrets" })).toBe("deny no-secrets");
    // The deny's argument is missing: it cannot be checked, so the call is refused.
    expect(decide({ own: true })).toBe("deny no-secrets");
  });

  it("says which condition of an allow rule failed, never the argument's value", () => {
    const engine = compilePolicies(
      policies([
        {
          id: "crm-policy",
          roles: ["r"],
          rules: [{ server: "crm", tool: "query_*", action: "allow", conditions: [{ param: "customer.id", operator: "eq", value: "${principal.consumerId}" }] }],
        },
      ]),
    );
    const denied = engine.decide(principal(["r"]), tool("crm", "query_orders"), { customer: { id: "sk_live_SECRET" } });
    expect(denied).toEqual({
      allowed: false,
      ruleId: null,
      policyId: null,
      reason:
        `no policy allows this caller's roles (r) to use tool "query_orders" on server "crm" with these arguments: ` +
        `rule "crm-policy.rules[0]" of policy "crm-policy" would allow it, but its condition on customer.id (eq) does not hold`,
    });
    const missing = engine.decide(principal(["r"]), tool("crm", "query_orders"), {});
    expect(missing.allowed === false && missing.reason).toMatch(/its condition on customer\.id \(eq\) cannot be evaluated$/);
    const deny = compilePolicies(
      policies([{ id: "p", roles: ["r"], rules: [{ action: "allow" }, { tool: "x", action: "deny", conditions: [{ param: "k", operator: "eq", value: "v" }] }] }]),
    ).decide(principal(["r"]), tool("s", "x"), { k: "sk_live_SECRET" });
    expect(JSON.stringify(denied) + JSON.stringify(missing) + JSON.stringify(deny)).not.toContain("SECRET");
  });
});

describe("policy visibility (listings)", () => {
  const ENGINE_V = compilePolicies(
    policies([
      {
        id: "p",
        roles: ["r"],
        rules: [
          { tool: "own_*", action: "allow", conditions: [{ param: "owner", operator: "eq", value: "${principal.consumerId}" }] },
          { tool: "open_*", action: "allow" },
          { tool: "open_big*", action: "deny", conditions: [{ param: "size", operator: "gt", value: 100 }] },
          { tool: "open_secret*", action: "deny" },
          { tool: "own_hidden", action: "deny" },
        ],
      },
    ]),
  );
  const who = principal(["r"]);

  it.each([
    ["conditional allow: listed", tool("s", "own_notes"), true],
    ["unconditional allow: listed", tool("s", "open_x"), true],
    ["conditional deny over an allow: still listed", tool("s", "open_big_file"), true],
    ["unconditional deny: hidden", tool("s", "open_secret_x"), false],
    ["unconditional deny over a conditional allow: hidden", tool("s", "own_hidden"), false],
    ["no allow rule: hidden", tool("s", "close_x"), false],
    ["other kind: hidden", subject("prompt", "s", "open_x"), false],
  ] as [string, PolicySubject, boolean][])("%s", (_, what, expected) => {
    expect(ENGINE_V.visible(who, what)).toBe(expected);
  });

  it("lists what decide() may allow, and decide() still checks the conditions", () => {
    expect(outcome(ENGINE_V.decide(who, tool("s", "own_notes"), { owner: "agent-1" }))).toBe("allow p.rules[0]");
    expect(outcome(ENGINE_V.decide(who, tool("s", "own_notes"), { owner: "agent-2" }))).toBe("deny default");
    expect(outcome(ENGINE_V.decide(who, tool("s", "open_big_file"), { size: 1000 }))).toBe("deny p.rules[2]");
    expect(outcome(ENGINE_V.decide(who, tool("s", "open_big_file"), { size: 10 }))).toBe("allow p.rules[1]");
  });
});
