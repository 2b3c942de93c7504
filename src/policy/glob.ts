/**
 * @module Name globs for policy rules: picomatch syntax over flat names (tool and prompt names, server ids,
 * resource URIs and URI templates), not over file paths.
 *
 * picomatch is a path matcher: out of the box `*` and `?` stop at `/`, `*` refuses `.` and `..` segments and a
 * leading `.`, and `.` in its regexes does not match a line break. Any of those would let a resource URI such as
 * `file:///a/../secret` or a name containing a newline slip past a deny rule, so patterns are compiled here with
 * those path rules taken out:
 *
 * - `/` is swapped for {@link SLASH} (a private-use character) in both the pattern and the name, so picomatch never
 *   sees a path separator; `*` then matches any run of characters, `?` any one character.
 * - the guards picomatch still emits against `.`/`..` names are removed from the generated regex, and the regex gets
 *   the `s` flag so every wildcard also matches line breaks.
 * - a name that itself contains {@link SLASH} cannot be told apart from one with `/` there, so it matches no glob of
 *   an allow rule and every glob of a deny rule (see {@link GlobMatcher}): fail closed.
 *
 * Options: `bash` (a lone `*` behaves like `**`), `dot`, `literalBrackets: false` (`[abc]` is a class, never the
 * literal text), `posix` (`[!a]` negates, `[[:alpha:]]` classes) and `strictBrackets` (an unbalanced `[`, `(` or `{`
 * is an error at load time, not a pattern that silently matches its own text).
 *
 * Imports `picomatch/posix.js` (with the extension: the package has no exports map, and Node resolves ESM
 * specifiers literally), the entry with no Node built-ins, so this runs in workerd as well as in Node.
 */
import picomatch from "picomatch/posix.js";

/** Patterns longer than this are refused by the schema (a glob is compiled to a regex; keep it small). */
export const MAX_GLOB_LENGTH = 256;

/** Stands in for `/` while picomatch compiles and matches (U+E000, the first private-use code point). */
export const SLASH = "\uE000";

const OPTIONS: picomatch.PicomatchOptions = {
  bash: true,
  dot: true,
  literalBrackets: false,
  posix: true,
  strictBrackets: true,
  // Throw on a pattern whose regex does not compile instead of returning one that never matches.
  debug: true,
};

// What picomatch (4.x, posix) adds to keep `*` away from `.`/`..` path segments and dotfiles; each is a lookahead
// that only narrows a match, so removing it can only widen what a pattern matches, never change what it means.
const PATH_GUARDS = ["(?!(?:^|\\/)\\.{1,2}(?:\\/|$))", "(?!\\.{0,1}(?:\\/|$))", "(?!\\.{1,2}(?:\\/|$))", "(?!\\.)"];

/** True when picomatch would treat the pattern as a glob; false for a literal name (matched by equality). */
export function isGlobPattern(pattern: string): boolean {
  if (pattern.includes("\\")) return true; // an escape: the name it matches is not the pattern's own text
  const scan = picomatch.scan(pattern);
  return scan.isGlob || scan.negated;
}

/** Why a pattern cannot be used (empty, too long, does not compile), or undefined when it can. */
export function globError(pattern: string): string | undefined {
  if (pattern.length === 0) return "must not be empty";
  if (pattern.length > MAX_GLOB_LENGTH) return `must be at most ${MAX_GLOB_LENGTH} characters`;
  if (pattern.includes(SLASH)) return "must not contain U+E000 (reserved)";
  // picomatch passes `(?…)` through as a regex group: not glob syntax, and a lookahead of the pattern's own could
  // collide with the path guards removed from the regex.
  if (pattern.includes("(?")) return 'must not contain "(?" (regex syntax; use @(a|b), !(a), ? and * instead)';
  // Literal names are compiled too: with strictBrackets, a stray "[" or "(" is a typo to report, not a name.
  try {
    globRegExp(pattern);
    return undefined;
  } catch (error) {
    return `is not a valid glob: ${(error as Error).message}`;
  }
}

/**
 * Tests a name against one pattern. For a name that {@link isAmbiguousName} the answer of a glob (not of a literal)
 * is unreliable; the engine does not ask, and decides by the rule's action instead.
 */
export interface GlobMatcher {
  readonly pattern: string;
  /** The pattern has no glob syntax: it matches exactly itself. */
  readonly literal: boolean;
  /**
   * The exact names the pattern matches when that is a short list: itself for a literal, the alternatives of a
   * brace list (`{get,list}_report` → get_report, list_report); undefined for a real wildcard.
   */
  readonly names: readonly string[] | undefined;
  test(name: string): boolean;
}

/** Compiles a pattern (validated by {@link globError}); literal patterns compare by equality. */
export function compileGlob(pattern: string): GlobMatcher {
  if (!isGlobPattern(pattern)) return { pattern, literal: true, names: [pattern], test: (name) => name === pattern };
  const regex = globRegExp(pattern);
  const test = (name: string) => regex.test(name.includes("/") ? name.replaceAll("/", SLASH) : name);
  return { pattern, literal: false, names: braceAlternatives(pattern), test };
}

