import { describe, expect, it } from "vitest";
import { generatePolicies, subjects } from "../../bench/policy.ts";
import { compileCondition } from "../../src/policy/conditions.ts";
import { compilePolicies, type PolicyPrincipal, type PolicySubject } from "../../src/policy/engine.ts";
import { GlobTable, braceAlternatives, compileGlob, literalAffixes } from "../../src/policy/glob.ts";
import { defaultRuleId, type PolicyConfig } from "../../src/policy/schema.ts";

/**
 * The semantics written as plainly as possible: every rule of every applicable policy, in config order, no index,
 * no memo. The engine must agree with it on every question.
 */
function reference(policies: readonly PolicyConfig[], principal: PolicyPrincipal, subject: PolicySubject, args: unknown) {
  const rules = policies
    .filter((p) => p.roles.includes("*") || p.roles.some((r) => principal.roles.includes(r)))
    .flatMap((p) => p.rules.map((rule, i) => ({ rule, id: rule.id ?? defaultRuleId(p.id, i) })));
  const matching = rules.filter(({ rule }) => {
    if (rule.server !== undefined && !compileGlob(rule.server).test(subject.server)) return false;
    const pattern = rule.tool ?? rule.prompt ?? rule.resource;
    if (pattern === undefined) return true;
    const kind = rule.tool !== undefined ? "tool" : rule.prompt !== undefined ? "prompt" : "resource";
    return kind === subject.kind && compileGlob(pattern).test(subject.name);
  });
  const results = (rule: PolicyConfig["rules"][number]) => rule.conditions.map((c) => compileCondition(c).evaluate(args, principal));
  const deny = matching.find(({ rule }) => rule.action === "deny" && results(rule).every((r) => r !== false));
  const allow = matching.find(({ rule }) => rule.action === "allow" && results(rule).every((r) => r === true));
  const decided = deny ? `deny ${deny.id}` : allow ? `allow ${allow.id}` : "deny default";
  const visible =
    matching.some(({ rule }) => rule.action === "allow") && !matching.some(({ rule }) => rule.action === "deny" && rule.conditions.length === 0);
  return { decided, visible };
}

describe("policy engine against a plain reference implementation", () => {
  it("agrees on 1,500 decisions and 1,500 listings over 2,000 generated rules (indexes, memo, brace lists, glob tables)", () => {
    const policies = generatePolicies(2_000, 7);
    const engine = compilePolicies(policies);
    const callers: PolicyPrincipal[] = [
      { tenant: "acme", consumer: "agent-1", keyId: "k1", roles: ["role-1", "role-2", "role-3"] },
      { tenant: "acme", consumer: "agent-2", keyId: "k2", roles: ["role-7"] },
      { tenant: "globex", consumer: "agent-3", keyId: "k3", roles: [] },
      { tenant: "acme", consumer: "agent-4", keyId: "k4", roles: Array.from({ length: 60 }, (_, i) => `role-${i}`) },
    ];
    const argSets = [
      { customer: { id: "agent-1" }, amount: 250, region: "eu", ref: "INV-2026", bucket: "acme-reports" },
      { customer: { id: "agent-2" }, amount: 5000, region: "apac", ref: "INV-20266", bucket: "globex-x" },
      {},
      undefined,
    ];
    let allowed = 0;
    let checked = 0;
    // Asked twice: the second round comes from the memo.
    const pool = subjects(750, 11);
    for (const round of [0, 1]) {
      pool.forEach((subject, i) => {
        const principal = callers[(i + round) % callers.length] as PolicyPrincipal;
        const args = argSets[(i >> 2) % argSets.length];
        const decision = engine.decide(principal, subject, args);
        const got = decision.allowed ? `allow ${decision.ruleId}` : decision.ruleId === null ? "deny default" : `deny ${decision.ruleId}`;
        const want = reference(policies, principal, subject, args);
        expect({ subject, roles: principal.roles.length, got }).toEqual({ subject, roles: principal.roles.length, got: want.decided });
        expect(engine.visible(principal, subject), JSON.stringify(subject)).toBe(want.visible);
        if (decision.allowed) allowed++;
        checked += 2;
      });
    }
    expect(checked).toBe(3_000);
    // The generated mix exercises both outcomes, not just one.
    expect(allowed).toBeGreaterThan(150);
    expect(allowed).toBeLessThan(1_350);
  });
});

