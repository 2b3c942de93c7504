/**
 * @module Policy engine benchmark: compiles 10,000 rules (a realistic mix, generated from a fixed seed) and measures
 * the cost of a decision with a warm memo, with a cold one (every subject new), with conditions, and of a listing
 * check; target ≤ 50 µs per decision.
 */
import { compilePolicies, type PolicyPrincipal, type PolicySubject, type SubjectKind } from "../src/policy/engine.ts";
import { policySchema, type PolicyConfig } from "../src/policy/schema.ts";
import type { Benchmark, Figure } from "./run.ts";
import { prng } from "./prng.ts";

const TARGET_US = 50;
const RULES = 10_000;
const ROLES = 60;
const SERVERS = 200;


const VERBS = ["get", "list", "search", "create", "update", "delete", "export", "run"];
const NOUNS = ["customer", "invoice", "order", "ticket", "report", "user", "file", "metric", "log", "secret"];
const server = (i: number) => `srv-${String(i).padStart(3, "0")}`;

/**
 * `count` rules in policies of 20: each policy for 1-3 roles (2% for "*"); servers 55% exact, 15% glob, 30% any;
 * tools 70% (half exact names, half globs), prompts 8%, resources 5%, server-level 17%; 10% deny (mostly on one
 * server); 15% conditional.
 */
export function generatePolicies(count: number, seed = 42): PolicyConfig[] {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const int = (n: number) => Math.floor(random() * n);
  const policies: unknown[] = [];
  for (let p = 0; p * 20 < count; p++) {
    const roles = random() < 0.02 ? ["*"] : [...new Set(Array.from({ length: 1 + int(3) }, () => `role-${int(ROLES)}`))];
    const rules: Record<string, unknown>[] = [];
    for (let r = 0; r < 20 && p * 20 + r < count; r++) {
      const rule: Record<string, unknown> = {};
      const s = random();
      if (s < 0.55) rule.server = server(int(SERVERS));
      else if (s < 0.7) rule.server = pick([`srv-${int(2)}*`, `srv-0[0-4]${int(10)}`, `{${server(int(SERVERS))},${server(int(SERVERS))}}`, "srv-1?0"]);
      const k = random();
      if (k < 0.35) rule.tool = `${pick(VERBS)}_${pick(NOUNS)}`;
      else if (k < 0.7) rule.tool = pick([`${pick(VERBS)}_*`, `*_${pick(NOUNS)}`, `{get,list,search}_*`, `*${pick(NOUNS)}*`, `@(${pick(VERBS)}|${pick(VERBS)})_${pick(NOUNS)}`]);
      else if (k < 0.78) rule.prompt = random() < 0.5 ? `${pick(NOUNS)}_summary` : "*";
      else if (k < 0.83) rule.resource = random() < 0.5 ? `file:///${pick(NOUNS)}/*` : `${pick(NOUNS)}://*`;
      // Denies are fewer than allows and narrower (a server, a tool) in real configs; 5% are broad.
      const deny = random() < 0.1;
      rule.action = deny ? "deny" : "allow";
      if (deny && random() < 0.95) {
        rule.server ??= server(int(SERVERS));
        if (rule.tool === undefined && rule.prompt === undefined && rule.resource === undefined) rule.tool = `delete_${pick(NOUNS)}`;
      }
      // Conditions test arguments, so only tool and prompt rules carry them.
      if ((rule.tool !== undefined || rule.prompt !== undefined) && random() < 0.15) {
        rule.conditions = [
          pick([
            { param: "customer.id", operator: "eq", value: "${principal.consumerId}" },
            { param: "amount", operator: "lte", value: 1000 },
            { param: "region", operator: "in", value: ["eu", "us"] },
            { param: "ref", operator: "regex", value: "INV-[0-9]{4}" },
            { param: "bucket", operator: "prefix", value: "${principal.tenant}-" },
          ]),
        ];
      }
      rules.push(rule);
    }
    policies.push({ id: `policy-${p}`, roles, rules });
  }
  // Validated like a loaded gateway.yaml, so the benchmark compiles exactly what production would.
  return policies.map((p) => policySchema.parse(p));
}

/** `count` subjects drawn from the same vocabulary as the rules (about half are allowed for the sample callers). */
export function subjects(count: number, seed: number): PolicySubject[] {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const kinds: SubjectKind[] = ["tool", "tool", "tool", "tool", "prompt", "resource"];
  return Array.from({ length: count }, () => {
    const kind = pick(kinds);
    const name =
      kind === "tool" ? `${pick(VERBS)}_${pick(NOUNS)}` : kind === "prompt" ? `${pick(NOUNS)}_summary` : `file:///${pick(NOUNS)}/${Math.floor(random() * 100)}.txt`;
    return { server: server(Math.floor(random() * SERVERS)), kind, name };
  });
}

