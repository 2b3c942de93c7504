/**
 * @module The policy engine: compiles a tenant's `policies:` once and decides, per call, whether a principal may
 * use a tool, prompt or resource of a server. Pure (no platform APIs): the same code runs in workerd and in Node.
 *
 * Semantics:
 * - A policy applies to a principal that holds any of its roles; the role "*" means every authenticated caller.
 * - Default deny: with no matching allow rule, the call is refused.
 * - Deny overrides allow, whatever the order, policy or specificity: a server-wide deny in one policy beats a
 *   `get_*` allow in another. Among several matching deny rules the decision names the first in config order
 *   (policy order, then rule order); likewise for allow.
 * - A rule matches a subject when its `server` glob matches the server id (absent = any server) and its `tool`,
 *   `prompt` or `resource` glob matches the upstream name or resource URI (template) of that kind. A rule with none
 *   of the three is server-level: it covers every tool, prompt and resource of the matching servers, so
 *   `{ action: allow }` alone is full access.
 * - Globs are picomatch syntax (`get_*`, `{get,list}_*`, `@(a|b)`, `?`, `[abc]`) over flat names: `*` matches any
 *   characters, `/` and `.` included (glob.ts).
 * - Conditions (all must hold) test the call's arguments. One that cannot be evaluated (missing argument, another
 *   JSON type, unresolved principal reference) counts as a match for a deny rule and a non-match for an allow rule:
 *   fail closed. Nothing is coerced (conditions.ts).
 * - Listings show what some allow rule covers (ignoring its conditions) unless a deny rule without conditions
 *   covers it too; a conditional deny still lists the item and refuses the offending calls.
 * - Denial reasons name the rule and policy (or say no policy allows it); they never include argument values.
 *
 * Performance: compiled once per policy set; rules are grouped per role. The first call of a role set (the caller's
 * roles plus "*") builds that set's index (kept for {@link ROLE_SET_INDEXES} role sets): exact-match maps for
 * literal server and subject names (brace lists of literals count as literals), and glob tables for the rest, which
 * test only the patterns whose literal prefix or suffix the name has. Within each list only the rules that can still
 * decide are kept (nothing after the first unconditional deny, or allow). The ordered candidates of a (role set,
 * server, kind, name) are memoised in a bounded LRU map, so a repeated decision only evaluates conditions.
 */
import { clip } from "../text.ts";
import { compileCondition, type CompiledCondition } from "./conditions.ts";
import { GlobTable, compileGlob, isAmbiguousName, type GlobMatcher } from "./glob.ts";
import { EVERY_ROLE, defaultRuleId, type PolicyConfig } from "./schema.ts";

/** The caller as policies see it (the authenticated principal, plus token claims where there are any). */
export interface PolicyPrincipal {
  tenant: string;
  consumer: string;
  keyId: string;
  roles: readonly string[];
  claims?: Record<string, unknown>;
}

export type SubjectKind = "tool" | "prompt" | "resource";

/** What a call uses. `name` is the upstream tool or prompt name, or the resource URI or URI template. */
export interface PolicySubject {
  server: string;
  kind: SubjectKind;
  name: string;
}

export type Decision =
  | { allowed: true; ruleId: string; policyId: string }
  // ruleId null: default deny (no rule allowed it).
  | { allowed: false; ruleId: string | null; policyId: string | null; reason: string };

export interface CompiledPolicies {
  decide(principal: PolicyPrincipal, subject: PolicySubject, args?: unknown): Decision;
  /** For listings: true when some allow rule matches ignoring its conditions and no deny rule WITHOUT conditions matches. */
  visible(principal: PolicyPrincipal, subject: PolicySubject): boolean;
  readonly ruleCount: number;
}

/** How many (roles, server, kind, name) candidate lists each compiled policy set keeps. */
export const MEMO_ENTRIES = 10_000;

/**
 * Names (tool names, resource URIs) longer than this are denied without matching: glob matching can cost time
 * quadratic in the name, and a resource URI comes from the agent (up to the 4 MiB message limit). Fail closed.
 */
export const MAX_SUBJECT_NAME = 2048;
/** How many role sets keep a merged index (callers with the same roles share one; real tenants have few). */
export const ROLE_SET_INDEXES = 64;
/** Longer keys (huge resource URIs) are decided without the memo rather than pinning their memory. */
const MAX_MEMO_KEY = 1024;