describe("glob tables", () => {
  it("find exactly the globs that match, testing only those whose literal prefix or suffix the name has", () => {
    const patterns = [
      "get_*", "get_report*", "list_*", "*_admin", "*report*", "{get,list}_*", "@(a|b)_x", "!(delete_*)", "!get_*",
      "a?c", "[abc]*", "*.txt", "file:///*", "file:///public/*.md", "x\\*y", "srv-0[0-4]?", "*", "+(ab)", "v[!0-9]*",
    ];
    const table = new GlobTable<string>();
    for (const p of patterns) table.add(compileGlob(p), p);
    const names = [
      "get_x", "get_report_1", "list_admin", "delete_admin", "q3.report.txt", "a_x", "b_x", "abc", "a/c", "ab", "x*y", "xy",
      "srv-03z", "srv-05z", "file:///public/a/b.md", "file:///private/x.txt", "ababab", "vx", "v1", "", "get_", "_admin",
    ];
    for (const name of names) {
      const found: string[] = [];
      table.match(name, (p) => found.push(p));
      const expected = patterns.filter((p) => compileGlob(p).test(name));
      expect(found.sort(), name).toEqual(expected.sort());
    }
  });

  it("take literal prefixes and suffixes only outside glob syntax, and none from a negated pattern", () => {
    expect(literalAffixes("get_*")).toEqual({ prefix: "get_", suffix: "" });
    expect(literalAffixes("*_admin")).toEqual({ prefix: "", suffix: "_admin" });
    expect(literalAffixes("{get,list}_x")).toEqual({ prefix: "", suffix: "_x" });
    expect(literalAffixes("a\\*b")).toEqual({ prefix: "a", suffix: "b" });
    expect(literalAffixes("!get_x")).toEqual({ prefix: "", suffix: "" });
    expect(literalAffixes("!(get)_x")).toEqual({ prefix: "", suffix: "_x" });
  });

  it("file globs only under affixes every match really has, for every printable ASCII character", () => {
    for (let code = 32; code < 127; code++) {
      const c = String.fromCharCode(code);
      if (/[*?[\]{}()!@+\\"'|^$]/.test(c)) continue; // glob syntax: never part of an affix
      expect(compileGlob(`${c}x*${c}`).test(`${c}xyz${c}`), c).toBe(true);
      for (const pattern of [`${c}x*${c}`, `a${c}*`, `*${c}b`, `${c}${c}?${c}`]) {
        const { prefix, suffix } = literalAffixes(pattern);
        for (const name of [`${c}xyz${c}`, `a${c}zz`, `zz${c}b`, `${c}${c}q${c}`, `Qxyz${c}`, `${c}xyzQ`, `a${c}`, `${c}b`]) {
          if (compileGlob(pattern).test(name)) expect(name.startsWith(prefix) && name.endsWith(suffix), `${pattern} ${name}`).toBe(true);
        }
      }
    }
  });

  it("expand brace lists of literals into the exact names picomatch matches", () => {
    expect(braceAlternatives("{list_tools,list_servers,server_status,call}")).toEqual(["list_tools", "list_servers", "server_status", "call"]);
    expect(braceAlternatives("srv-{a,b}.x")).toEqual(["srv-a.x", "srv-b.x"]);
    expect(braceAlternatives("{a,a}")).toEqual(["a"]);
    for (const notAList of ["{a}", "{a,}", "{a,b}_*", "{a,{b,c}}", "x{a,b}{c,d}", "!{a,b}", "{a..c}", "{a..c,d}", "get_*"]) {
      expect(braceAlternatives(notAList), notAList).toBeUndefined();
    }
    for (const pattern of ["{get,list}_report", "srv-{001,002}", "{a,b}"]) {
      const names = braceAlternatives(pattern) ?? [];
      const matcher = compileGlob(pattern);
      for (const name of names) expect(matcher.test(name), `${pattern} ${name}`).toBe(true);
      for (const other of ["get_reports", "srv-003", "c", "{a,b}", "get,list_report"]) expect(matcher.test(other), `${pattern} ${other}`).toBe(names.includes(other));
    }
  });
});
