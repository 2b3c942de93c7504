/**
 * @module Field paths of redaction rules: where in a JSON value a field rule applies. Pure.
 *
 * A path is anchored at the root of the payload (a call's arguments, a result's structured content, or a text
 * result that is JSON): `patient.ssn`, `items[0].card`; `*` is any one key, `[*]` any one index, and `**` any
 * number of levels (zero included), so `**.password` is a password field at any depth. Keys with other characters:
 * `a["odd key"]`.
 */
export type PathSegment = { key: string } | { index: number } | { anyKey: true } | { anyIndex: true } | { anyDepth: true };

export type ParsedPath = { ok: true; segments: PathSegment[] } | { ok: false; error: string };

export const MAX_FIELD_PATH = 256;

export function parseFieldPath(text: string): ParsedPath {
  if (text.length === 0) return { ok: false, error: "must not be empty" };
  if (text.length > MAX_FIELD_PATH) return { ok: false, error: `must be at most ${MAX_FIELD_PATH} characters` };
  const segments: PathSegment[] = [];
  let i = 0;
  const fail = (why: string): ParsedPath => ({ ok: false, error: `${why} at character ${i + 1} of "${text}"` });
  while (i < text.length) {
    if (text[i] === "[") {
      const close = text.indexOf("]", i);
      if (close < 0) return fail("unclosed [");
      const inner = text.slice(i + 1, close);
      if (inner === "*") segments.push({ anyIndex: true });
      else if (/^(0|[1-9][0-9]{0,8})$/.test(inner)) segments.push({ index: Number(inner) });
      else if (/^"(?:[^"\\]|\\.)*"$/.test(inner)) segments.push({ key: JSON.parse(inner) as string });
      else return fail('expected [n], [*] or ["key"]');
      i = close + 1;
    } else {
      if (segments.length > 0) {
        if (text[i] !== ".") return fail('expected "." or "["');
        i++;
      }
      const match = /^(\*\*|\*|[A-Za-z0-9_$@:-]+)/.exec(text.slice(i));
      if (!match) return fail("expected a key, * or **");
      const word = match[1] as string;
      segments.push(word === "**" ? { anyDepth: true } : word === "*" ? { anyKey: true } : { key: word });
      i += word.length;
    }
  }
  return { ok: true, segments };
}

/** A location in a JSON value: object keys and array indexes from the root. */
export type Location = readonly (string | number)[];

/**
 * Matching as a small automaton whose state is the set of segment positions reached; `**` loops. A walk carries the
 * state down the tree, so each node costs one {@link advance} per field path, whatever its depth.
 */
export type PathState = ReadonlySet<number>;

export function startState(segments: readonly PathSegment[]): PathState {
  return closure(segments, new Set([0]));
}

/** The state after one more step (an object key or an array index); empty when the path can no longer match. */
export function advance(segments: readonly PathSegment[], state: PathState, step: string | number): PathState {
  const next = new Set<number>();
  for (const s of state) {
    const segment = segments[s];
    if (!segment) continue;
    if ("anyDepth" in segment) next.add(s);
    else if ("anyKey" in segment ? typeof step === "string" : "anyIndex" in segment ? typeof step === "number" : "key" in segment ? step === segment.key : step === segment.index) {
      next.add(s + 1);
    }
  }
  return closure(segments, next);
}

export function accepts(segments: readonly PathSegment[], state: PathState): boolean {
  return state.has(segments.length);
}

function closure(segments: readonly PathSegment[], set: Set<number>): Set<number> {
  for (const s of set) {
    const segment = segments[s];
    if (segment && "anyDepth" in segment) set.add(s + 1);
  }
  return set;
}

/** Whether a field path matches a location exactly (the whole location, not a prefix of it). */
export function pathMatches(segments: readonly PathSegment[], location: Location): boolean {
  let state = startState(segments);
  for (const step of location) {
    state = advance(segments, state, step);
    if (state.size === 0) return false;
  }
  return accepts(segments, state);
}
