/**
 * @module PII and secret detectors: where in a text the Social Security numbers, payment cards, emails, phone
 * numbers, IBANs, IP addresses and credentials are, and the partial form a redaction may show of each. Pure (no
 * Node built-ins), so it runs in workerd and in Node; the redaction engine builds on {@link findPii} and
 * {@link partialForm}.
 *
 * Every detector is linear in the text: candidates come from global regexes whose repetitions are bounded or cannot
 * backtrack (no nested ambiguous quantifiers; lookbehinds stop a search from restarting inside a run it has already
 * rejected) or from `indexOf` anchors with bounded scans around them, and every candidate is then validated in code
 * (check digits, number plans, a context word before bare digits, ipaddr.js, ibantools, a JWT header that parses). A
 * candidate is only ever taken whole: digits that are part of a longer digit run (`94242424242424242`,
 * `1-123-45-6789`, `1.2.3.4.5`) are not a match.
 */
import ipaddr from "ipaddr.js";
import { cardValid, ibanLength, ibanValid, ssnValid } from "./checksums.ts";

export const DETECTOR_NAMES = ["ssn", "card", "email", "phone", "iban", "ip", "secret"] as const;
export type DetectorName = (typeof DETECTOR_NAMES)[number];

export interface Finding {
  detector: DetectorName;
  /** UTF-16 offsets into the text: `text.slice(start, end)` is the match. */
  start: number;
  end: number;
  /**
   * What was found, where a detector tells kinds apart: card schemes ("visa", "amex", …), phone shapes ("e164",
   * "nanp", "national"), "ipv4"/"ipv6", and secret kinds ("aws-access-key", "aws-secret-key", "github-token",
   * "slack-token", "stripe-key", "openai-key", "anthropic-key", "google-api-key", "gitlab-token", "npm-token", "jwt",
   * "private-key", "gateway-api-key", "gateway-connector-token", "bearer-token", "basic-auth", "auth-token",
   * "assigned-secret", "url-password").
   */
  kind?: string;
}

/** Who wins a tie (two findings starting at the same offset): lower first. */
const PRIORITY: Readonly<Record<DetectorName, number>> = { secret: 0, card: 1, iban: 2, ssn: 3, email: 4, phone: 5, ip: 6 };

type Scanner = (text: string, out: Finding[]) => void;

/**
 * Non-overlapping findings in text order for the chosen detectors; when two overlap, the earlier-starting wins, ties
 * by the priority secret > card > iban > ssn > email > phone > ip (then the longer). One exception: a phone that
 * overlaps a card is dropped whatever its start, so `+1 4242 4242 4242 4242` is one card finding and none of the
 * card's digits survive (the phone would have taken `+1 4242 4242 4242` and left the last group).
 */
export function findPii(text: string, detectors: readonly DetectorName[]): Finding[] {
  let found: Finding[] = [];
  const chosen = new Set(detectors);
  for (const name of chosen) {
    const scan = SCANNERS[name];
    if (scan === undefined) throw new TypeError(`unknown PII detector: ${String(name)}`);
    scan(text, found);
  }
  if (chosen.has("card") && chosen.has("phone")) {
    const cards = found.filter((f) => f.detector === "card");
    if (cards.length > 0) found = found.filter((f) => f.detector !== "phone" || !overlapsAny(cards, f.start, f.end));
  }
  found.sort((a, b) => a.start - b.start || PRIORITY[a.detector] - PRIORITY[b.detector] || b.end - a.end);
  const findings: Finding[] = [];
  let end = 0;
  for (const finding of found) {
    if (finding.start < end) continue;
    findings.push(finding);
    end = finding.end;
  }
  return findings;
}

/**
 * Whether [start, end) overlaps one of `sorted` (findings in text order that do not overlap each other). Binary
 * search, so dropping against many findings stays O(n log n).
 */
function overlapsAny(sorted: readonly { start: number; end: number }[], start: number, end: number): boolean {
  // The last finding starting before `end`: the only one that can overlap, as they do not overlap each other.
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as { start: number }).start < end) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && (sorted[lo - 1] as { end: number }).end > start;
}

/**
 * The partial form of a match, for redactions that keep a hint: ssn `***-**-6789`; card `**** **** **** 4242` (every
 * digit but the last four masked, separators kept where they were); email `j***@example.com`; phone every digit
 * but the last two masked, separators kept; iban `DE** **** … 3000`; ip `203.0.113.***` / `2001::***`; secret its
 * first four characters and `…` — only `…` for a password, an assigned value, Basic credentials or anything under
 * 16 characters, whose first characters are the secret itself.
 */
export function partialForm(finding: Finding, text: string): string {
  const match = text.slice(finding.start, finding.end);
  switch (finding.detector) {
    case "ssn":
    case "card":
      return maskDigits(match, 4);
    case "phone":
      return maskDigits(match, 2);
    case "email": {
      const at = match.lastIndexOf("@");
      return `${String.fromCodePoint(match.codePointAt(0) ?? 0x2a)}***@${match.slice(at + 1)}`;
    }
    case "iban": {
      const compact = match.replace(/ /g, "");
      return `${compact.slice(0, 2)}** **** … ${compact.slice(-4)}`;
    }
    case "ip":
      if (finding.kind === "ipv6" || match.includes(":")) return `${match.slice(0, match.indexOf(":"))}::***`;
      return `${match.slice(0, match.lastIndexOf("."))}.***`;
    case "secret":
      // A password's first characters are the password: show none of it.
      return OPAQUE_KINDS.has(finding.kind ?? "") || match.length < 16 ? "…" : `${match.slice(0, 4)}…`;
    default:
      throw new TypeError(`unknown PII detector: ${String(finding.detector)}`);
  }
}

/** Replaces every digit but the last `keep` with "*", leaving every other character where it was. */
function maskDigits(match: string, keep: number): string {
  let digits = 0;
  for (let i = 0; i < match.length; i++) if (isDigit(match.charCodeAt(i))) digits++;
  let seen = 0;
  let masked = "";
  for (let i = 0; i < match.length; i++) {
    const c = match.charCodeAt(i);
    if (isDigit(c) && seen++ < digits - keep) masked += "*";
    else masked += match[i];
  }
  return masked;
}

// ---------------------------------------------------------------------------------------------------------------
// Characters and boundaries.