interface CompiledRule {
  readonly id: string;
  readonly policyId: string;
  /** Position in config order (policy order, then rule order). */
  readonly order: number;
  readonly deny: boolean;
  readonly conditions: readonly CompiledCondition[];
  /** Undefined: any server. */
  readonly server: GlobMatcher | undefined;
  /** Undefined: a server-level rule (every kind, every name). */
  readonly kind: SubjectKind | undefined;
  readonly name: GlobMatcher | undefined;
}

/**
 * The rules of one index entry that can still decide something, in config order: denies up to and including the
 * first without conditions (it always holds, so later denies never decide), allows likewise.
 */
interface RuleList {
  readonly deny: CompiledRule[];
  readonly allow: CompiledRule[];
  denyClosed: boolean;
  allowClosed: boolean;
}

/** Rules on one kind (tool, prompt or resource) of a set of servers. */
interface NameIndex {
  readonly exact: Map<string, RuleList>;
  readonly globs: GlobTable<RuleList>;
}

/** Rules on the servers one `server` key selects. */
interface ServerRules {
  /** Server-level rules: no tool, prompt or resource key. */
  readonly all: RuleList;
  readonly kinds: Record<SubjectKind, NameIndex>;
}

/**
 * The rules of one role set, by server and name: exact maps for literal names (and each name of a brace list of
 * literals), glob tables (one list per pattern, filed by the pattern's literal prefix or suffix) for other globs.
 */
interface RuleIndex {
  readonly exact: Map<string, ServerRules>;
  readonly globs: GlobTable<ServerRules>;
  readonly any: ServerRules;
}

/** The rules that may decide a (roles, server, kind, name), before conditions, in config order. */
interface Candidates {
  readonly deny: readonly CompiledRule[];
  readonly allow: readonly CompiledRule[];
  readonly visible: boolean;
}

const SUBJECT_KEYS = ["tool", "prompt", "resource"] as const satisfies readonly SubjectKind[];

/**
 * Compiles policies in config order (the order decides which rule a decision names). They must have passed
 * `policySchema` (gateway.yaml and the admin API validate on the way in); an invalid pattern or condition throws.
 */
