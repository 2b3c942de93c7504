/**
 * IP allow and deny lists (src/auth/ip-filter.ts): CIDR matching for IPv4 and IPv6 (ranges, /0, single addresses,
 * the first and last address of a range, IPv4-mapped IPv6), deny over allow, fail-closed on a missing or garbage
 * client address, and the config schema refusing malformed entries by path.
 */
import { describe, expect, it } from "vitest";
import { compileIpFilter, ipCidrSchema, ipFilterFor, MAX_IP_FILTER_ENTRIES, parseIpRange } from "../../src/auth/ip-filter.ts";
import { parseGatewayConfig } from "../../src/config/schema.ts";

const allowed = (allow: string[], deny: string[], ip: string | null) => compileIpFilter({ allow, deny }).check(ip).allowed;

describe("IPv4 ranges", () => {
  const table: { allow?: string[]; deny?: string[]; ip: string; expected: boolean; label: string }[] = [
    { label: "inside a /8", allow: ["10.0.0.0/8"], ip: "10.200.3.4", expected: true },
    { label: "outside a /8", allow: ["10.0.0.0/8"], ip: "11.0.0.1", expected: false },
    { label: "first address of a /24", allow: ["192.0.2.0/24"], ip: "192.0.2.0", expected: true },
    { label: "last address of a /24", allow: ["192.0.2.0/24"], ip: "192.0.2.255", expected: true },
    { label: "one below a /24", allow: ["192.0.2.0/24"], ip: "192.0.1.255", expected: false },
    { label: "one above a /24", allow: ["192.0.2.0/24"], ip: "192.0.3.0", expected: false },
    { label: "first address of a /30", allow: ["198.51.100.4/30"], ip: "198.51.100.4", expected: true },
    { label: "last address of a /30", allow: ["198.51.100.4/30"], ip: "198.51.100.7", expected: true },
    { label: "just past a /30", allow: ["198.51.100.4/30"], ip: "198.51.100.8", expected: false },
    { label: "a single address (no prefix) matches itself", allow: ["203.0.113.7"], ip: "203.0.113.7", expected: true },
    { label: "a single address (no prefix) is /32", allow: ["203.0.113.7"], ip: "203.0.113.8", expected: false },
    { label: "an explicit /32", allow: ["203.0.113.7/32"], ip: "203.0.113.7", expected: true },
    { label: "0.0.0.0/0 allows any IPv4", allow: ["0.0.0.0/0"], ip: "8.8.8.8", expected: true },
    { label: "0.0.0.0/0 does not cover IPv6", allow: ["0.0.0.0/0"], ip: "2001:db8::1", expected: false },
    { label: "0.0.0.0/0 denies any IPv4", deny: ["0.0.0.0/0"], ip: "1.1.1.1", expected: false },
    { label: "a deny list alone lets others through", deny: ["10.0.0.0/8"], ip: "192.0.2.1", expected: true },
    { label: "a deny list alone refuses its range", deny: ["10.0.0.0/8"], ip: "10.1.1.1", expected: false },
    { label: "deny wins over allow", allow: ["10.0.0.0/8"], deny: ["10.1.0.0/16"], ip: "10.1.2.3", expected: false },
    { label: "allow outside the deny", allow: ["10.0.0.0/8"], deny: ["10.1.0.0/16"], ip: "10.2.2.3", expected: true },
    { label: "deny of the very address allowed", allow: ["192.0.2.1"], deny: ["192.0.2.1"], ip: "192.0.2.1", expected: false },
    { label: "one of several allow entries", allow: ["10.0.0.0/8", "192.0.2.0/24"], ip: "192.0.2.9", expected: true },
  ];
  it.each(table)("$label: $ip → $expected", ({ allow = [], deny = [], ip, expected }) => {
    expect(allowed(allow, deny, ip)).toBe(expected);
  });
});

