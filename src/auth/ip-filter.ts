/**
 * @module IP allow and deny lists (CIDR, IPv4 and IPv6) checked against the client address Cloudflare reports in
 * `CF-Connecting-IP`, per tenant and per key. Pure and platform-free: the config schema validates entries with
 * {@link ipCidrSchema}; the /mcp guard compiles a list pair once ({@link ipFilterFor}) and checks each request.
 *
 * Rules: deny wins over allow; a non-empty allow list admits only the addresses it lists; with any list
 * configured, a missing or unparsable client address is refused (fail closed); no lists admit everything. An
 * entry without a prefix is a single address (/32, /128). IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`), as a
 * client address or as an entry with a prefix of at least 96, are compared as IPv4.
 */
import ipaddr from "ipaddr.js";
import { z } from "zod";

/** The most entries one allow or one deny list may hold (a check scans them, so they stay bounded). */
export const MAX_IP_FILTER_ENTRIES = 1_000;

/** Longer than any address with its prefix (an IPv6 address with an embedded IPv4 and /128 is 49 characters). */
const MAX_ENTRY_LENGTH = 64;

export interface IpFilterLists {
  allow?: readonly string[] | undefined;
  deny?: readonly string[] | undefined;
}

type Address = ipaddr.IPv4 | ipaddr.IPv6;
type Range = { kind: "ipv4" | "ipv6"; network: Address; bits: number };

export type IpCheck = { allowed: true } | { allowed: false; reason: string };

export interface CompiledIpFilter {
  /** Whether any list is configured (if not, every request passes, with or without an address). */
  readonly active: boolean;
  check(ip: string | null | undefined): IpCheck;
}

/** A strictly written address: four-part decimal IPv4, or IPv6 without a zone; IPv4-mapped IPv6 becomes IPv4. */
function parseAddress(text: string): Address | undefined {
  if (text.includes(":")) {
    if (text.includes("%") || !ipaddr.IPv6.isValid(text)) return undefined;
    const v6 = ipaddr.IPv6.parse(text);
    return v6.isIPv4MappedAddress() ? v6.toIPv4Address() : v6;
  }
  return ipaddr.IPv4.isValidFourPartDecimal(text) ? ipaddr.IPv4.parse(text) : undefined;
}

/** One list entry as a range, or the reason it is malformed (the message names what is wrong, not the entry). */
export function parseIpRange(entry: string): { ok: true; range: Range } | { ok: false; message: string } {
  if (entry.length > MAX_ENTRY_LENGTH) return { ok: false, message: "is too long for an IP address or CIDR range" };
  const text = entry.trim();
  const slash = text.indexOf("/");
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const prefixText = slash === -1 ? undefined : text.slice(slash + 1);
  if (addressText.includes(":")) {
    if (addressText.includes("%") || !ipaddr.IPv6.isValid(addressText)) {
      return { ok: false, message: "is not an IPv6 address or CIDR range (expected e.g. 2001:db8::/32 or 2001:db8::1)" };
    }
  } else if (!ipaddr.IPv4.isValidFourPartDecimal(addressText)) {
    return { ok: false, message: "is not an IPv4 address or CIDR range (expected e.g. 10.0.0.0/8 or 192.0.2.7)" };
  }
  const v6 = addressText.includes(":");
  const max = v6 ? 128 : 32;
  let bits = max;
  if (prefixText !== undefined) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText) || Number(prefixText) > max) {
      return { ok: false, message: `has an invalid prefix length: expected a whole number from 0 to ${max} after "/"` };
    }
    bits = Number(prefixText);
  }
  let network: Address = v6 ? ipaddr.IPv6.parse(addressText) : ipaddr.IPv4.parse(addressText);
  const canonical = v6 ? ipaddr.IPv6.networkAddressFromCIDR(`${addressText}/${bits}`) : ipaddr.IPv4.networkAddressFromCIDR(`${addressText}/${bits}`);
  if (canonical.toString() !== network.toString()) {
    return { ok: false, message: `has bits set after its /${bits} prefix: write the network address, ${canonical.toString()}/${bits}` };
  }
  if (network instanceof ipaddr.IPv6 && network.isIPv4MappedAddress() && bits >= 96) {
    network = network.toIPv4Address();
    bits -= 96;
  }
  return { ok: true, range: { kind: network.kind(), network, bits } };
}

