/**
 * @module PII and secret detectors: where in a text the Social Security numbers, payment cards, emails, phone
 * numbers, IBANs, IP addresses and credentials are, and the partial form a redaction may show of each. Pure (no
 * Node built-ins), so it runs in workerd and in Node; the redaction engine builds on {@link findPii} and
 * {@link partialForm}.
 *
 * Every detector is linear in the text: candidates come from global regexes whose repetitions are bounded or cannot
 * backtrack (no nested ambiguous quantifiers; lookbehinds stop a search from restarting inside a run it has already
 * rejected) or from `indexOf` anchors with bounded scans around them, and every candidate is then validated in code
 * (check digits, number plans, ipaddr.js, ibantools, a JWT header that parses). A candidate is only ever taken whole:
 * digits that are part of a longer digit run (`94242424242424242`, `1-123-45-6789`, `1.2.3.4.5`) are not a match.
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
   * "slack-token", "stripe-key", "jwt", "private-key", "gateway-api-key", "gateway-connector-token").
   */
  kind?: string;
}

/** Who wins a tie (two findings starting at the same offset): lower first. */
const PRIORITY: Readonly<Record<DetectorName, number>> = { secret: 0, card: 1, iban: 2, ssn: 3, email: 4, phone: 5, ip: 6 };

type Scanner = (text: string, out: Finding[]) => void;

/**
 * Non-overlapping findings in text order for the chosen detectors; when two overlap, the earlier-starting wins, ties
 * by the priority secret > card > iban > ssn > email > phone > ip (then the longer).
 */