export function compilePolicies(policies: readonly PolicyConfig[]): CompiledPolicies {
  const globs = new Map<string, GlobMatcher>();
  const glob = (pattern: string) => {
    let matcher = globs.get(pattern);
    if (!matcher) globs.set(pattern, (matcher = compileGlob(pattern)));
    return matcher;
  };
  /** Each role's rules in config order; "*" holds the rules for everyone. */
  const byRole = new Map<string, CompiledRule[]>();
  let order = 0;
  for (const policy of policies) {
    const lists = [...new Set(policy.roles)].map((role) => {
      let list = byRole.get(role);
      if (!list) byRole.set(role, (list = []));
      return list;
    });
    policy.rules.forEach((rule, i) => {
      const kind = SUBJECT_KEYS.find((k) => rule[k] !== undefined);
      const compiled: CompiledRule = {
        id: rule.id ?? defaultRuleId(policy.id, i),
        policyId: policy.id,
        order: order++,
        deny: rule.action === "deny",
        conditions: (rule.conditions ?? []).map(compileCondition),
        server: rule.server === undefined ? undefined : glob(rule.server),
        kind,
        name: kind === undefined ? undefined : glob(rule[kind] as string),
      };
      for (const list of lists) list.push(compiled);
    });
  }

  // One index per role set, built on first use: a caller's roles are merged once, so each distinct glob is tested
  // once per new subject however many of the caller's roles use it.
  const indexes = new Map<string, RuleIndex>();
  const indexFor = (key: string, held: readonly string[]): RuleIndex => {
    const hit = indexes.get(key);
    if (hit) {
      indexes.delete(key);
      indexes.set(key, hit);
      return hit;
    }
    const rules = new Set<CompiledRule>();
    for (const role of [...held, EVERY_ROLE]) for (const rule of byRole.get(role) ?? []) rules.add(rule);
    const index = buildIndex([...rules].sort((a, b) => a.order - b.order));
    indexes.set(key, index);
    if (indexes.size > ROLE_SET_INDEXES) indexes.delete(indexes.keys().next().value as string);
    return index;
  };

  const memo = new Map<string, Candidates>();

  const candidates = (principal: PolicyPrincipal, subject: PolicySubject): Candidates => {
    // Only roles some policy names matter; sorted so every order of the same roles shares one memo entry.
    const held = [...new Set(principal.roles)].filter((r) => r !== EVERY_ROLE && byRole.has(r)).sort();
    // Length-prefixed, so no role, server or name can make two different questions share a key.
    let roleKey = "";
    for (const role of held) roleKey += `${role.length}:${role}`;
    const key = `${roleKey}|${subject.kind}|${subject.server.length}:${subject.server}|${subject.name}`;
    const hit = memo.get(key);
    if (hit) {
      // Refresh recency: a Map iterates in insertion order, so the first key is the least recently used.
      memo.delete(key);
      memo.set(key, hit);
      return hit;
    }
    const found = collect(indexFor(roleKey, held), subject);
    if (key.length <= MAX_MEMO_KEY) {
      memo.set(key, found);
      if (memo.size > MEMO_ENTRIES) memo.delete(memo.keys().next().value as string);
    }
    return found;
  };

  return {
    ruleCount: order,
    visible: (principal, subject) => subject.name.length <= MAX_SUBJECT_NAME && candidates(principal, subject).visible,
    decide(principal, subject, args) {
      if (subject.name.length > MAX_SUBJECT_NAME) {
        return { allowed: false, ruleId: null, policyId: null, reason: `the ${subject.kind} name is longer than ${MAX_SUBJECT_NAME} characters, too long to match against policy` };
      }
      const { deny, allow } = candidates(principal, subject);
      for (const rule of deny) {
        // Unevaluable (undefined) counts as holding: a deny rule fails closed.
        if (rule.conditions.every((c) => c.evaluate(args, principal) !== false)) {
          return {
            allowed: false,
            ruleId: rule.id,
            policyId: rule.policyId,
            reason: `denied by rule "${rule.id}" of policy "${rule.policyId}"`,
          };
        }
      }
      let unmet: { rule: CompiledRule; condition: CompiledCondition; result: boolean | undefined } | undefined;
      for (const rule of allow) {
        let holds = true;
        for (const condition of rule.conditions) {
          const result = condition.evaluate(args, principal);
          if (result === true) continue;
          holds = false;
          unmet ??= { rule, condition, result };
          break;
        }
        if (holds) return { allowed: true, ruleId: rule.id, policyId: rule.policyId };
      }
      let reason = `no policy allows this caller's roles (${describeRoles(principal.roles)}) to use ${subject.kind} ${quote(subject.name)} on server ${quote(subject.server)}`;
      if (unmet) {
        const { rule, condition, result } = unmet;
        const what = `its condition on ${condition.param} (${condition.operator}) ${result === false ? "does not hold" : "cannot be evaluated"}`;
        reason += ` with these arguments: rule "${rule.id}" of policy "${rule.policyId}" would allow it, but ${what}`;
      }
      return { allowed: false, ruleId: null, policyId: null, reason };
    },
  };
}

function emptyRuleList(): RuleList {
  return { deny: [], allow: [], denyClosed: false, allowClosed: false };
}

/** Appends a rule (rules come in config order) unless an earlier unconditional rule of its action shadows it. */
function append(list: RuleList, rule: CompiledRule): void {
  const unconditional = rule.conditions.length === 0;
  if (rule.deny) {
    if (list.denyClosed) return;
    list.deny.push(rule);
    list.denyClosed = unconditional;
  } else {
    if (list.allowClosed) return;
    list.allow.push(rule);
    list.allowClosed = unconditional;
  }
}

function emptyServerRules(): ServerRules {
  const names = (): NameIndex => ({ exact: new Map(), globs: new GlobTable() });
  return { all: emptyRuleList(), kinds: { tool: names(), prompt: names(), resource: names() } };
}

