import { describe, expect, it } from "vitest";
import { parseGatewayConfig, type ConfigResult, type GatewayConfig } from "../../src/config/schema.ts";

/** The seed's example gateway.yaml, verbatim. */
const SEED_YAML = `
auth:
  type: api-key
  keys:
    - id: key-1
      key: gw_your_key_here_0123456789
      name: "Production Agent"
      consumerId: agent-prod
      roles: [reader, writer]
      enabled: true
servers:
  - id: mcp-fred
    name: "Federal Reserve Economic Data"
    command: node
    args: ["./mcp-fred/dist/index.js"]
    enabled: true
  - id: mcp-stripe
    name: "Stripe Payments"
    command: node
    args: ["./mcp-stripe/dist/index.js"]
    env:
      STRIPE_SECRET_KEY: "\${STRIPE_SECRET_KEY}"
    enabled: true
policies:
  - id: reader-policy
    name: "Read-only access"
    roles: [reader]
    rules:
      - tool: "get_*"
        action: allow
      - tool: "*"
        action: deny
audit:
  enabled: true
  storage: sqlite
  path: ./gateway-audit.db
  hashChain: true
metering:
  enabled: true
  dimensions: [calls, latency, errors]
rateLimit:
  enabled: true
  defaultPerMinute: 60
`;

function ok(result: ConfigResult): GatewayConfig {
  if (!result.ok) throw new Error(`expected a valid config, got: ${result.errors.join("; ")}`);
  return result.config;
}

function errors(result: ConfigResult): string[] {
  if (result.ok) throw new Error("expected the config to be refused");
  return result.errors;
}

const key = (extra: string) => `auth:\n  keys:\n    - id: k1\n      name: K\n      consumerId: c1\n${extra}`;
const servers = (...lines: string[]) => `servers:\n${lines.map((l) => `  - ${l}`).join("\n")}\n`;