describe("IPv6 ranges", () => {
  const table: { allow?: string[]; deny?: string[]; ip: string; expected: boolean; label: string }[] = [
    { label: "inside a /32", allow: ["2001:db8::/32"], ip: "2001:db8:1234::1", expected: true },
    { label: "outside a /32", allow: ["2001:db8::/32"], ip: "2001:db9::1", expected: false },
    { label: "first address of a /64", allow: ["2001:db8:0:1::/64"], ip: "2001:db8:0:1::", expected: true },
    { label: "last address of a /64", allow: ["2001:db8:0:1::/64"], ip: "2001:db8:0:1:ffff:ffff:ffff:ffff", expected: true },
    { label: "just past a /64", allow: ["2001:db8:0:1::/64"], ip: "2001:db8:0:2::", expected: false },
    { label: "just before a /64", allow: ["2001:db8:0:1::/64"], ip: "2001:db8:0:0:ffff:ffff:ffff:ffff", expected: false },
    { label: "a single address is /128", allow: ["2001:db8::7"], ip: "2001:db8::7", expected: true },
    { label: "a single address, written longhand by the client", allow: ["2001:db8::7"], ip: "2001:0db8:0000:0000:0000:0000:0000:0007", expected: true },
    { label: "a single address does not cover its neighbour", allow: ["2001:db8::7"], ip: "2001:db8::8", expected: false },
    { label: "::/0 allows any IPv6", allow: ["::/0"], ip: "fe80::1", expected: true },
    { label: "::/0 does not cover IPv4", allow: ["::/0"], ip: "192.0.2.1", expected: false },
    { label: "::/0 plus 0.0.0.0/0 cover both", allow: ["::/0", "0.0.0.0/0"], ip: "192.0.2.1", expected: true },
    { label: "deny wins over allow", allow: ["2001:db8::/32"], deny: ["2001:db8:bad::/48"], ip: "2001:db8:bad::1", expected: false },
    { label: "allow outside the deny", allow: ["2001:db8::/32"], deny: ["2001:db8:bad::/48"], ip: "2001:db8:abc::1", expected: true },
    { label: "allow next to the deny", allow: ["2001:db8::/32"], deny: ["2001:db8:bad::/48"], ip: "2001:db8:bae::1", expected: true },
    { label: "uppercase hex", allow: ["2001:DB8::/32"], ip: "2001:DB8::1", expected: true },
  ];
  it.each(table)("$label: $ip → $expected", ({ allow = [], deny = [], ip, expected }) => {
    expect(allowed(allow, deny, ip)).toBe(expected);
  });
});

describe("IPv4-mapped IPv6 addresses are compared as IPv4", () => {
  const table: { allow?: string[]; deny?: string[]; ip: string; expected: boolean; label: string }[] = [
    { label: "a mapped client inside an IPv4 allow", allow: ["192.0.2.0/24"], ip: "::ffff:192.0.2.10", expected: true },
    { label: "a mapped client in hex form", allow: ["192.0.2.0/24"], ip: "::ffff:c000:20a", expected: true },
    { label: "a mapped client outside an IPv4 allow", allow: ["192.0.2.0/24"], ip: "::ffff:198.51.100.1", expected: false },
    { label: "a mapped client cannot slip past an IPv4 deny", deny: ["192.0.2.0/24"], ip: "::ffff:192.0.2.10", expected: false },
    { label: "a mapped entry (/120) matches a plain IPv4 client", allow: ["::ffff:192.0.2.0/120"], ip: "192.0.2.77", expected: true },
    { label: "a mapped single address matches its IPv4 client", deny: ["::ffff:203.0.113.9"], ip: "203.0.113.9", expected: false },
    { label: "a mapped client is not in ::/0 (it is IPv4)", allow: ["::/0"], ip: "::ffff:192.0.2.1", expected: false },
  ];
  it.each(table)("$label: $ip → $expected", ({ allow = [], deny = [], ip, expected }) => {
    expect(allowed(allow, deny, ip)).toBe(expected);
  });
});

describe("no lists, empty lists, and a missing or garbage client address", () => {
  const garbage = [null, "", "not-an-ip", "10.0.0", "10.0.0.256", "010.0.0.1", "0x0a.0.0.1", "167772161", "2001:db8::1::2", "fe80::1%eth0", "10.0.0.1, 192.0.2.1"];
  it.each(garbage)("no lists: %j is allowed (nothing configured)", (ip) => {
    expect(compileIpFilter({ allow: [], deny: [] }).check(ip)).toEqual({ allowed: true });
    expect(compileIpFilter(null).check(ip)).toEqual({ allowed: true });
    expect(compileIpFilter(undefined).active).toBe(false);
  });
  it.each(garbage)("an allow list: %j is refused (fail closed)", (ip) => {
    expect(compileIpFilter({ allow: ["0.0.0.0/0", "::/0"] }).check(ip).allowed).toBe(false);
  });
  it.each(garbage)("a deny list alone: %j is refused (fail closed)", (ip) => {
    const result = compileIpFilter({ deny: ["192.0.2.0/24"] }).check(ip);
    expect(result.allowed).toBe(false);
    if (!result.allowed) expect(result.reason).toMatch(/client address (is unknown|could not be parsed)/);
  });
  it("a refusal gives a reason and never the list", () => {
    const result = compileIpFilter({ allow: ["10.0.0.0/8"], deny: ["10.9.0.0/16"] }).check("10.9.0.1");
    expect(result).toEqual({ allowed: false, reason: "the client address is in the deny list" });
    expect(compileIpFilter({ allow: ["10.0.0.0/8"] }).check("11.0.0.1")).toEqual({ allowed: false, reason: "the client address is not in the allow list" });
  });
});

describe("compiling and memoizing", () => {
  it("compileIpFilter throws on a malformed stored entry (the caller fails closed)", () => {
    expect(() => compileIpFilter({ allow: ["10.0.0.0/33"] })).toThrow(/ipFilter\.allow\[0\]/);
  });
  it("ipFilterFor returns one compiled filter per distinct lists", () => {
    const lists = { allow: ["10.0.0.0/8"], deny: [] };
    expect(ipFilterFor(lists)).toBe(ipFilterFor(lists));
    expect(ipFilterFor({ allow: ["10.0.0.0/8"], deny: [] })).toBe(ipFilterFor(lists));
    expect(ipFilterFor({ allow: ["10.0.0.0/9"], deny: [] })).not.toBe(ipFilterFor(lists));
    expect(ipFilterFor(null).active).toBe(false);
    expect(ipFilterFor({ allow: [], deny: [] }).active).toBe(false);
  });
});