export const principals: PolicyPrincipal[] = [0, 1, 2, 3].map((i) => ({
  tenant: "acme",
  consumer: `agent-${i}`,
  keyId: `key-${i}`,
  roles: [`role-${i * 3}`, `role-${i * 3 + 1}`, `role-${i * 3 + 2}`],
}));

export const ARGS = { customer: { id: "agent-1" }, amount: 250, region: "eu", ref: "INV-2026", bucket: "acme-reports" };

const bench: Benchmark = {
  name: "policy",
  run(ctx) {
    const policies = generatePolicies(RULES);
    const compileMs = ctx.timeOnce(() => compilePolicies(policies), 7);
    const engine = compilePolicies(policies);
    const ruleCount = engine.ruleCount;

    // Warm: 2,000 (caller, subject) pairs fit the memo; every decision after the warm-up is a memo hit.
    const pool = subjects(2_000, 7);
    const warm = ctx.time((i) => engine.decide(principals[i & 3] as PolicyPrincipal, pool[i % pool.length] as PolicySubject, ARGS));

    // Cold: every subject is new (a unique tool name on a known server), so each call misses the memo, walks the
    // role indexes and the glob lists, and evicts the oldest memo entry.
    let n = 0;
    const coldSubject = (i: number): PolicySubject => {
      const base = pool[i % pool.length] as PolicySubject;
      return { server: base.server, kind: "tool", name: `${VERBS[i % VERBS.length]}_${NOUNS[(i >> 3) % NOUNS.length]}_${n++}` };
    };
    const cold = ctx.time((i) => engine.decide(principals[i & 3] as PolicyPrincipal, coldSubject(i), ARGS), { samples: 1_000, batch: 20, warmup: 2_000 });

    // A caller holding every role: its index holds all 10,000 rules.
    const everyRole: PolicyPrincipal = { tenant: "acme", consumer: "root", keyId: "key-root", roles: Array.from({ length: ROLES }, (_, r) => `role-${r}`) };
    const coldAll = ctx.time((i) => engine.decide(everyRole, coldSubject(i), ARGS), { samples: 1_000, batch: 20, warmup: 2_000 });

    // The first call of a role set builds its index (then shared by every caller with those roles).
    const fresh = Array.from({ length: 7 }, () => compilePolicies(policies));
    let k = 0;
    const firstCallMs = ctx.timeOnce(() => (fresh[k++] as typeof engine).decide(principals[0] as PolicyPrincipal, pool[0] as PolicySubject, ARGS), 7);
    let m = 0;
    const firstCallAllMs = ctx.timeOnce(() => compilePolicies(policies).decide(everyRole, pool[m++] as PolicySubject, ARGS), 5);

    const visible = ctx.time((i) => engine.visible(principals[i & 3] as PolicyPrincipal, pool[i % pool.length] as PolicySubject));

    // Scaling: the cold path at a tenth of the rules; an index that scanned every rule would be ~10× cheaper here.
    const small = compilePolicies(generatePolicies(RULES / 10));
    const coldSmall = ctx.time((i) => small.decide(principals[i & 3] as PolicyPrincipal, coldSubject(i), ARGS), { samples: 1_000, batch: 20, warmup: 2_000 });

    const allowed = pool.filter((s, i) => engine.decide(principals[i & 3] as PolicyPrincipal, s, ARGS).allowed).length;
    ctx.log(`${ruleCount} rules in ${policies.length} policies; ${allowed} of ${pool.length} sample subjects allowed`);

    const figures: Figure[] = [
      { name: "compile 10k rules", unit: "ms", value: compileMs, note: "compilePolicies() of 10,000 validated rules (median of 7)" },
      { name: "decide, warm memo (median)", unit: "µs", value: warm.median, target: TARGET_US, note: "decide() with arguments, candidate rules memoised; conditions evaluated" },
      { name: "decide, warm memo (p99)", unit: "µs", value: warm.p99, note: "99th percentile of 50-call samples" },
      { name: "decide, cold (median)", unit: "µs", value: cold.median, target: TARGET_US, note: "decide() of a never-seen subject: index walk, glob tests, memo insert + eviction" },
      { name: "decide, cold (p99)", unit: "µs", value: cold.p99, note: "99th percentile of 20-call samples" },
      { name: "decide, cold, every role (median)", unit: "µs", value: coldAll.median, target: TARGET_US, note: `the cold path for a caller holding all ${ROLES} roles (all 10,000 rules apply)` },
      { name: "first call of a role set", unit: "ms", value: firstCallMs, note: "builds the role set's index (3 roles); once per role set, not per caller" },
      { name: "first call, every role", unit: "ms", value: firstCallAllMs, note: "the same for the caller holding every role (compile included)" },
      { name: "visible, warm memo (median)", unit: "µs", value: visible.median, target: TARGET_US, note: "visible() per listed item" },
      { name: "decide, cold, 1k rules (median)", unit: "µs", value: coldSmall.median, note: "the cold path with a tenth of the rules (scaling check)" },
    ];
    return figures;
  },
};

export default bench;