describe("parseGatewayConfig", () => {
  it("refuses the seed's example for exactly its two rules that deny-overrides-allow makes wrong, naming the paths", () => {
    // The seed's reader policy ends with a catch-all deny that relied on first-match: here it would cancel the
    // policy's own allows. And its key holds "writer", which no policy grants: a role no policy names is far more
    // often a typo than a wish, so both are errors that say what to do.
    expect(errors(parseGatewayConfig(SEED_YAML))).toEqual([
      "policies[0].rules[1]: this deny covers every tool and deny overrides allow, so it would cancel rules[0] of the same policy; remove it (anything no rule allows is denied already)",
      'auth.keys[0].roles[1]: no policy grants the role "writer" (roles in policies: admin, reader)',
    ]);
  });

  it("parses the seed's example once those two are fixed", () => {
    const fixed = SEED_YAML.replace('      - tool: "*"\n        action: deny\n', "").replace(
      "audit:\n",
      "  - { id: writer-policy, roles: [writer], rules: [{ server: mcp-fred, action: allow }] }\naudit:\n",
    );
    const config = ok(parseGatewayConfig(fixed));
    expect(config.tenant).toBe("default");
    expect(config.auth.keys).toEqual([
      { id: "key-1", key: "gw_your_key_here_0123456789", name: "Production Agent", consumerId: "agent-prod", roles: ["reader", "writer"], enabled: true },
    ]);
    expect(config.servers.map((s) => s.id)).toEqual(["mcp-fred", "mcp-stripe"]);
    expect(config.servers[1]?.env).toEqual({ STRIPE_SECRET_KEY: "${STRIPE_SECRET_KEY}" });
    expect(config.policies[0]?.rules).toEqual([{ tool: "get_*", action: "allow", conditions: [] }]);
    expect(config.rateLimit).toEqual({ enabled: true, defaultPerMinute: 60 });
  });

  it("fills in defaults for a minimal server and an empty file", () => {
    const config = ok(parseGatewayConfig(servers("{ id: s1, command: node }")));
    expect(config.servers[0]).toEqual({ id: "s1", command: "node", args: [], env: {}, enabled: true, timeout: 60_000 });
    expect(config.tenant).toBe("default");
    const empty = ok(parseGatewayConfig(""));
    expect(empty).toMatchObject({ tenant: "default", auth: { type: "api-key", keys: [] }, servers: [], policies: [] });
  });

  it("defaults a key's roles to [] and enabled to true", () => {
    const config = ok(parseGatewayConfig(key("      key: gw_0123456789abcdef\n")));
    expect(config.auth.keys[0]).toMatchObject({ roles: [], enabled: true });
  });

  it("names the path of an unknown key", () => {
    const result = errors(parseGatewayConfig(servers("{ id: s1, comand: node }")));
    expect(result.some((e) => e.startsWith("servers[0]") && e.includes("comand"))).toBe(true);
  });

  it("names the path of an unknown top-level key", () => {
    expect(errors(parseGatewayConfig("servrs: []\n")).join("\n")).toMatch(/^\(top level\): .*servrs/m);
  });

  it("names the nested path of a bad value", () => {
    expect(errors(parseGatewayConfig(servers("{ id: s1, command: node }", "{ id: s2, command: node, timeout: 5 }")))).toEqual([
      expect.stringMatching(/^servers\[1\]\.timeout: /),
    ]);
  });

  it("refuses a server id containing '__'", () => {
    expect(errors(parseGatewayConfig(servers("{ id: crm__x, command: node }")))).toEqual([
      expect.stringMatching(/^servers\[0\]\.id: .*'__'/),
    ]);
  });

  it("refuses a prefix containing '__'", () => {
    expect(errors(parseGatewayConfig(servers("{ id: a, command: node, prefix: x__y }")))[0]).toMatch(/^servers\[0\]\.prefix: /);
  });

  it("refuses duplicate server ids, naming both entries", () => {
    const result = errors(parseGatewayConfig(servers("{ id: s1, command: a }", "{ id: s2, command: b }", "{ id: s1, command: c }")));
    expect(result).toContain('servers[2].id: "s1" is already used by servers[0]');
  });

  it("refuses a prefix equal to another server's id, naming both servers", () => {
    const result = errors(parseGatewayConfig(servers("{ id: crm, command: a }", "{ id: sales, command: b, prefix: crm }")));
    expect(result).toEqual([
      'servers[1].prefix: tools would be named "crm__<tool>" like those of servers[0]; give one a different prefix',
    ]);
  });

  it("refuses two servers with the same explicit prefix", () => {
    const result = errors(parseGatewayConfig(servers("{ id: a, command: a, prefix: p }", "{ id: b, command: b, prefix: p }")));
    expect(result[0]).toMatch(/^servers\[1\]\.prefix: .*"p__<tool>".*servers\[0\]/);
  });

  it("allows several servers with bare names (prefix \"\")", () => {
    const config = ok(parseGatewayConfig(servers('{ id: a, command: a, prefix: "" }', '{ id: b, command: b, prefix: "" }')));
    expect(config.servers.map((s) => s.prefix)).toEqual(["", ""]);
  });

  it("refuses a key with both key and keyHash", () => {
    const result = errors(parseGatewayConfig(key(`      key: gw_0123456789abcdef\n      keyHash: ${"a".repeat(64)}\n`)));
    expect(result).toEqual(["auth.keys[0]: give exactly one of key or keyHash"]);
  });

  it("refuses a key with neither key nor keyHash", () => {
    expect(errors(parseGatewayConfig(key("")))).toEqual(["auth.keys[0]: give exactly one of key or keyHash"]);
  });

  it("accepts a key given only as a lowercase hex keyHash", () => {
    const config = ok(parseGatewayConfig(key(`      keyHash: ${"ab".repeat(32)}\n`)));
    expect(config.auth.keys[0]?.keyHash).toBe("ab".repeat(32));
    expect(config.auth.keys[0]?.key).toBeUndefined();
  });

  it("refuses an uppercase or short keyHash and a short key", () => {
    expect(errors(parseGatewayConfig(key(`      keyHash: ${"AB".repeat(32)}\n`)))[0]).toMatch(/^auth\.keys\[0\]\.keyHash: /);
    expect(errors(parseGatewayConfig(key("      key: short\n")))[0]).toBe("auth.keys[0].key: must be at least 16 characters");
  });

  it("refuses duplicate key ids", () => {
    const yaml = `auth:\n  keys:\n${[1, 2]
      .map((n) => `    - { id: k, name: K, consumerId: c, key: gw_000000000000000${n} }`)
      .join("\n")}\n`;
    expect(errors(parseGatewayConfig(yaml))).toEqual(['auth.keys[1].id: "k" is already used by auth.keys[0]']);
  });

  it("gives a clear error for invalid YAML", () => {
    const result = errors(parseGatewayConfig("servers:\n  - id: a\n   command: [unclosed\n"));
    expect(result).toHaveLength(1);
    expect(result[0]).toMatch(/^not valid YAML: /);
  });

  it("refuses a document that is not a mapping", () => {
    expect(errors(parseGatewayConfig("- just\n- a list\n"))[0]).toMatch(/^\(top level\): /);
  });

  it("refuses an invalid env variable name", () => {
    expect(errors(parseGatewayConfig(servers('{ id: a, command: a, env: { "BAD-NAME": x } }')))[0]).toMatch(
      /^servers\[0\]\.env\.BAD-NAME: /,
    );
  });
});

