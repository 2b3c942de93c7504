/**
 * The audit trail end to end: real MCP clients (SDK v1 and v2) call server-everything through the real Worker and
 * connector; the `mcp-gateway` CLI then reads the log and the stats, verifies the chain online, exports it and
 * verifies the export offline with the gateway's public key — and catches a row edited in D1 behind its back.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../connector/cli/main.ts";
import { connectClient } from "./clients.ts";
import { E2E_AUDIT_KEYS, EVERYTHING_SERVER, startStack, type Stack } from "./stack.ts";

let stack: Stack;
let dir: string;

beforeAll(async () => {
  stack = await startStack(() => [EVERYTHING_SERVER]);
  dir = mkdtempSync(join(tmpdir(), "mcp-gateway-audit-e2e-"));
}, 120_000);

afterAll(async () => {
  await stack?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

async function cli(argv: string[]) {
  let stdout = "";
  let stderr = "";
  const code = await runCli(argv, { MCP_GATEWAY_URL: stack.url.origin, MCP_GATEWAY_ADMIN_KEY: stack.adminKey }, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    cwd: dir,
  });
  return { code, stdout, stderr };
}

describe("the audit trail through the real stack", () => {
  const CALLS = 12;

  it("records every call of real clients, and the CLI reads them back", async () => {
    for (const kind of ["v1", "v2-2026"] as const) {
      const client = await connectClient(kind, stack.mcpUrl, stack.apiKey);
      try {
        for (let i = 0; i < CALLS / 2; i++) await client.callTool("everything__echo", { message: `${kind} call ${i}` });
      } finally {
        await client.close();
      }
    }
    const log = await cli(["audit", "log", "--limit=50", "--json"]);
    expect(log.code).toBe(0);
    const entries = JSON.parse(log.stdout).entries as { seq: number; tool: string; status: string; consumer: string; arguments: { message: string } }[];
    expect(entries).toHaveLength(CALLS);
    // Newest first, seq CALLS … 1, each a call of the e2e agent to echo.
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: CALLS }, (_, i) => CALLS - i));
    expect(entries.every((e) => e.tool === "echo" && e.status === "ok" && e.consumer === "e2e-agent")).toBe(true);
    expect(entries.at(-1)?.arguments).toEqual({ message: "v1 call 0" });

    const stats = await cli(["audit", "stats", "--json"]);
    expect(stats.code).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({ total: CALLS, byStatus: { ok: CALLS } });
  });

  it("verifies the chain online, exports it, and the export verifies offline with the public key", async () => {
    const verified = await cli(["audit", "verify", "--json"]);
    expect(verified.code).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true, entries: CALLS });

    const file = join(dir, "audit.jsonl");
    const exported = await cli(["audit", "export", "--out", file]);
    expect(exported.code, exported.stderr).toBe(0);
    const offline = await cli(["audit", "verify", "--file", file, `--public-key=${E2E_AUDIT_KEYS.publicKey}`, "--json"]);
    expect(offline.code, offline.stderr + offline.stdout).toBe(0);
    expect(JSON.parse(offline.stdout)).toMatchObject({ ok: true, entries: CALLS });

    // One edited argument in the export: the offline verification names its seq.
    const lines = readFileSync(file, "utf8").split("\n");
    const at = lines.findIndex((line) => line.includes('"v1 call 3"'));
    writeFileSync(join(dir, "edited.jsonl"), lines.map((line, i) => (i === at ? line.replace('"v1 call 3"', '"v1 call 9"') : line)).join("\n"));
    const edited = await cli(["audit", "verify", "--file", join(dir, "edited.jsonl"), `--public-key=${E2E_AUDIT_KEYS.publicKey}`, "--json"]);
    expect(edited.code).toBe(1);
    expect(JSON.parse(edited.stdout).failure).toMatchObject({ seq: 4 });
  });

  it("catches a row edited in D1 behind the gateway's back, naming its seq", async () => {
    await stack.query("UPDATE audit_entries SET latency_ms = latency_ms + 1 WHERE seq = 7");
    const verified = await cli(["audit", "verify", "--json"]);
    expect(verified.code).toBe(1);
    expect(JSON.parse(verified.stdout).failure).toMatchObject({ seq: 7, reason: "hash-mismatch" });
  });
});