const SPACE = 0x20;
const PLUS = 0x2b;
const DASH = 0x2d;
const DOT = 0x2e;
const SLASH = 0x2f;
const COLON = 0x3a;
const LPAREN = 0x28;
const RPAREN = 0x29;
const PERCENT = 0x25;

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function isLetter(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}
function isAlnum(c: number): boolean {
  return isDigit(c) || isLetter(c);
}
function isWord(c: number): boolean {
  return isAlnum(c) || c === 0x5f;
}
function isHex(c: number): boolean {
  return isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

function isUpper(c: number): boolean {
  return c >= 65 && c <= 90;
}
function isLower(c: number): boolean {
  return c >= 97 && c <= 122;
}

/** Joins two digit runs into one number: `1.5`, `1-5`, `12:30`, `1/5`. */
function isJoiner(c: number): boolean {
  return c === DOT || c === DASH || c === COLON || c === SLASH;
}

/**
 * Joins a card number to digits around it: a decimal point or a dash. Not `:` or `/`, which put a card's number
 * next to its CVC or expiry (`4111111111111111:123`, `… 1111/12/26`): the card is still a card there.
 */
function isCardJoiner(c: number): boolean {
  return c === DOT || c === DASH;
}

/** The match starting at `start` continues something before it: a word character, or a joiner after a digit. */
function joinedBefore(text: string, start: number, joiner: (c: number) => boolean = isJoiner): boolean {
  if (start === 0) return false;
  const c = text.charCodeAt(start - 1);
  return isWord(c) || (joiner(c) && start >= 2 && isDigit(text.charCodeAt(start - 2)));
}

/** The match ending at `end` goes on after it: a word character, or a joiner before a digit. */
function joinedAfter(text: string, end: number, joiner: (c: number) => boolean = isJoiner): boolean {
  if (end >= text.length) return false;
  const c = text.charCodeAt(end);
  return isWord(c) || (joiner(c) && isDigit(text.charCodeAt(end + 1)));
}

/**
 * A context word starts at `i` as a word of its own or as a part of an identifier: after a non-letter (`ssn`,
 * `patient_ssn`, `"ssn"`, `x-api-key`) or as a camelCase hump (`patientSsn`, `dbPassword`) — not inside another word
 * (`classname`, `hotel`, `bypass`).
 */
function wordStartsAt(text: string, i: number): boolean {
  if (i === 0) return true;
  const before = text.charCodeAt(i - 1);
  return !isLetter(before) || (isLower(before) && isUpper(text.charCodeAt(i)));
}

/** A context word ends at `i`: before a non-letter, or before a camelCase hump (`ssnValue`, `phoneNumber`). */
function wordEndsAt(text: string, i: number): boolean {
  if (i >= text.length) return true;
  const after = text.charCodeAt(i);
  return !isLetter(after) || (isUpper(after) && isLower(text.charCodeAt(i - 1)));
}

/** How far back from a candidate a context word may end: `socialSecurityNumber: ` is well within it. */
const CONTEXT_GAP = 20;
/** Longer than any context word (`social security` with three separators is 17). */
const CONTEXT_WORD_MAX = 24;

/**
 * Whether one of `words` (a global, case-insensitive regex) ends at most {@link CONTEXT_GAP} characters before
 * `start`, on the same line, as a word of its own or a part of an identifier. Reads a bounded window, so the cost per
 * candidate is constant.
 */
function contextBefore(text: string, start: number, words: RegExp): boolean {
  const from = Math.max(0, start - CONTEXT_GAP - CONTEXT_WORD_MAX);
  const window = text.slice(from, start);
  words.lastIndex = 0;
  for (let m = words.exec(window); m !== null; m = words.exec(window)) {
    const wordStart = from + m.index;
    const wordEnd = wordStart + m[0].length;
    if (start - wordEnd > CONTEXT_GAP || window.includes("\n", wordEnd - from)) continue;
    if (wordStartsAt(text, wordStart) && wordEndsAt(text, wordEnd)) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------------------------
// ssn: `123-45-6789` or `123 45 6789` (one separator, used twice); nine bare digits only after "SSN" or "social
// security" at most 20 characters before them on the same line, the word on its own or part of an identifier
// (`ssn: …`, `"ssn":"…"`, `patient_ssn: …`, `socialSecurityNumber: …`).

const SSN = /(?<![0-9A-Za-z_])\d{3}(?:([- ])\d{2}\1\d{4}|\d{6})(?![0-9A-Za-z_])/g;
const SSN_WORDS = /ssns?|social[\s_.-]{0,3}security/gi;

function scanSsn(text: string, out: Finding[]): void {
  SSN.lastIndex = 0;
  for (let m = SSN.exec(text); m !== null; m = SSN.exec(text)) {
    const start = m.index;
    const end = start + m[0].length;
    if (joinedBefore(text, start) || joinedAfter(text, end)) continue;
    const separator = m[1];
    const digits = separator === undefined ? m[0] : m[0].replaceAll(separator, "");
    if (!ssnValid(digits)) continue;
    if (separator === undefined && !contextBefore(text, start, SSN_WORDS)) continue;
    out.push({ detector: "ssn", start, end });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Digit runs, shared by card and phone: groups of digits (phones also `(digits)`) joined by one separator. A
// segment is the groups joined by anything but a space; a candidate is one or more whole segments, so a run is
// only ever cut at a space (`order 1234 4242 4242 4242 4242` holds a card, `1234-4242-4242-4242-4242` does not).
// Segments are read lazily and at most `limit` digits of them are held, so a megabyte-long run costs linear time
// and constant memory.

interface Group {
  /** The first digit, or the "(" of a parenthesised group. */
  start: number;
  end: number;
  digits: number;
  /** The separator before the group (0 for none). */
  sep: number;
  paren: boolean;
}

interface Segment {
  start: number;
  end: number;
  digits: number;
  /** Empty once the segment has more digits than any candidate may have. */
  groups: Group[];
  tooLong: boolean;
  /** The run's first segment: it starts the run (and holds its "+"). */
  first: boolean;
}

/** What a detector built on digit runs accepts. */
interface RunSpec {
  detector: DetectorName;
  /** Phones: "(digits)" groups, dots as separators, a leading "+". */
  phone: boolean;
  /** Fewest and most digits in a candidate (with a "+": `plusMinDigits`). */
  minDigits: number;
  plusMinDigits: number;
  limit: number;
  /** Most groups in a candidate without a "+". */
  maxGroups: number;
  /** What joins a candidate to digits before or after it, so that it is not one (see {@link joinedBefore}). */
  joiner(c: number): boolean;
  /** Whether a candidate may start with this group (a cheap test before any candidate is built). */
  opens(text: string, group: Group, plus: boolean): boolean;
  /** Judges a candidate: its groups in text order, whether a "+" precedes them, its digits; a kind or undefined. */
  shape(text: string, groups: readonly Group[], plus: boolean, digits: number): string | undefined;
}

/**
 * Scans the digit run starting at `at` (a digit, or for phones a "+" or "(" before one) and pushes the candidates
 * the spec accepts: from each segment, the longest acceptable sequence of whole segments, then on after it.
 * Returns where the run ended.
 */
function scanDigitRun(text: string, at: number, spec: RunSpec, out: Finding[]): number {
  const { phone, limit } = spec;
  let pos = at;
  const plus = phone && text.charCodeAt(pos) === PLUS;
  if (plus) pos++;
  let first = true;
  let ended = false;
  let runEnd = at;

  const nextSegment = (): Segment | null => {
    if (ended) return null;
    const segment: Segment = { start: first ? at : pos, end: pos, digits: 0, groups: [], tooLong: false, first };
    // Segments after the first follow a space.
    let sep = first ? 0 : SPACE;
    for (;;) {
      const groupStart = pos;
      let paren = false;
      let digits: number;
      if (phone && text.charCodeAt(pos) === LPAREN) {
        let j = pos + 1;
        while (j - pos <= 5 && isDigit(text.charCodeAt(j))) j++;
        if (j === pos + 1 || text.charCodeAt(j) !== RPAREN) break;
        paren = true;
        digits = j - pos - 1;
        pos = j + 1;
      } else if (isDigit(text.charCodeAt(pos))) {
        let j = pos + 1;
        while (j - pos < 32 && isDigit(text.charCodeAt(j))) j++;
        if (j - pos === 32) {
          // A long run: the regex engine skips it an order of magnitude faster than a loop.
          DIGITS.lastIndex = j;
          j += DIGITS.exec(text)?.[0].length ?? 0;
        }
        digits = j - pos;
        pos = j;
      } else {
        break;
      }
      segment.digits += digits;
      segment.end = pos;
      runEnd = pos;
      if (segment.digits > limit) {
        segment.tooLong = true;
        segment.groups.length = 0;
      } else {
        segment.groups.push({ start: groupStart, end: pos, digits, sep, paren });
      }
      const c = text.charCodeAt(pos);
      const next = text.charCodeAt(pos + 1);
      const continues = isDigit(next) || (phone && next === LPAREN);
      if (continues && c === SPACE) {
        pos++;
        first = false;
        return segment;
      }
      if (continues && (c === DASH || (phone && c === DOT))) {
        sep = c;
        pos++;
      } else if (!(paren && isDigit(c))) {
        break;
      } else {
        sep = 0;
      }
    }
    ended = true;
    first = false;
    return segment.end > segment.start ? segment : null;
  };

  const queue: Segment[] = [];
  /** Index of the queue's head; digits held from there on. */
  let live = 0;
  let queued = 0;
  let done = false;
  for (;;) {
    // Enough segments to cover every candidate starting at the head: more than `limit` digits, or the run's end.
    while (!done && queued <= limit) {
      const segment = nextSegment();
      if (segment === null) done = true;
      else {
        queue.push(segment);
        queued += segment.digits;
      }
    }
    if (live >= 64) {
      // The queue holds at most `limit` + 1 live segments; drop the dead ones now and then (shift() each time is slow).
      queue.splice(0, live);
      live = 0;
    }
    const head = queue[live];
    if (head === undefined) break;
    let best = -1;
    let kind: string | undefined;
    const headPlus = plus && head.first;
    if (!head.tooLong && spec.opens(text, head.groups[0] as Group, headPlus) && !(head.first && joinedBefore(text, head.start, spec.joiner))) {
      // Only a "+" number may have more groups than a national shape.
      const cap = headPlus ? limit : spec.maxGroups;
      const min = headPlus ? spec.plusMinDigits : spec.minDigits;
      let digits = 0;
      let count = 0;
      for (let j = live; j < queue.length; j++) {
        const segment = queue[j] as Segment;
        digits += segment.digits;
        count += segment.groups.length;
        if (digits > limit || count > cap) break;
        if (digits < min || (done && j === queue.length - 1 && joinedAfter(text, segment.end, spec.joiner))) continue;
        const groups = queue.slice(live, j + 1).flatMap((s) => s.groups);
        const accepted = spec.shape(text, groups, headPlus, digits);
        if (accepted !== undefined) {
          best = j;
          kind = accepted;
        }
      }
    }
    if (best >= 0) out.push({ detector: spec.detector, start: head.start, end: (queue[best] as Segment).end, kind });
    const drop = best >= 0 ? best + 1 : live + 1;
    for (; live < drop; live++) queued -= (queue[live] as Segment).digits;
  }
  return runEnd;
}

const DIGITS = /\d*/y;

/** The first and second digits of a group (after its parenthesis), -1 when there is none. */
function digitAt(text: string, group: Group, index: number): number {
  const i = group.start + (group.paren ? 1 : 0) + index;
  return index < group.digits ? text.charCodeAt(i) - 48 : -1;
}

// ---------------------------------------------------------------------------------------------------------------
// card: 13-19 digits, bare or grouped by single spaces or dashes (4 digits first, groups of 4-6, a last group of
// 1-6, one separator throughout), a known scheme's prefix and length, Luhn-valid. A `:` or `/` and digits after it
// (a CVC, an expiry) do not stop a card being one: `4111111111111111:123` holds the card `4111111111111111`.

/**
 * Where a digit run holds 13 digits in a row (single separators between): the leftmost match is the run's start.
 * Bounded, so the regex's backtrack stack stays small; the run itself is read in code.
 */
const CARD_RUN = /\d(?:[- ]?\d){12}/g;

function scanCard(text: string, out: Finding[]): void {
  CARD_RUN.lastIndex = 0;
  for (let m = CARD_RUN.exec(text); m !== null; m = CARD_RUN.exec(text)) {
    CARD_RUN.lastIndex = Math.max(CARD_RUN.lastIndex, scanDigitRun(text, m.index, CARD, out));
  }
}

/** A card is printed as one block of 13-19 digits or 4 digits then groups of 4-6 and a last group of 1-6. */
const CARD: RunSpec = {
  detector: "card",
  phone: false,
  minDigits: 13,
  plusMinDigits: 13,
  limit: 19,
  maxGroups: 5,
  joiner: isCardJoiner,
  opens: (_text, group) => group.digits === 4 || group.digits >= 13,
  shape: cardShape,
};

function cardShape(text: string, groups: readonly Group[], _plus: boolean, digits: number): string | undefined {
  if (digits < 13) return undefined;
  if (groups.length > 1) {
    const separator = (groups[1] as Group).sep;
    if ((groups[0] as Group).digits !== 4) return undefined;
    for (let g = 1; g < groups.length; g++) {
      const { sep, digits: size } = groups[g] as Group;
      if (sep !== separator || size > 6 || (g < groups.length - 1 && size < 4)) return undefined;
    }
  }
  let number = "";
  for (const group of groups) number += text.slice(group.start, group.end);
  return cardValid(number);
}

// ---------------------------------------------------------------------------------------------------------------
// phone: `+` and 8-15 digits in any grouping (spaces, dashes, dots, a parenthesised group), or a national shape:
// NANP `(415) 555-0132` / `415-555-0132` / `415.555.0132` / `1 415 555 0132`, French `01 23 45 67 89`, or a trunk-0
// number (UK `020 7946 0958`, DE `030 123456`): 2-3 groups, 9-12 digits. Bare digits only after a context word
// (phone, tel, mobile, cell, fax, call, …) at most 20 characters before them on the same line: NANP `4155550132` /
// `14155550132`, trunk-0 `02079460958`. Without one, bare digits are order numbers, timestamps, ids — not phones.

/**
 * Where a phone run may begin: not inside a word or number, and 8 digits follow with at most two of ` .()-` between
 * neighbours (every phone has 8; the run's own joins are a subset, so its start matches first). Bounded and
 * unambiguous; the run itself is read in code.
 */
const PHONE_ANCHOR = /(?<![0-9A-Za-z_])[+(]?\d(?:[ .()-]{0,2}\d){7}/g;

const PHONE: RunSpec = {
  detector: "phone",
  phone: true,
  minDigits: 9,
  plusMinDigits: 8,
  limit: 15,
  maxGroups: 5,
  joiner: isJoiner,
  // "+", a NANP area code (or its leading 1), a trunk 0, or bare digits (judged with their context).
  opens: (text, group, plus) =>
    plus || group.digits === 3 || group.digits === 10 || group.digits === 11 || digitAt(text, group, 0) === (group.digits === 1 ? 1 : 0),
  shape: phoneShape,
};

/** Words that make bare digits after them a phone number (`phone: 4155550132`, `mobileNumber`, `Tel.`, `call`). */
const PHONE_WORDS = /telephones?|cellphones?|phones?|tel|ph|mobiles?|cells?|fax|calls?|called|calling|sms/gi;

function scanPhone(text: string, out: Finding[]): void {
  PHONE_ANCHOR.lastIndex = 0;
  for (let m = PHONE_ANCHOR.exec(text); m !== null; m = PHONE_ANCHOR.exec(text)) {
    PHONE_ANCHOR.lastIndex = Math.max(m.index + 1, scanDigitRun(text, m.index, PHONE, out));
  }
}

function spaceDashDot(c: number | undefined): boolean {
  return c === SPACE || c === DASH || c === DOT;
}

/** The kind of phone the groups form ("e164", "nanp", "national"), or undefined when they are not one. */
function phoneShape(text: string, groups: readonly Group[], plus: boolean, digits: number): string | undefined {
  const g = (i: number) => groups[i] as Group;
  const n = groups.length;
  if (plus) return digits >= 8 && digitAt(text, g(0), 0) !== 0 ? "e164" : undefined;

  // Bare digits, after a context word: NANP (area code and exchange 2-9, an optional leading 1) or trunk 0.
  if (n === 1) {
    if (g(0).paren || (digits !== 10 && digits !== 11)) return undefined;
    const a = digits === 11 && digitAt(text, g(0), 0) === 1 ? 1 : 0;
    const nanp = digits - a === 10 && digitAt(text, g(0), a) >= 2 && digitAt(text, g(0), a + 3) >= 2;
    const trunk = digitAt(text, g(0), 0) === 0 && digitAt(text, g(0), 1) > 0;
    if (!nanp && !trunk) return undefined;
    return contextBefore(text, g(0).start, PHONE_WORDS) ? (nanp ? "nanp" : "national") : undefined;
  }

  // NANP, with an optional leading "1": area code and exchange start with 2-9.
  const a = n === 4 && g(0).digits === 1 && !g(0).paren && digitAt(text, g(0), 0) === 1 && spaceDashDot(g(1).sep) ? 1 : 0;
  if (n - a === 3 && g(a).digits === 3 && g(a + 1).digits === 3 && g(a + 2).digits === 4 && !g(a + 1).paren && !g(a + 2).paren) {
    if (digitAt(text, g(a), 0) < 2 || digitAt(text, g(a + 1), 0) < 2) return undefined;
    const separators = g(a).paren
      ? (g(a + 1).sep === 0 || g(a + 1).sep === SPACE) && spaceDashDot(g(a + 2).sep)
      : g(a + 1).sep === g(a + 2).sep && spaceDashDot(g(a + 1).sep);
    return separators ? "nanp" : undefined;
  }

  // French: five pairs, 0 then 1-9, one separator.
  if (n === 5 && digits === 10 && digitAt(text, g(0), 0) === 0 && digitAt(text, g(0), 1) > 0 && spaceDashDot(g(1).sep)) {
    if (groups.every((group, i) => group.digits === 2 && !group.paren && (i === 0 || group.sep === g(1).sep))) return "national";
    return undefined;
  }

  // Trunk 0 (UK, DE, …): an area code of 3-5 digits starting 0[1-9], then 1-2 groups of 3-8 digits, 9-12 in all,
  // separated by spaces or dashes (a parenthesised area code by a space or nothing).
  if (n < 2 || n > 3 || digits < 9 || digits > 12) return undefined;
  if (digitAt(text, g(0), 0) !== 0 || digitAt(text, g(0), 1) <= 0 || g(0).digits < 3 || g(0).digits > 5) return undefined;
  for (let i = 1; i < n; i++) {
    const { paren, digits: size, sep } = g(i);
    if (paren || size < 3 || size > 8) return undefined;
    const fine = g(0).paren ? (i === 1 ? sep === 0 || sep === SPACE : sep === SPACE) : (sep === SPACE || sep === DASH) && sep === g(1).sep;
    if (!fine) return undefined;
  }
  return "national";
}

// ---------------------------------------------------------------------------------------------------------------
// email: a local part of letters (of any script), digits and `._+-` (leading dots dropped), `@`, a domain of at
// least two labels (letters of any script, digits, `-`) ending in a TLD: 2+ ASCII letters, `xn--…`, or letters of
// another script (`jane@bücher.de`, `jane@例え.jp`, `jane@пример.рф`). A local part over 64 characters is still an
// email: the whole run is taken (fail closed). In text without spaces between words, the local part does not run
// back from Latin letters into Han, kana, Hangul, Thai…, nor an ASCII TLD on into them (`連絡はjane@example.comまで`
// holds `jane@example.com`). The userinfo of a URL (`https://user:pass@host/`) is not an email (its password is a
// secret); `mailto:jane@example.com` and `?u=jane@example.com` are.

function isLocalChar(c: number): boolean {
  return isAlnum(c) || c === DOT || c === 0x5f || c === PLUS || c === DASH;
}

/** RFC 3986 userinfo: unreserved, sub-delims, ":" and "%"; RFC 3987 adds every non-ASCII character. */
function isUserinfoChar(c: number): boolean {
  return isAlnum(c) || c === DASH || c === DOT || c === 0x5f || c === 0x7e || c === COLON || c === PERCENT ||
    c === 0x21 || c === 0x24 || c === 0x26 || c === 0x27 || c === LPAREN || c === RPAREN || c === 0x2a || c === PLUS ||
    c === 0x2c || c === 0x3b || c === 0x3d || c >= 0x80;
}

/** Whether the local part starting at `start` is the userinfo of a URL: `scheme://` then userinfo characters. */
function inUrlAuthority(text: string, start: number): boolean {
  let k = start;
  while (k > 0 && start - k < 256 && isUserinfoChar(text.charCodeAt(k - 1))) k--;
  return k >= 4 && text.charCodeAt(k - 1) === SLASH && text.charCodeAt(k - 2) === SLASH && text.charCodeAt(k - 3) === COLON &&
    isAlnum(text.charCodeAt(k - 4));
}

/** Letters, marks and digits of any script; letters and marks; scripts written without spaces between words. */
const INTL_WORD = /[\p{L}\p{M}\p{N}]/uy;
const INTL_LETTER = /[\p{L}\p{M}]/uy;
const UNSPACED = /[\p{sc=Han}\p{sc=Hiragana}\p{sc=Katakana}\p{sc=Hangul}\p{sc=Thai}\p{sc=Lao}\p{sc=Khmer}\p{sc=Myanmar}]/uy;

/** Whether the sticky regex matches at `i` (a code point's start). */
function matchesAt(re: RegExp, text: string, i: number): boolean {
  re.lastIndex = i;
  return re.test(text);
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}
function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

/** The size in UTF-16 units (1 or 2) of the non-ASCII letter, mark or digit starting at `i`, or 0 when none is. */
function intlWordAt(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c < 0x80 || !matchesAt(INTL_WORD, text, i)) return 0;
  return isHighSurrogate(c) && isLowSurrogate(text.charCodeAt(i + 1)) ? 2 : 1;
}

/**
 * Where the local part ending at `at` starts: back over local characters and letters of any script as far as they
 * go (no farther than `floor`), but not from a Latin letter back into a script written without spaces.
 */
function localStart(text: string, at: number, floor: number): number {
  let start = at;
  /** Whether the letters taken so far are in a script without spaces (undefined before the first letter). */
  let unspaced: boolean | undefined;
  while (start > floor) {
    const c = text.charCodeAt(start - 1);
    if (c < 0x80) {
      if (!isLocalChar(c)) break;
      if (isLetter(c)) unspaced = false;
      start--;
      continue;
    }
    const i = isLowSurrogate(c) && start - 2 >= floor && isHighSurrogate(text.charCodeAt(start - 2)) ? start - 2 : start - 1;
    if (!matchesAt(INTL_WORD, text, i)) break;
    const u = matchesAt(UNSPACED, text, i);
    if (u && unspaced === false) break;
    unspaced = u;
    start = i;
  }
  return start;
}

function scanEmail(text: string, out: Finding[]): void {
  // Where the last email ended: the next one's local part starts after it. Every local part is read back to the
  // previous "@" at most, so each character is read back once.
  let floor = 0;
  for (let at = text.indexOf("@"); at !== -1; ) {
    const end = emailDomainEnd(text, at + 1);
    let start = end > 0 ? localStart(text, at, floor) : at;
    while (start < at && text.charCodeAt(start) === DOT) start++;
    if (start < at && !inUrlAuthority(text, start)) {
      out.push({ detector: "email", start, end });
      floor = end;
      at = text.indexOf("@", end);
    } else {
      at = text.indexOf("@", at + 1);
    }
  }
}

/**
 * The end of the longest valid domain starting at `from` (labels of 1-63, 253 at most, a TLD of ASCII letters, of
 * another script's letters, or `xn--`), or -1.
 */
function emailDomainEnd(text: string, from: number): number {
  let best = -1;
  let labels = 0;
  let pos = from;
  while (pos - from < 254) {
    const labelStart = pos;
    /** The label so far is all ASCII letters; all letters of other scripts. */
    let ascii = true;
    let intl = true;
    /** Where an all-ASCII-letter start of the label runs into a script without spaces (`comまで`), or -1. */
    let asciiEnd = -1;
    while (pos < text.length && pos - labelStart < 64) {
      const c = text.charCodeAt(pos);
      if (c < 0x80) {
        if (!isAlnum(c) && c !== DASH) break;
        if (!isLetter(c)) ascii = false;
        intl = false;
        pos++;
      } else {
        const size = intlWordAt(text, pos);
        if (size === 0) break;
        if (ascii && pos > labelStart && asciiEnd < 0 && matchesAt(UNSPACED, text, pos)) asciiEnd = pos;
        ascii = false;
        if (!matchesAt(INTL_LETTER, text, pos)) intl = false;
        pos += size;
      }
    }
    const length = pos - labelStart;
    if (length === 0 || length > 63) break;
    if (text.charCodeAt(labelStart) === DASH || text.charCodeAt(pos - 1) === DASH) break;
    labels++;
    const tld = length >= 2 && (ascii || intl || text.startsWith("xn--", labelStart));
    if (labels >= 2 && tld && pos - from <= 253 && !isWord(text.charCodeAt(pos))) {
      best = pos;
    } else if (labels >= 2 && asciiEnd - labelStart >= 2 && asciiEnd - from <= 253) {
      // An ASCII TLD run into the text after it: the domain ends with the TLD.
      best = asciiEnd;
      break;
    }
    if (text.charCodeAt(pos) !== DOT) break;
    pos++;
  }
  return best;
}

// ---------------------------------------------------------------------------------------------------------------
// iban: two capital letters, two check digits, then the country's BBAN length of capitals and digits, optionally
// with a single space after every 4 characters; the country length, BBAN format and mod-97 check must hold.

const IBAN_ANCHOR = /(?<![0-9A-Za-z])[A-Z]{2}\d{2}/g;

function scanIban(text: string, out: Finding[]): void {
  IBAN_ANCHOR.lastIndex = 0;
  for (let m = IBAN_ANCHOR.exec(text); m !== null; m = IBAN_ANCHOR.exec(text)) {
    const start = m.index;
    const length = ibanLength(m[0].slice(0, 2));
    if (length === undefined) continue;
    let compact = "";
    let pos = start;
    while (compact.length < length && pos < text.length) {
      const c = text.charCodeAt(pos);
      if (isDigit(c) || (c >= 65 && c <= 90)) {
        compact += text[pos];
        pos++;
      } else if (c === SPACE && compact.length % 4 === 0 && compact.length > 0 && isAlnum(text.charCodeAt(pos + 1))) {
        pos++;
      } else {
        break;
      }
    }
    if (compact.length !== length || isAlnum(text.charCodeAt(pos)) || !ibanValid(compact)) continue;
    out.push({ detector: "iban", start, end: pos });
    IBAN_ANCHOR.lastIndex = pos;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// ip: IPv4 dotted quads (0-255, no leading zeros) not inside a longer dotted run; IPv6 in full, compressed and
// IPv4-suffixed forms with an optional `%zone`, validated by ipaddr.js. An IPv6 candidate needs two colons and a
// decimal digit, so times (`12:30:45`), MAC addresses and `::name` scopes in code are not addresses.

const IPV4 = /(?<![0-9A-Za-z_.])(?:\d{1,3}\.){3}\d{1,3}(?![0-9A-Za-z_]|\.[0-9A-Za-z_])/g;

function scanIp(text: string, out: Finding[]): void {
  IPV4.lastIndex = 0;
  for (let m = IPV4.exec(text); m !== null; m = IPV4.exec(text)) {
    if (ipaddr.IPv4.isValidFourPartDecimal(m[0])) out.push({ detector: "ip", start: m.index, end: m.index + m[0].length, kind: "ipv4" });
  }
  scanIpv6(text, out);
}

function isIpv6Char(c: number): boolean {
  return isHex(c) || c === COLON || c === DOT;
}

/** Longest textual IPv6 address: 8 groups with an IPv4 suffix (45 characters). */
const IPV6_MAX = 45;

function scanIpv6(text: string, out: Finding[]): void {
  let floor = 0;
  for (let colon = text.indexOf(":"); colon !== -1; ) {
    // The maximal run of hex digits, colons and dots around the colon; runs never overlap, so each character is
    // read at most twice.
    let start = colon;
    while (start > floor && isIpv6Char(text.charCodeAt(start - 1))) start--;
    let end = colon;
    while (end < text.length && isIpv6Char(text.charCodeAt(end))) end++;
    floor = end;
    colon = text.indexOf(":", end);

    let last = end;
    while (last > start && text.charCodeAt(last - 1) === DOT) last--;
    if (text.charCodeAt(last - 1) === COLON && text.charCodeAt(last - 2) !== COLON) last--;
    let stop = last;
    if (last === end && text.charCodeAt(end) === PERCENT) {
      let z = end + 1;
      while (z - end <= 16 && isAlnum(text.charCodeAt(z))) z++;
      if (z > end + 1 && !isWord(text.charCodeAt(z))) stop = z;
    }
    if (last - start > IPV6_MAX || last - start < 3) continue;
    if (joinedBefore(text, start) || (stop === end && isWord(text.charCodeAt(end))) || (stop === last && last === end && text.charCodeAt(end) === PERCENT)) continue;
    const candidate = text.slice(start, stop);
    let colons = 0;
    let decimal = false;
    for (let i = start; i < last; i++) {
      const c = text.charCodeAt(i);
      if (c === COLON) colons++;
      else if (isDigit(c)) decimal = true;
    }
    if (colons < 2 || !decimal || !ipaddr.IPv6.isValid(candidate)) continue;
    out.push({ detector: "ip", start, end: stop, kind: "ipv6" });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// secret: credentials by their published shapes, one global regex with an alternative per kind; a JWT's header
// must decode to a JSON object with "alg"; a PEM private key is the whole block through its END line. Then the
// credentials known by their context, where the finding is the value alone: a token after `Bearer` (or after
// `Authorization: Basic` / `Token`), a value assigned to a password, secret, token or API key (`password=…` in a
// query string, `DB_PASSWORD=…`, `"apiKey": "…"`, `client_secret: …`), and the password of a URL
// (`postgres://user:pw@host`). A shaped credential inside such a context keeps its own kind.

const SECRET = new RegExp(
  [
    String.raw`(?<![0-9A-Za-z])(?<aws>(?:AKIA|ASIA)[0-9A-Z]{16})(?![0-9A-Za-z])`,
    String.raw`(?<![0-9A-Za-z_])(?<github>gh[pousr]_[0-9A-Za-z]{36,251}|github_pat_[0-9A-Za-z_]{82,244})(?![0-9A-Za-z_])`,
    String.raw`(?<![0-9A-Za-z_-])(?<slack>xox[abprs]-[0-9A-Za-z-]{10,250})(?![0-9A-Za-z_-])`,
    String.raw`(?<![0-9A-Za-z_])(?<stripe>[rs]k_(?:live|test)_[0-9A-Za-z]{10,247})(?![0-9A-Za-z_])`,
    String.raw`(?<![0-9A-Za-z_-])(?<gateway>gwc?_[0-9A-Za-z_-]{43})(?![0-9A-Za-z_-])`,
    // Anthropic `sk-ant-api03-…`; OpenAI project, service-account and admin keys, and the older `sk-` + 48.
    String.raw`(?<![0-9A-Za-z_-])(?<anthropic>sk-ant-[0-9A-Za-z_-]{20,})`,
    String.raw`(?<![0-9A-Za-z_-])(?<openai>sk-(?:proj|svcacct|admin|None)-[0-9A-Za-z_-]{20,}|sk-[0-9A-Za-z]{32,}(?![_-]))`,
    String.raw`(?<![0-9A-Za-z_-])(?<google>AIza[0-9A-Za-z_-]{35})(?![0-9A-Za-z_-])`,
    String.raw`(?<![0-9A-Za-z_-])(?<gitlab>glpat-[0-9A-Za-z_-]{20,}(?:\.[0-9A-Za-z_-]+){0,4})`,
    String.raw`(?<![0-9A-Za-z_])(?<npm>npm_[0-9A-Za-z]{36})(?![0-9A-Za-z_])`,
    String.raw`(?<![0-9A-Za-z_.-])(?<jwt>e[0-9A-Za-z_-]{7,4096}\.[0-9A-Za-z_-]{2,65536}\.[0-9A-Za-z_-]{0,8192})(?![0-9A-Za-z_-]|\.[0-9A-Za-z_-])`,
    String.raw`(?<pem>-----BEGIN (?:[0-9A-Z]{1,20} ){0,3}PRIVATE KEY(?: BLOCK)?-----)`,
  ].join("|"),
  "g",
);
const PEM_END = /-----END (?:[0-9A-Z]{1,20} ){0,3}PRIVATE KEY(?: BLOCK)?-----/g;
/**
 * How far a private key without its END line runs: whole lines of base64 (or `Proc-Type: …` headers) after it. Each
 * iteration starts at a line break, so the repetition cannot backtrack across lines.
 */
const PEM_BODY = /(?:[ \t]*\r?\n[ \t]*(?:[0-9A-Za-z+/=]{1,256}|[A-Za-z-]{1,32}: [^\r\n]{0,256})(?=[ \t]*(?:\r?\n|$))){0,4096}/y;
/** The 40-character secret access key after its name (`aws_secret_access_key = …`, `"SecretAccessKey": "…"`). */
const AWS_SECRET =
  /(?<![0-9A-Za-z])(?:(?:aws_?)?secret_?access_?key|aws_?secret_?key)["']?[ \t]{0,8}(?:=>|[:=])[ \t]{0,8}["']?([0-9A-Za-z/+]{40})(?![0-9A-Za-z/+=])/gi;

/** Kinds whose first characters are the secret itself (not a fixed prefix): their partial form shows none. */
const OPAQUE_KINDS: ReadonlySet<string> = new Set(["url-password", "assigned-secret", "basic-auth"]);

function scanSecret(text: string, out: Finding[]): void {
  const shaped: Finding[] = [];
  SECRET.lastIndex = 0;
  let noEndFrom = Infinity;
  for (let m = SECRET.exec(text); m !== null; m = SECRET.exec(text)) {
    const start = m.index;
    let end = start + m[0].length;
    const groups = m.groups ?? {};
    let kind: string;
    if (groups.aws !== undefined) kind = "aws-access-key";
    else if (groups.github !== undefined) kind = "github-token";
    else if (groups.slack !== undefined) kind = "slack-token";
    else if (groups.stripe !== undefined) kind = "stripe-key";
    else if (groups.gateway !== undefined) kind = groups.gateway.startsWith("gwc_") ? "gateway-connector-token" : "gateway-api-key";
    else if (groups.anthropic !== undefined) kind = "anthropic-key";
    else if (groups.openai !== undefined) kind = "openai-key";
    else if (groups.google !== undefined) kind = "google-api-key";
    else if (groups.gitlab !== undefined) kind = "gitlab-token";
    else if (groups.npm !== undefined) kind = "npm-token";
    else if (groups.jwt !== undefined) {
      if (!jwtHeader(groups.jwt.slice(0, groups.jwt.indexOf(".")))) {
        SECRET.lastIndex = start + 1;
        continue;
      }
      kind = "jwt";
    } else {
      kind = "private-key";
      // Through the first END line after it; without one (a truncated key), through the base64 body that follows.
      // Once a search found no END line, none after it can: remembering that keeps many BEGIN lines linear.
      PEM_END.lastIndex = end;
      const close = end < noEndFrom ? PEM_END.exec(text) : null;
      if (close !== null) {
        end = close.index + close[0].length;
      } else {
        noEndFrom = Math.min(noEndFrom, end);
        PEM_BODY.lastIndex = end;
        end += PEM_BODY.exec(text)?.[0].length ?? 0;
      }
      SECRET.lastIndex = end;
    }
    shaped.push({ detector: "secret", start, end, kind });
  }
  AWS_SECRET.lastIndex = 0;
  for (let m = AWS_SECRET.exec(text); m !== null; m = AWS_SECRET.exec(text)) {
    const end = m.index + m[0].length;
    shaped.push({ detector: "secret", start: end - 40, end, kind: "aws-secret-key" });
  }
  for (const finding of shaped) out.push(finding);

  // The contextual kinds yield to a shaped credential they overlap (`token: ghp_…` is a github-token).
  shaped.sort((a, b) => a.start - b.start);
  const covered: Finding[] = [];
  for (const finding of shaped) {
    const last = covered[covered.length - 1];
    if (last !== undefined && finding.start < last.end) last.end = Math.max(last.end, finding.end);
    else covered.push({ ...finding });
  }
  const push = (start: number, end: number, kind: string) => {
    if (end > start && !overlapsAny(covered, start, end)) out.push({ detector: "secret", start, end, kind });
  };
  scanAuthorization(text, push);
  scanAssignments(text, push);
  scanUrlPasswords(text, push);
}

/** A JWS header: base64url of a JSON object with an "alg" string. */
function jwtHeader(segment: string): boolean {
  if (segment.length % 4 === 1) return false;
  const base64 = segment.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (segment.length % 4)) % 4);
  try {
    const header: unknown = JSON.parse(atob(base64));
    return typeof header === "object" && header !== null && !Array.isArray(header) && typeof (header as { alg?: unknown }).alg === "string";
  } catch {
    return false;
  }
}

type Push = (start: number, end: number, kind: string) => void;

/**
 * `Bearer <token>` (RFC 6750 b64token), anywhere; after `Authorization:` also `Basic` and `Token` credentials. The
 * token runs to its last character (no bound, no backtracking); a trailing "." is the sentence's.
 */
const AUTHORIZATION =
  /(?<![0-9A-Za-z_-])(?<auth>authorization["']?[ \t]{0,8}[:=][ \t]{0,8}["']?)?(?<scheme>bearer|basic|token)[ \t]{1,8}(?<token>[0-9A-Za-z._~+/-]+=*)/gi;
/** Fewest characters of a token after `Bearer` alone (opaque tokens are long; prose is not); after `Authorization:`. */
const BEARER_MIN = 20;
const AUTHORIZATION_MIN = 8;

function scanAuthorization(text: string, push: Push): void {
  AUTHORIZATION.lastIndex = 0;
  for (let m = AUTHORIZATION.exec(text); m !== null; m = AUTHORIZATION.exec(text)) {
    const groups = m.groups ?? {};
    const token = groups.token ?? "";
    const end = m.index + m[0].length;
    const start = end - token.length;
    let stop = end;
    while (stop > start && text.charCodeAt(stop - 1) === DOT) stop--;
    const scheme = (groups.scheme ?? "").toLowerCase();
    const auth = groups.auth !== undefined;
    if (!auth && scheme !== "bearer") {
      // `basic …` or `token …` in prose: not a credential; look on from the word after it.
      AUTHORIZATION.lastIndex = start;
      continue;
    }
    if (stop - start < (auth ? AUTHORIZATION_MIN : BEARER_MIN)) continue;
    push(start, stop, scheme === "bearer" ? "bearer-token" : scheme === "basic" ? "basic-auth" : "auth-token");
  }
}

/**
 * A secret's name, then `=`, `:`, `=>` or `:=` (not `==`): the value after it is a secret. The name is a word of its
 * own or the end of an identifier (`DB_PASSWORD`, `client_secret`, `x-api-key`, `accessToken`), checked in code.
 */
const ASSIGNMENT =
  /(?:pass(?:word|wd|phrase)(?:[_-]?(?:confirm(?:ation)?|again|repeat|hash|digest|[0-9]))?|secret(?:[_-]?key)?|token|api[_-]?key|access[_-]?key|private[_-]?key)(?:\\?["'])?[ \t]{0,8}(?:=>|:=|[:=](?!=))[ \t]{0,8}/gi;
/** Values that hold no secret: nothing, null-likes and booleans, masks, placeholders. */
const NOT_A_SECRET = /^(?:null|nil|none|true|false|undefined|\*+|x{3,}|•+|\[redacted\]|<redacted>|redacted)$/i;
/** A token name that pages rather than authenticates (`nextPageToken`, `page_token`). */
const PAGE_TOKEN = /page[_-]?$/i;
/** How far a quoted value is looked for its closing quote. */
const QUOTED_MAX = 4096;

function scanAssignments(text: string, push: Push): void {
  ASSIGNMENT.lastIndex = 0;
  for (let m = ASSIGNMENT.exec(text); m !== null; m = ASSIGNMENT.exec(text)) {
    const after = m.index + m[0].length;
    if (!wordStartsAt(text, m.index)) {
      ASSIGNMENT.lastIndex = m.index + 1;
      continue;
    }
    const name = m[0].toLowerCase();
    if (name.startsWith("token") && PAGE_TOKEN.test(text.slice(Math.max(0, m.index - 5), m.index))) continue;
    const { start, end } = assignedValue(text, after);
    ASSIGNMENT.lastIndex = Math.max(after, end);
    const first = text.charCodeAt(start);
    if (end === start || first === 0x7b || first === 0x5b || text.startsWith("${", start) || text.startsWith("$(", start)) continue;
    if (NOT_A_SECRET.test(text.slice(start, end))) continue;
    push(start, end, "assigned-secret");
  }
}

const BACKSLASH = 0x5c;

/** Ends an unquoted value: whitespace, quotes, a query string's `&`, a list's `,` `;`, and `<` `>` `}` `]`. */
function endsValue(c: number): boolean {
  return c <= SPACE || c === 0x22 || c === 0x27 || c === 0x60 || c === 0x26 || c === 0x2c || c === 0x3b || c === 0x3c ||
    c === 0x3e || c === 0x7d || c === 0x5d;
}

function isQuote(c: number): boolean {
  return c === 0x22 || c === 0x27 || c === 0x60;
}

/**
 * The value starting at `at`: a quoted string's contents (`"…"`, `'…'`, or JSON-escaped `\"…\"`) when it closes on
 * the same line within {@link QUOTED_MAX}; else the run up to whitespace or a delimiter (an unclosed quote still
 * yields what follows it).
 */
function assignedValue(text: string, at: number): { start: number; end: number } {
  let start = at;
  let quote = 0;
  let escaped = false;
  if (isQuote(text.charCodeAt(at))) {
    quote = text.charCodeAt(at);
    start = at + 1;
  } else if (text.charCodeAt(at) === BACKSLASH && isQuote(text.charCodeAt(at + 1))) {
    quote = text.charCodeAt(at + 1);
    escaped = true;
    start = at + 2;
  }
  if (quote !== 0) {
    for (let i = start; i < text.length && i - start <= QUOTED_MAX; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x0a || c === 0x0d) break;
      if (escaped) {
        if (c === BACKSLASH && text.charCodeAt(i + 1) === quote) return { start, end: i };
      } else if (c === BACKSLASH) {
        i++;
      } else if (c === quote) {
        return { start, end: i };
      }
    }
  }
  let end = start;
  while (end < text.length && !endsValue(text.charCodeAt(end)) && !(text.charCodeAt(end) === BACKSLASH && isQuote(text.charCodeAt(end + 1)))) end++;
  return { start, end };
}

/** Ends a URL's authority: a path, query or fragment, whitespace, quotes, `<` `>` and a backslash. */
function endsAuthority(c: number): boolean {
  return c === SLASH || c === 0x3f || c === 0x23 || c <= SPACE || isQuote(c) || c === 0x3c || c === 0x3e || c === BACKSLASH;
}

function isSchemeChar(c: number): boolean {
  return isAlnum(c) || c === PLUS || c === DASH || c === DOT;
}

/** Longest authority read; a longer one is not a URL anyone wrote. */
const AUTHORITY_MAX = 2048;

/**
 * The password in a URL's userinfo: `scheme://user:password@host` — after the first ":" of the userinfo, up to its
 * last "@" (as WHATWG URL parsers read `p@ss` in `u:p@ss@host`). Authorities hold no "/", so no two overlap.
 */
function scanUrlPasswords(text: string, push: Push): void {
  for (let i = text.indexOf("://"); i !== -1; i = text.indexOf("://", i + 3)) {
    let k = i;
    while (k > 0 && i - k < 32 && isSchemeChar(text.charCodeAt(k - 1))) k--;
    if (k === i || !isLetter(text.charCodeAt(k))) continue;
    const from = i + 3;
    let at = -1;
    let colon = -1;
    for (let j = from; j < text.length && j - from < AUTHORITY_MAX; j++) {
      const c = text.charCodeAt(j);
      if (endsAuthority(c)) break;
      if (c === 0x40) at = j;
      else if (c === COLON && colon < 0) colon = j;
    }
    if (at > 0 && colon >= 0 && colon < at) push(colon + 1, at, "url-password");
  }
}

const SCANNERS: Readonly<Record<DetectorName, Scanner>> = {
  ssn: scanSsn,
  card: scanCard,
  email: scanEmail,
  phone: scanPhone,
  iban: scanIban,
  ip: scanIp,
  secret: scanSecret,
};
