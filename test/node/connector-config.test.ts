// The connector's lean reading of gateway.yaml (connector/config.ts): the same schema, checks and messages as the
// whole file's parse for `tenant` and `servers:`, the other sections accepted unread, and none of their schemas
// loaded into the connector process.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EDGE_SECTIONS, parseConnectorConfig } from "../../connector/config.ts";
import { gatewayConfigSchema, hostServers, parseGatewayConfig } from "../../src/config/schema.ts";

const ROOT = join(import.meta.dirname, "../..");

/** The errors of both parses of `yaml`, the connector's first. */
function bothErrors(yaml: string): [string[], string[]] {
  const lean = parseConnectorConfig(yaml);
  const full = parseGatewayConfig(yaml);
  return [lean.ok ? [] : lean.errors, full.ok ? [] : full.errors];
}

describe("connector config: servers as the whole schema reads them", () => {
  const BAD_SERVERS: Record<string, string> = {
    "a bad timeout and a bad id": "servers:\n  - id: ok\n    command: node\n    timeout: 5\n  - id: bad__id\n    command: node\n",
    "an unknown key and a wrong type": "servers:\n  - id: a\n    command: node\n    comand: node\n    args: node\n",
    "a bad env name and a bad enabled": "servers:\n  - id: a\n    command: node\n    env:\n      1BAD: x\n    enabled: yes please\n",
    "a missing command": "servers:\n  - id: a\n    args: [x]\n",
    "duplicate ids": "servers:\n  - id: a\n    command: node\n  - id: a\n    command: node\n",
    "duplicate prefixes": "servers:\n  - id: a\n    command: node\n    prefix: kb\n  - id: kb\n    command: node\n",
    "servers not a list": "servers:\n  id: a\n",
    "a bad tenant": "tenant: 'no spaces allowed'\nservers: []\n",
    "a list at the top level": "- id: a\n",
    "a scalar at the top level": "hello\n",
    "not YAML": "servers: [\n",
    "an alias": "x: &a [1]\nservers: *a\n",
  };

  for (const [name, yaml] of Object.entries(BAD_SERVERS)) {
    it(`refuses ${name} with the whole parse's messages`, () => {
      const [lean, full] = bothErrors(yaml);
      expect(lean.length).toBeGreaterThan(0);
      expect(lean).toEqual(full);
    });
  }

  it("names the path of each bad key", () => {
    const [lean] = bothErrors(BAD_SERVERS["a bad timeout and a bad id"]!);
    expect(lean).toEqual([expect.stringMatching(/^servers\[0\]\.timeout: /), expect.stringMatching(/^servers\[1\]\.id: /)]);
    expect(bothErrors(BAD_SERVERS["a missing command"]!)[0]).toEqual(["servers[0].command: required: the connector runs this command to start the server"]);
  });

  it("refuses a top-level key no section of the whole schema has (a misspelt servers:)", () => {
    const [lean, full] = bothErrors("server:\n  - id: a\n    command: node\n");
    expect(lean).toEqual(['(top level): unknown key "server"']);
    expect(lean).toEqual(full);
  });

  it("accepts the same top-level sections as the whole schema", () => {
    const whole = Object.keys(gatewayConfigSchema.shape).filter((key) => key !== "tenant" && key !== "servers");
    expect([...EDGE_SECTIONS].sort()).toEqual(whole.sort());
  });

  it("reads the servers and tenant of a full gateway.yaml exactly as the whole parse does", () => {
    // gateway.example.yaml's key hashes are placeholders `npm start` fills in; fill them for the whole parse.
    const example = readFileSync(join(ROOT, "gateway.example.yaml"), "utf8")
      .replace("__DEMO_KEY_HASH__", "a".repeat(64))
      .replace("__ADMIN_KEY_HASH__", "b".repeat(64));
    const full = parseGatewayConfig(example);
    expect(full.ok, full.ok ? "" : full.errors.join("\n")).toBe(true);
    const lean = parseConnectorConfig(example);
    expect(lean.ok, lean.ok ? "" : lean.errors.join("\n")).toBe(true);
    if (!lean.ok || !full.ok) return;
    expect(lean.config.servers).toEqual(hostServers(full.config));
    expect(lean.config.tenant).toBe(full.config.tenant);
    expect(lean.config.servers.map((s) => s.id)).toEqual(["everything", "memory"]);
    // Defaults applied, `${VAR}` left for the supervisor to resolve on this host.
    expect(lean.config.servers[1]).toMatchObject({ enabled: true, timeout: 60_000, env: { MEMORY_FILE_PATH: "${PWD}/.mcp-gateway/memory.jsonl" } });
  });

  it("ignores the sections it does not use, even where the edge would refuse them", () => {
    const yaml = [
      "servers:",
      "  - id: a",
      "    command: node",
      "policies:",
      "  - id: p",
      "    roles: [reader]",
      "    rules: [{ server: nowhere, tool: x, action: permit }]",
      "auth: { keys: [{ id: k, keyHash: not-a-hash, name: n, consumerId: c }] }",
      "redaction: 42",
    ].join("\n");
    expect(parseGatewayConfig(yaml).ok).toBe(false);
    const lean = parseConnectorConfig(yaml);
    expect(lean).toMatchObject({ ok: true, config: { tenant: "default", servers: [{ id: "a", command: "node", args: [], env: {}, enabled: true, timeout: 60_000 }] } });
  });

  it("reads an empty file as no servers", () => {
    expect(parseConnectorConfig("")).toEqual({ ok: true, config: { tenant: "default", servers: [] } });
  });

  it("loads none of the edge sections' schemas into the connector", () => {
    // Every module the connector's entry loads, recorded by a load hook in a fresh process.
    const hook = [
      'import { registerHooks } from "node:module";',
      "globalThis.__loaded = [];",
      "registerHooks({ load(url, context, next) { globalThis.__loaded.push(url); return next(url, context); } });",
    ].join("\n");
    const result = spawnSync(
      process.execPath,
      ["--import", `data:text/javascript,${encodeURIComponent(hook)}`, "--input-type=module", "-e", `await import(${JSON.stringify(join(ROOT, "connector/main.ts"))}); console.log(JSON.stringify(globalThis.__loaded));`],
      { cwd: ROOT, encoding: "utf8" },
    );
    expect(result.status, result.stderr).toBe(0);
    const loaded = (JSON.parse(result.stdout.trim().split("\n").at(-1) ?? "[]") as string[]).map((url) => url.replace(`file://${ROOT}/`, ""));
    expect(loaded).toContain("src/config/server-schema.ts");
    expect(loaded.filter((url) => /^src\/(config\/schema|auth|policy|redact|metering|ratelimit)\b|node_modules\/(picomatch|ipaddr\.js|ibantools)\//.test(url))).toEqual([]);
  });
});
