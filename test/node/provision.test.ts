/**
 * `npm run provision`: a gateway.yaml's tenant and keys, and a new connector, land in D1 as digests only; the
 * connector token is printed once; a bad file is refused with the path of the bad key and changes nothing.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, expect, it } from "vitest";
import { PROJECT_ROOT, wrangler } from "../../scripts/local-gateway.ts";
import { sha256Hex } from "../../src/auth/secrets.ts";

const dir = mkdtempSync(join(tmpdir(), "mcp-gateway-provision-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KEY = "gw_provision_test_key_0123456789";

function provision(...args: string[]) {
  return promisify(execFile)(process.execPath, [join(PROJECT_ROOT, "scripts/provision.ts"), "--state", join(dir, "state"), ...args], {
    cwd: PROJECT_ROOT,
    timeout: 90_000,
  });
}

async function query(sql: string): Promise<Record<string, unknown>[]> {
  const output = await wrangler(["d1", "execute", "DB", "--local", "--persist-to", join(dir, "state"), "--json", "--command", sql]);
  return JSON.parse(output.slice(output.indexOf("[")))[0].results;
}

it("writes the tenant, hashed keys and a connector whose token is printed once", async () => {
  const config = join(dir, "gateway.yaml");
  writeFileSync(config, `tenant: acme\nauth:\n  keys:\n    - { id: k1, key: ${KEY}, name: Agent, consumerId: agent-1, roles: [reader] }\npolicies:\n  - { id: p, roles: [reader], rules: [{ action: allow }] }\n`);
  const { stdout } = await provision("--config", config, "--connector", "edge-1");
  const token = /^(gwc_[A-Za-z0-9_-]{43})$/m.exec(stdout)?.[1] as string;
  expect(token).toBeDefined();
  expect(stdout.match(/gwc_/g)).toHaveLength(1);

  expect(await query("SELECT tenant_id, id, token_hash FROM connectors")).toEqual([{ tenant_id: "acme", id: "edge-1", token_hash: await sha256Hex(token) }]);
  const keys = await query("SELECT * FROM api_keys");
  expect(keys).toMatchObject([{ tenant_id: "acme", id: "k1", consumer_id: "agent-1", key_hash: await sha256Hex(KEY) }]);
  expect(JSON.stringify(keys)).not.toContain(KEY);
}, 120_000);

it("refuses a bad file with the path of the bad key, exit 2, and writes nothing", async () => {
  const config = join(dir, "bad.yaml");
  writeFileSync(config, "tenant: other\nservers:\n  - { id: crm, comand: node }\n");
  const failure = await provision("--config", config).catch((error: { code: number; stderr: string }) => error);
  expect(failure).toMatchObject({ code: 2 });
  expect((failure as { stderr: string }).stderr).toMatch(/servers\[0\]/);
  expect(await query("SELECT id FROM tenants WHERE id = 'other'")).toEqual([]);
}, 120_000);