/** One allow or deny list entry: an IPv4 or IPv6 address or CIDR range, refused with a clear message when malformed. */
export const ipCidrSchema = z.string().superRefine((entry, context) => {
  const parsed = parseIpRange(entry);
  if (!parsed.ok) context.addIssue({ code: "custom", message: `${JSON.stringify(entry.slice(0, MAX_ENTRY_LENGTH))} ${parsed.message}` });
});

const ipListSchema = z.array(ipCidrSchema).max(MAX_IP_FILTER_ENTRIES, `may hold at most ${MAX_IP_FILTER_ENTRIES} entries`);

/** `{allow, deny}` as gateway.yaml writes it (the tenant's `ipFilter` section and a key's own `ipFilter`). */
export const ipFilterSchema = z.strictObject({
  allow: ipListSchema.default([]),
  deny: ipListSchema.default([]),
});
export type IpFilterConfig = z.infer<typeof ipFilterSchema>;

function compileList(entries: readonly string[] | undefined, list: "allow" | "deny"): Range[] {
  return (entries ?? []).map((entry, i) => {
    const parsed = parseIpRange(entry);
    if (!parsed.ok) throw new Error(`ipFilter.${list}[${i}] ${parsed.message}`);
    return parsed.range;
  });
}

function inside(address: Address, ranges: readonly Range[]): boolean {
  return ranges.some((r) => r.kind === address.kind() && address.match(r.network, r.bits));
}

/**
 * Compiles an allow and a deny list. Throws on a malformed entry (validated configs never have one; a stored list
 * that somehow does must fail closed in the caller rather than be half-applied).
 */
export function compileIpFilter(lists: IpFilterLists | null | undefined): CompiledIpFilter {
  const allow = compileList(lists?.allow, "allow");
  const deny = compileList(lists?.deny, "deny");
  const active = allow.length > 0 || deny.length > 0;
  return {
    active,
    check(ip) {
      if (!active) return { allowed: true };
      const address = typeof ip === "string" ? parseAddress(ip.trim()) : undefined;
      if (!address) return { allowed: false, reason: ip ? "the client address could not be parsed" : "the client address is unknown" };
      if (inside(address, deny)) return { allowed: false, reason: "the client address is in the deny list" };
      if (allow.length > 0 && !inside(address, allow)) return { allowed: false, reason: "the client address is not in the allow list" };
      return { allowed: true };
    },
  };
}

const ALLOW_EVERYTHING = compileIpFilter(null);
const byObject = new WeakMap<object, CompiledIpFilter>();
const byText = new Map<string, CompiledIpFilter>();
const MAX_CACHED = 1_000;

/**
 * {@link compileIpFilter}, memoized: by the lists object (a tenant's cached published config keeps it for its
 * version) and by its JSON text (a key row's lists are parsed afresh on every lookup). Throws like compileIpFilter.
 */
export function ipFilterFor(lists: IpFilterLists | null | undefined): CompiledIpFilter {
  if (!lists || ((lists.allow?.length ?? 0) === 0 && (lists.deny?.length ?? 0) === 0)) return ALLOW_EVERYTHING;
  const seen = byObject.get(lists);
  if (seen) return seen;
  const text = JSON.stringify([lists.allow ?? [], lists.deny ?? []]);
  let compiled = byText.get(text);
  if (!compiled) {
    compiled = compileIpFilter(lists);
    byText.set(text, compiled);
    if (byText.size > MAX_CACHED) byText.delete(byText.keys().next().value as string);
  }
  byObject.set(lists, compiled);
  return compiled;
}