// One brace list of two or more non-empty literal alternatives, with literal text around it: `{a,b}`, `x_{a,b}_y`.
const BRACE_LIST = /^([^*?[\]{}()!@+\\"'|^$,]*)\{([^*?[\]{}()!@+\\"'|^$]+)\}([^*?[\]{}()!@+\\"'|^$,]*)$/;

/** The names a brace list of literals stands for, or undefined for any other pattern. */
export function braceAlternatives(pattern: string): string[] | undefined {
  const match = BRACE_LIST.exec(pattern);
  if (!match) return undefined;
  const [, before, inner, after] = match as unknown as [string, string, string, string];
  // picomatch reads `..` inside braces as a range (`{a..c}`), whatever else the list holds.
  if (inner.includes("..")) return undefined;
  const alternatives = inner.split(",");
  if (alternatives.length < 2 || alternatives.includes("")) return undefined;
  return [...new Set(alternatives.map((a) => `${before}${a}${after}`))];
}

/** True when a name cannot be matched exactly by globs (it contains the stand-in for `/`). */
export function isAmbiguousName(name: string): boolean {
  return name.includes(SLASH);
}

function globRegExp(pattern: string): RegExp {
  let source = picomatch.makeRe(pattern.replaceAll("/", SLASH), OPTIONS).source;
  for (const guard of PATH_GUARDS) source = source.replaceAll(guard, "");
  return new RegExp(source, "s");
}

// Characters that can start glob syntax in picomatch (or that picomatch treats specially: quotes, regex
// punctuation), plus the leading `!` of a negated pattern. Everything before the first of them is a literal
// prefix every matching name starts with; everything after the last of them a literal suffix it ends with.
const SYNTAX = /[*?[\]{}()!@+\\"'|^$]/;

/** The literal text a pattern's matches must start and end with ("" when there is none). */
export function literalAffixes(pattern: string): { prefix: string; suffix: string } {
  // `!x` negates the whole pattern (`!(x)` is an extglob, which the rules below handle).
  if (pattern.startsWith("!") && !pattern.startsWith("!(")) return { prefix: "", suffix: "" };
  const first = pattern.search(SYNTAX);
  if (first === -1) return { prefix: pattern, suffix: pattern };
  let last = pattern.length - 1;
  while (!SYNTAX.test(pattern[last] as string)) last--;
  return { prefix: pattern.slice(0, first), suffix: pattern.slice(last + 1) };
}

interface Entry<T> {
  readonly matcher: GlobMatcher;
  readonly value: T;
}

/**
 * Values keyed by glob, looked up by name without testing every glob: a glob with a literal prefix is filed under
 * it (`get_*` under "get_"), else under its literal suffix (`*_admin` under "_admin"), else in a short list tested
 * every time (`*report*`, `{get,list}_*`). A lookup tests only the globs whose prefix or suffix the name has.
 */
export class GlobTable<T> {
  /** Every entry, in insertion order. */
  readonly entries: Entry<T>[] = [];
  private readonly byPrefix = new Map<string, Entry<T>[]>();
  private readonly bySuffix = new Map<string, Entry<T>[]>();
  private readonly rest: Entry<T>[] = [];
  /** The distinct lengths of the keys of byPrefix / bySuffix, ascending. */
  private readonly prefixLengths: number[] = [];
  private readonly suffixLengths: number[] = [];

  add(matcher: GlobMatcher, value: T): void {
    const entry = { matcher, value };
    this.entries.push(entry);
    const { prefix, suffix } = literalAffixes(matcher.pattern);
    if (prefix !== "") file(this.byPrefix, this.prefixLengths, prefix, entry);
    else if (suffix !== "") file(this.bySuffix, this.suffixLengths, suffix, entry);
    else this.rest.push(entry);
  }

  /** Calls `found` with the value of every glob that matches `name` (in no particular order). */
  match(name: string, found: (value: T) => void): void {
    for (const length of this.prefixLengths) {
      if (length > name.length) break;
      const entries = this.byPrefix.get(name.slice(0, length));
      if (entries) for (const e of entries) if (e.matcher.test(name)) found(e.value);
    }
    for (const length of this.suffixLengths) {
      if (length > name.length) break;
      const entries = this.bySuffix.get(name.slice(name.length - length));
      if (entries) for (const e of entries) if (e.matcher.test(name)) found(e.value);
    }
    for (const e of this.rest) if (e.matcher.test(name)) found(e.value);
  }
}

function file<T>(map: Map<string, Entry<T>[]>, lengths: number[], key: string, entry: Entry<T>): void {
  const list = map.get(key);
  if (list) {
    list.push(entry);
    return;
  }
  map.set(key, [entry]);
  if (!lengths.includes(key.length)) {
    lengths.push(key.length);
    lengths.sort((a, b) => a - b);
  }
}