export function findPii(text: string, detectors: readonly DetectorName[]): Finding[] {
  const found: Finding[] = [];
  for (const name of new Set(detectors)) {
    const scan = SCANNERS[name];
    if (scan === undefined) throw new TypeError(`unknown PII detector: ${String(name)}`);
    scan(text, found);
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
 * The partial form of a match, for redactions that keep a hint: ssn `***-**-6789`; card `**** **** **** 4242` (every
 * digit but the last four masked, separators kept where they were); email `j***@example.com`; phone every digit
 * but the last two masked, separators kept; iban `DE** **** … 3000`; ip `203.0.113.***` / `2001::***`; secret its
 * first four characters and `…`.
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
      return `${match.slice(0, 1)}***@${match.slice(at + 1)}`;
    }
    case "iban": {
      const compact = match.replace(/ /g, "");
      return `${compact.slice(0, 2)}** **** … ${compact.slice(-4)}`;
    }
    case "ip":
      if (finding.kind === "ipv6" || match.includes(":")) return `${match.slice(0, match.indexOf(":"))}::***`;
      return `${match.slice(0, match.lastIndexOf("."))}.***`;
    case "secret":
      return `${match.slice(0, 4)}…`;
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

/** Joins two digit runs into one number: `1.5`, `1-5`, `12:30`, `1/5`. */
function isJoiner(c: number): boolean {
  return c === DOT || c === DASH || c === COLON || c === SLASH;
}

/** The match starting at `start` continues something before it: a word character, or a joiner after a digit. */
function joinedBefore(text: string, start: number): boolean {
  if (start === 0) return false;
  const c = text.charCodeAt(start - 1);
  return isWord(c) || (isJoiner(c) && start >= 2 && isDigit(text.charCodeAt(start - 2)));
}

/** The match ending at `end` goes on after it: a word character, or a joiner before a digit. */
function joinedAfter(text: string, end: number): boolean {
  if (end >= text.length) return false;
  const c = text.charCodeAt(end);
  return isWord(c) || (isJoiner(c) && isDigit(text.charCodeAt(end + 1)));
}

// ---------------------------------------------------------------------------------------------------------------
// ssn: `123-45-6789` or `123 45 6789` (one separator, used twice); nine bare digits only after "SSN" or "social
// security" at most 20 characters before them.

const SSN = /(?<![0-9A-Za-z_])\d{3}(?:([- ])\d{2}\1\d{4}|\d{6})(?![0-9A-Za-z_])/g;
const SSN_CONTEXT = /(?:\bssns?|\bsocial[\s_-]{1,3}security)\b[^\n]{0,20}$/i;

function scanSsn(text: string, out: Finding[]): void {
  SSN.lastIndex = 0;
  for (let m = SSN.exec(text); m !== null; m = SSN.exec(text)) {
    const start = m.index;
    const end = start + m[0].length;
    if (joinedBefore(text, start) || joinedAfter(text, end)) continue;
    const separator = m[1];
    const digits = separator === undefined ? m[0] : m[0].replaceAll(separator, "");
    if (!ssnValid(digits)) continue;
    if (separator === undefined && !SSN_CONTEXT.test(text.slice(Math.max(0, start - 40), start))) continue;
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
    if (!head.tooLong && spec.opens(text, head.groups[0] as Group, headPlus) && !(head.first && joinedBefore(text, head.start))) {
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
        if (digits < min || (done && j === queue.length - 1 && joinedAfter(text, segment.end))) continue;
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
// 1-6, one separator throughout), a known scheme's prefix and length, Luhn-valid.

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
// number (UK `020 7946 0958`, DE `030 123456`): 2-3 groups, 9-12 digits. Never bare digits without `+`, so dates,
// times, versions and long numbers are not phones.

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
  // "+", a NANP area code (or its leading 1), or a trunk 0.
  opens: (text, group, plus) => plus || group.digits === 3 || digitAt(text, group, 0) === (group.digits === 1 ? 1 : 0),
  shape: phoneShape,
};

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
// email: local part of letters, digits and `._+-` (at most 64, leading dots dropped), `@`, a domain of at least two
// DNS labels ending in an alphabetic TLD of 2+ letters. The userinfo of a URL (`https://user:pass@host/`) is not an
// email; `mailto:jane@example.com` and `?u=jane@example.com` are.

function isLocalChar(c: number): boolean {
  return isAlnum(c) || c === DOT || c === 0x5f || c === PLUS || c === DASH;
}

/** RFC 3986 userinfo: unreserved, sub-delims, ":" and "%". */
function isUserinfoChar(c: number): boolean {
  return isAlnum(c) || c === DASH || c === DOT || c === 0x5f || c === 0x7e || c === COLON || c === PERCENT ||
    c === 0x21 || c === 0x24 || c === 0x26 || c === 0x27 || c === LPAREN || c === RPAREN || c === 0x2a || c === PLUS ||
    c === 0x2c || c === 0x3b || c === 0x3d;
}

/** Whether the local part starting at `start` is the userinfo of a URL: `scheme://` then userinfo characters. */
function inUrlAuthority(text: string, start: number): boolean {
  let k = start;
  while (k > 0 && start - k < 256 && isUserinfoChar(text.charCodeAt(k - 1))) k--;
  return k >= 4 && text.charCodeAt(k - 1) === SLASH && text.charCodeAt(k - 2) === SLASH && text.charCodeAt(k - 3) === COLON &&
    isAlnum(text.charCodeAt(k - 4));
}

function scanEmail(text: string, out: Finding[]): void {
  for (let at = text.indexOf("@"); at !== -1; ) {
    const end = emailDomainEnd(text, at + 1);
    let start = at;
    while (start > 0 && at - start < 64 && isLocalChar(text.charCodeAt(start - 1))) start--;
    const tooLong = start > 0 && isLocalChar(text.charCodeAt(start - 1));
    while (start < at && text.charCodeAt(start) === DOT) start++;
    if (end > 0 && !tooLong && start < at && !inUrlAuthority(text, start)) {
      out.push({ detector: "email", start, end });
      at = text.indexOf("@", end);
    } else {
      at = text.indexOf("@", at + 1);
    }
  }
}

/** The end of the longest valid domain starting at `from` (labels of 1-63, 253 at most, alphabetic TLD), or -1. */
function emailDomainEnd(text: string, from: number): number {
  let best = -1;
  let labels = 0;
  let pos = from;
  while (pos - from < 254) {
    const labelStart = pos;
    let letters = true;
    while (pos < text.length && pos - labelStart < 64) {
      const c = text.charCodeAt(pos);
      if (!isAlnum(c) && c !== DASH) break;
      if (!isLetter(c)) letters = false;
      pos++;
    }
    const length = pos - labelStart;
    if (length === 0 || length > 63) break;
    if (text.charCodeAt(labelStart) === DASH || text.charCodeAt(pos - 1) === DASH) break;
    labels++;
    const tld = length >= 2 && (letters || text.startsWith("xn--", labelStart));
    if (labels >= 2 && tld && pos - from <= 253 && !isWord(text.charCodeAt(pos))) best = pos;
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
// must decode to a JSON object with "alg"; a PEM private key is the whole block through its END line.

const SECRET = new RegExp(
  [
    String.raw`(?<![0-9A-Za-z])(?<aws>(?:AKIA|ASIA)[0-9A-Z]{16})(?![0-9A-Za-z])`,
    String.raw`(?<![0-9A-Za-z_])(?<github>gh[pousr]_[0-9A-Za-z]{36,251}|github_pat_[0-9A-Za-z_]{82,244})(?![0-9A-Za-z_])`,
    String.raw`(?<![0-9A-Za-z_-])(?<slack>xox[abprs]-[0-9A-Za-z-]{10,250})(?![0-9A-Za-z_-])`,
    String.raw`(?<![0-9A-Za-z_])(?<stripe>[rs]k_(?:live|test)_[0-9A-Za-z]{10,247})(?![0-9A-Za-z_])`,
    String.raw`(?<![0-9A-Za-z_-])(?<gateway>gwc?_[0-9A-Za-z_-]{43})(?![0-9A-Za-z_-])`,
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

function scanSecret(text: string, out: Finding[]): void {
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
    out.push({ detector: "secret", start, end, kind });
  }
  AWS_SECRET.lastIndex = 0;
  for (let m = AWS_SECRET.exec(text); m !== null; m = AWS_SECRET.exec(text)) {
    const end = m.index + m[0].length;
    out.push({ detector: "secret", start: end - 40, end, kind: "aws-secret-key" });
  }
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

const SCANNERS: Readonly<Record<DetectorName, Scanner>> = {
  ssn: scanSsn,
  card: scanCard,
  email: scanEmail,
  phone: scanPhone,
  iban: scanIban,
  ip: scanIp,
  secret: scanSecret,
};