describe("parseGatewayConfig: references between sections", () => {
  const policy = (rules: string, roles = "[reader]", id = "p") => `  - { id: ${id}, roles: ${roles}, rules: [${rules}] }\n`;
  const file = (policies: string, extra = "") => `${servers("{ id: crm, command: a }")}policies:\n${policies}${extra}`;

  it.each([
    [
      "a wrong action, with what was expected and what came",
      file(policy("{ tool: x, action: allow }") + policy("{ tool: y, action: permit }", "[reader]", "q")),
      'policies[1].rules[0].action: expected "allow" | "deny", got "permit"',
    ],
    ["a wrong type", file(policy("{ tool: x, action: allow }", "reader")), "policies[0].roles: expected array, got a string"],
    ["an unknown key", file(policy("{ tool: x, action: allow, when: now }")), 'policies[0].rules[0]: unknown key "when"'],
    ["a duplicate policy id", file(policy("{ action: allow }") + policy("{ action: deny }")), 'policies[1].id: "p" is already used by policies[0]'],
    [
      "a rule naming a server the file does not declare",
      file(policy("{ server: crn, action: allow }")),
      'policies[0].rules[0].server: no server "crn" in servers (declared: gateway, crm)',
    ],
    [
      "a key holding a role no policy grants",
      file(policy("{ action: allow }"), "auth:\n  keys:\n    - { id: k, keyHash: " + "a".repeat(64) + ", name: K, consumerId: c, roles: [raeder] }\n"),
      'auth.keys[0].roles[0]: no policy grants the role "raeder" (roles in policies: admin, reader)',
    ],
    ["the gateway's reserved server id", servers("{ id: gateway, command: a }"), 'servers[0].id: "gateway" is reserved for the gateway\'s own tools; choose another id'],
  ])("refuses %s, naming the path", (_, yaml, expected) => {
    expect(errors(parseGatewayConfig(yaml))).toContain(expected);
  });

  it("accepts globs over servers the file does not declare, the gateway's own server, and the admin role without a policy", () => {
    const yaml = file(policy("{ server: 'crm-*', action: allow }") + policy("{ server: gateway, tool: call, action: deny }", '["*"]', "q"), "auth:\n  keys:\n    - { id: k, keyHash: " + "a".repeat(64) + ", name: K, consumerId: c, roles: [reader, admin] }\n");
    expect(ok(parseGatewayConfig(yaml)).policies).toHaveLength(2);
  });

  it("never echoes a malformed key's value in an error", () => {
    const result = errors(parseGatewayConfig("auth:\n  keys:\n    - { id: k, key: 12345678901234567890, name: K, consumerId: c }\n"));
    expect(result.join("\n")).not.toContain("12345678901234567890");
    expect(result[0]).toMatch(/^auth\.keys\[0\]\.key: /);
  });
});