describe("the schema refuses malformed entries with a clear message", () => {
  const valid = ["10.0.0.0/8", "192.0.2.7", "0.0.0.0/0", "::/0", "2001:db8::/32", "2001:db8::1", "::ffff:192.0.2.0/120", "fe80::/10", "255.255.255.255/32"];
  it.each(valid)("%s is accepted", (entry) => {
    expect(ipCidrSchema.safeParse(entry).success).toBe(true);
    expect(parseIpRange(entry).ok).toBe(true);
  });

  const malformed: [string, RegExp][] = [
    ["", /is not an IPv4 address or CIDR range/],
    ["10.0.0.0/33", /invalid prefix length: expected a whole number from 0 to 32/],
    ["2001:db8::/129", /invalid prefix length: expected a whole number from 0 to 128/],
    ["10.0.0.0/", /invalid prefix length/],
    ["10.0.0.0/-1", /invalid prefix length/],
    ["10.0.0.0/08", /invalid prefix length/],
    ["10.0.0.0/8/8", /invalid prefix length/],
    ["10.0.0.256", /is not an IPv4 address/],
    ["10.0.0", /is not an IPv4 address/],
    ["010.0.0.0/8", /is not an IPv4 address/],
    ["localhost", /is not an IPv4 address/],
    ["2001:db8:::/32", /is not an IPv6 address/],
    ["fe80::1%eth0", /is not an IPv6 address/],
    ["10.1.2.3/8", /bits set after its \/8 prefix: write the network address, 10\.0\.0\.0\/8/],
    ["2001:db8::1/32", /bits set after its \/32 prefix: write the network address, 2001:db8::\/32/],
    ["1".repeat(65), /too long/],
  ];
  it.each(malformed)("%j is refused", (entry, message) => {
    const result = ipCidrSchema.safeParse(entry);
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toMatch(message);
  });

  const file = (ipFilter: string) => `tenant: t1
auth:
  keys:
    - id: k1
      key: gw_0123456789abcdef0123
      name: k1
      consumerId: agent-1
      roles: [reader]
${ipFilter}
policies:
  - id: p
    roles: [reader]
    rules: [{ action: allow }]
`;

  it("the tenant section names the bad entry by path", () => {
    const result = parseGatewayConfig(`${file("")}ipFilter:\n  allow: ["10.0.0.0/8", "10.0.0.300"]\n  deny: ["::/0", "2001:db8::/200"]\n`);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toContainEqual(expect.stringMatching(/^ipFilter\.allow\[1\]: "10\.0\.0\.300" is not an IPv4 address or CIDR range/));
    expect(result.errors).toContainEqual(expect.stringMatching(/^ipFilter\.deny\[1\]: "2001:db8::\/200" has an invalid prefix length/));
    expect(result.errors).toHaveLength(2);
  });

  it("a key's own lists are named by path", () => {
    const result = parseGatewayConfig(file("      ipFilter:\n        allow: [192.0.2.0/24, nonsense]"));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors).toEqual([expect.stringMatching(/^auth\.keys\[0\]\.ipFilter\.allow\[1\]: "nonsense" is not/)]);
  });

  it("an unknown key inside ipFilter is refused", () => {
    const result = parseGatewayConfig(`${file("")}ipFilter:\n  allowed: [10.0.0.0/8]\n`);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors).toContainEqual('ipFilter: unknown key "allowed"');
  });

  it("valid lists parse, with a missing list defaulting to empty", () => {
    const result = parseGatewayConfig(`${file("      ipFilter: { deny: [203.0.113.0/24] }")}ipFilter:\n  allow: [10.0.0.0/8, "2001:db8::/32"]\n`);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.ipFilter).toEqual({ allow: ["10.0.0.0/8", "2001:db8::/32"], deny: [] });
    expect(result.config.auth.keys[0]?.ipFilter).toEqual({ allow: [], deny: ["203.0.113.0/24"] });
  });

  it(`a list is bounded at ${MAX_IP_FILTER_ENTRIES} entries`, () => {
    const many = Array.from({ length: MAX_IP_FILTER_ENTRIES + 1 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`);
    const result = parseGatewayConfig(`${file("")}ipFilter:\n  deny: ${JSON.stringify(many)}\n`);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors).toEqual([`ipFilter.deny: may hold at most ${MAX_IP_FILTER_ENTRIES} entries`]);
    const justEnough = parseGatewayConfig(`${file("")}ipFilter:\n  deny: ${JSON.stringify(many.slice(1))}\n`);
    expect(justEnough.ok).toBe(true);
  });
});