/** Indexes rules given in config order (every list in the index stays in config order). */
function buildIndex(rules: readonly CompiledRule[]): RuleIndex {
  const index: RuleIndex = { exact: new Map(), globs: new GlobTable(), any: emptyServerRules() };
  const serverGroups = new Map<GlobMatcher, ServerRules>();
  const nameGroups = new Map<NameIndex, Map<GlobMatcher, RuleList>>();
  for (const rule of rules) {
    // The server buckets the rule goes in: one, or one per name of a brace list.
    const buckets: ServerRules[] = [];
    if (rule.server === undefined) {
      buckets.push(index.any);
    } else if (rule.server.names) {
      for (const name of rule.server.names) {
        let servers = index.exact.get(name);
        if (!servers) index.exact.set(name, (servers = emptyServerRules()));
        buckets.push(servers);
      }
    } else {
      let group = serverGroups.get(rule.server);
      if (!group) {
        serverGroups.set(rule.server, (group = emptyServerRules()));
        index.globs.add(rule.server, group);
      }
      buckets.push(group);
    }
    for (const servers of buckets) {
      if (rule.kind === undefined || rule.name === undefined) {
        append(servers.all, rule);
        continue;
      }
      const names = servers.kinds[rule.kind];
      if (rule.name.names) {
        for (const name of rule.name.names) {
          let list = names.exact.get(name);
          if (!list) names.exact.set(name, (list = emptyRuleList()));
          append(list, rule);
        }
        continue;
      }
      let groups = nameGroups.get(names);
      if (!groups) nameGroups.set(names, (groups = new Map()));
      let list = groups.get(rule.name);
      if (!list) {
        groups.set(rule.name, (list = emptyRuleList()));
        names.globs.add(rule.name, list);
      }
      append(list, rule);
    }
  }
  return index;
}

/** The rules of the index that match the subject (ignoring conditions) and can decide it, in config order. */
function collect(index: RuleIndex, subject: PolicySubject): Candidates {
  const denies: CompiledRule[] = [];
  const allows: CompiledRule[] = [];
  // A name with the stand-in for "/" cannot be matched reliably by a glob: such globs count for deny rules only.
  const ambiguousServer = isAmbiguousName(subject.server);
  const ambiguousName = isAmbiguousName(subject.name);
  const add = (list: RuleList, denyOnly: boolean) => {
    for (const rule of list.deny) denies.push(rule);
    if (!denyOnly) for (const rule of list.allow) allows.push(rule);
  };
  const fromServer = (servers: ServerRules, denyOnly: boolean) => {
    add(servers.all, denyOnly);
    const names = servers.kinds[subject.kind];
    const exact = names.exact.get(subject.name);
    if (exact) add(exact, denyOnly);
    if (ambiguousName) for (const group of names.globs.entries) add(group.value, true);
    else names.globs.match(subject.name, (list) => add(list, denyOnly));
  };
  fromServer(index.any, false);
  const exact = index.exact.get(subject.server);
  if (exact) fromServer(exact, false);
  if (ambiguousServer) for (const group of index.globs.entries) fromServer(group.value, true);
  else index.globs.match(subject.server, (servers) => fromServer(servers, false));
  // A rule sits in one list per name it can match exactly, and in one glob list otherwise, so no subject reaches it
  // twice: there is nothing to deduplicate; only the order to restore, and what follows the first unconditional
  // rule of each action to drop (it can never decide).
  const deny = upToFirstUnconditional(denies);
  const allow = upToFirstUnconditional(allows);
  const unconditionalDeny = deny.length > 0 && (deny.at(-1) as CompiledRule).conditions.length === 0;
  return { deny, allow, visible: allow.length > 0 && !unconditionalDeny };
}

function upToFirstUnconditional(rules: CompiledRule[]): CompiledRule[] {
  if (rules.length > 1) rules.sort((a, b) => a.order - b.order);
  const first = rules.findIndex((r) => r.conditions.length === 0);
  if (first !== -1) rules.length = first + 1;
  return rules;
}

function describeRoles(roles: readonly string[]): string {
  if (roles.length === 0) return "none";
  const shown = roles.slice(0, 10).map((r) => clip(r, 64));
  return roles.length > shown.length ? `${shown.join(", ")}, … ${roles.length - shown.length} more` : shown.join(", ");
}

/** A name as a reason shows it: JSON-quoted (no control characters reach a log line) and bounded. */
function quote(name: string): string {
  return JSON.stringify(clip(name, 200));
}