describe("parseGatewayConfig: what an error may say", () => {
  it("never quotes the file in a YAML syntax error (a line can hold a key)", () => {
    const result = errors(parseGatewayConfig('auth:\n  keys:\n    - { id: k, key: "gw_supersecret_value_123, name: K }\n'));
    expect(result[0]).toMatch(/^not valid YAML: /);
    expect(result.join("\n")).not.toContain("supersecret");
  });

  it("never echoes a mistyped env value", () => {
    const result = errors(parseGatewayConfig(servers("{ id: a, command: a, env: { TOKEN: 1234567890123 } }")));
    expect(result).toEqual(["servers[0].env.TOKEN: expected string, got a number"]);
  });

  it("refuses YAML aliases, which could expand a small file into megabytes", () => {
    const yaml = `x: &a [1, 2, 3]\nservers:\n  - { id: s, command: *a }\n`;
    expect(errors(parseGatewayConfig(yaml))[0]).toMatch(/^not valid YAML: /);
  });

  it("needs every server's command on the host, not on the edge, which never receives it", () => {
    const yaml = servers("{ id: crm, name: CRM }");
    expect(errors(parseGatewayConfig(yaml))).toEqual(["servers[0].command: required: the connector runs this command to start the server"]);
    expect(ok(parseGatewayConfig(yaml, { for: "edge" })).servers[0]).toMatchObject({ id: "crm", name: "CRM" });
  });
});

describe("edgeDocument", () => {
  it("is the file without what stays on the host, keys as digests, and the edge reads it back as the same config", async () => {
    const { edgeDocument, publishConfig } = await import("../../src/config/publish.ts");
    const { sha256Hex } = await import("../../src/auth/secrets.ts");
    const config = ok(parseGatewayConfig(SEED_YAML.replace('      - tool: "*"\n        action: deny\n', "").replace("roles: [reader, writer]", "roles: [reader]")));
    const document = await edgeDocument(config);
    const text = JSON.stringify(document);
    for (const secret of ["gw_your_key_here_0123456789", "STRIPE_SECRET_KEY", "./mcp-stripe/dist/index.js", '"command"']) expect(text).not.toContain(secret);
    expect(text).toContain(await sha256Hex("gw_your_key_here_0123456789"));
    const back = ok(parseGatewayConfig(text, { for: "edge" }));
    expect(publishConfig(back)).toEqual(publishConfig(config));
  });
});

describe("parseGatewayConfig: redaction", () => {
  it.each([
    ["an unknown detector", "redaction:\n  rules:\n    - { detectors: [passport] }\n", /^redaction\.rules\[0\]\.detectors\[0\]: expected "ssn" \| "card" \| "email" \| "phone" \| "iban" \| "ip" \| "secret", got "passport"$/],
    ["an unknown action", "redaction:\n  rules:\n    - { detectors: [ssn], action: blur }\n", /^redaction\.rules\[0\]\.action: expected "mask" \| "partial" \| "hash" \| "drop", got "blur"$/],
    ["a bad field path", "redaction:\n  rules:\n    - { fields: [{ path: 'a..b', action: mask }] }\n", /^redaction\.rules\[0\]\.fields\[0\]\.path: /],
    ["a bad direction", "redaction:\n  rules:\n    - { directions: [inbound] }\n", /^redaction\.rules\[0\]\.directions\[0\]: expected "request" \| "response" \| "audit"/],
  ])("refuses %s, naming the path", (_, yaml, expected) => {
    expect(errors(parseGatewayConfig(yaml))[0]).toMatch(expected);
  });

  it("defaults a rule to every direction, mask, and binaries passed through", () => {
    expect(ok(parseGatewayConfig("redaction:\n  rules:\n    - { detectors: [ssn] }\n")).redaction?.rules[0]).toEqual({
      directions: ["request", "response", "audit"],
      detectors: ["ssn"],
      action: "mask",
      actions: {},
      fields: [],
      binary: "pass",
    });
  });
});
