// `mcp-gateway audit …`: runCli in-process against a node:http stand-in for the audit endpoints (cli-fake-audit.ts):
// log paging and filters, stats, the streamed verification (ok, broken chain, cut short, silent), export to a file
// or stdout (exact bytes, nothing left behind on failure), and offline verification of real exports built with
// src/audit, including through the installed bin.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli, type CliIo } from "../../connector/cli/main.ts";
import { headOf } from "../../src/audit/chain.ts";
import type { AuditCheckpoint } from "../../src/audit/checkpoint.ts";
import type { AuditEntry } from "../../src/audit/entry.ts";
import { exportLines } from "../../src/audit/export-format.ts";
import { AUDIT_ADMIN_KEY, FakeAuditApi, gate } from "./cli-fake-audit.ts";
import { buildChain, checkpointOf, OTHER_PUBLIC_KEY, PUBLIC_KEY, TENANT } from "./core-audit-fixtures.ts";

const BIN = fileURLToPath(new URL("../../connector/bin/mcp-gateway.mjs", import.meta.url));
const NOW = Date.parse("2026-06-01T12:00:00.000Z");

type Run = { code: number; stdout: string; stderr: string; bytes: Buffer };

async function cli(argv: string[], env: Record<string, string>, extra: Partial<CliIo> = {}): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const chunks: Uint8Array[] = [];
  const code = await runCli(argv, env, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    stdoutBytes: (chunk) => void chunks.push(Uint8Array.from(chunk)),
    cwd: dir,
    timeoutMs: 5_000,
    now: () => NOW,
    ...extra,
  });
  return { code, stdout, stderr, bytes: Buffer.concat(chunks) };
}

let api: FakeAuditApi;
let dir: string;
let env: Record<string, string>;
beforeEach(async () => {
  api = new FakeAuditApi();
  await api.start();
  dir = mkdtempSync(join(tmpdir(), "mcp-gateway-audit-"));
  env = { MCP_GATEWAY_URL: api.url, MCP_GATEWAY_ADMIN_KEY: AUDIT_ADMIN_KEY };
});
afterEach(async () => {
  await api.close();
});

const ndjson = (...values: unknown[]) => values.map((v) => `${JSON.stringify(v)}\n`).join("");

describe("audit log", () => {
  it("follows nextCursor pages and stops at --limit, newest first", async () => {
    api.fill(10);
    api.pageCap = 4;
    const result = await cli(["audit", "log", "--limit", "6"], env);
    expect(result.code).toBe(0);
    expect(api.requests.map((r) => [r.path, r.query.get("limit"), r.query.get("cursor")])).toEqual([
      ["/admin/v1/audit/entries", "6", null],
      ["/admin/v1/audit/entries", "2", Buffer.from("4").toString("base64url")],
    ]);
    const lines = result.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^TIME\s+SEQ\s+CONSUMER\s+SERVER\s+TOOL\s+STATUS\s+LATENCY\s+RULE$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[1])).toEqual(["10", "9", "8", "7", "6", "5"]);
    // Entry 10 has no tool: its method stands in; times are ISO 8601.
    expect(lines[1]).toMatch(/^2026-01-01T00:00:10\.000Z\s+10\s+agent-1\s+-\s+initialize\s+unknown\s+20 ms\s+-$/);
    expect(lines[2]).toMatch(/^2026-01-01T00:00:09\.000Z\s+9\s+agent-0\s+crm\s+get_customer\s+limited\s+19 ms\s+-$/);
    expect(result.stderr).toContain("there are more");
  });

  it("--limit=N works too; it stops at the last page without asking again", async () => {
    api.fill(7);
    const result = await cli(["audit", "log", "--limit=20", "--json"], env);
    expect(result.code).toBe(0);
    const out = JSON.parse(result.stdout) as { entries: AuditEntry[] };
    expect(Object.keys(out)).toEqual(["entries"]);
    expect(out.entries.map((e) => e.seq)).toEqual([7, 6, 5, 4, 3, 2, 1]);
    expect(out.entries[0]).toEqual(api.entries[6]);
    expect(api.requests.map((r) => r.query.get("limit"))).toEqual(["20", "16"]);
    expect(result.stderr).toBe("");
  });

  it("asks for at most 500 per page (the gateway's maximum) and defaults to 50", async () => {
    api.fill(3);
    await cli(["audit", "log", "--limit", "1200"], env);
    await cli(["audit", "log"], env);
    expect(api.requests.map((r) => r.query.get("limit"))).toEqual(["500", "50"]);
  });

  it("sends every filter as a query parameter, relative times as ISO 8601 computed from now", async () => {
    api.fill(2);
    const result = await cli(
      ["audit", "log", "--consumer", "agent-1", "--server", "crm", "--tool", "get customer", "--status", "denied", "--from", "90m", "--to", "2026-06-01T13:59:00+02:00", "--tenant", "acme"],
      env,
    );
    expect(result.code).toBe(0);
    const query = api.requests[0]!.query;
    expect(Object.fromEntries(query)).toEqual({
      consumer: "agent-1",
      server: "crm",
      tool: "get customer",
      status: "denied",
      from: "2026-06-01T10:30:00.000Z",
      to: "2026-06-01T11:59:00.000Z",
      limit: "50",
      tenant: "acme",
    });
  });

  it("no match is a sentence; a refusal is exit 1 with the gateway's error", async () => {
    expect(await cli(["audit", "log"], env)).toMatchObject({ code: 0, stdout: "no audit entries match\n" });
    const refused = await cli(["audit", "log"], { ...env, MCP_GATEWAY_ADMIN_KEY: "gw_not_the_admin_key" });
    expect(refused).toMatchObject({ code: 1, stdout: "", stderr: expect.stringContaining("unauthenticated (HTTP 401)") });
  });

  it("a bad value is exit 2 and sends nothing", async () => {
    for (const argv of [["--limit", "0"], ["--limit=abc"], ["--status", "fine"], ["--from", "yesterday"], ["--from", "1h", "--to", "2h"]]) {
      expect((await cli(["audit", "log", ...argv], env)).code).toBe(2);
    }
    expect(api.requests).toEqual([]);
  });
});

describe("audit stats", () => {
  it("prints the total, statuses, latency and the top tables; sends the filters", async () => {
    const result = await cli(["audit", "stats", "--server", "crm", "--from", "7d"], env);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("entries  1,234\n");
    expect(result.stdout).toContain("status   ok 1,000  error 100  denied 80  limited 4  unknown 0  unauthenticated 50\n");
    expect(result.stdout).toContain("latency  p50 12 ms  p95 80 ms  p99 210 ms  max 4,012 ms\n");
    expect(result.stdout).toMatch(/SERVER\s+COUNT\ncrm\s+900\nbilling\s+334/);
    expect(result.stdout).toMatch(/SERVER\s+TOOL\s+COUNT\ncrm\s+get_customer\s+700/);
    expect(result.stdout).toMatch(/CONSUMER\s+COUNT\nagent-1\s+1,200/);
    expect(api.requests[0]!.path).toBe("/admin/v1/audit/stats");
    expect(Object.fromEntries(api.requests[0]!.query)).toEqual({ server: "crm", from: "2026-05-25T12:00:00.000Z" });
  });

  it("--json prints the answer; --limit is not one of its options", async () => {
    expect(JSON.parse((await cli(["audit", "stats", "--json"], env)).stdout)).toEqual(api.stats);
    expect((await cli(["audit", "stats", "--limit", "5"], env)).code).toBe(2);
  });
});

describe("audit verify (the gateway's copy)", () => {
  const OK = { type: "result", ok: true, entries: 3, checkpoints: 1, firstSeq: 1, head: { seq: 3, hash: "c".repeat(64) }, lastCheckpoint: { seq: 2, hash: "b".repeat(64) }, uncheckpointed: 1 };

  it("reads the progress as it arrives (a progress bar on an interactive stderr), then the result: exit 0", async () => {
    // The gateway sends the result only once the CLI has drawn the progress: a CLI that waited for the whole answer
    // would never get it.
    const shown = gate();
    api.verify = { steps: [{ write: ndjson({ type: "progress", verified: 1, total: 4 }) }, { write: ndjson({ type: "progress", verified: 2, total: 4 }) }, { wait: shown.promise }, { write: ndjson(OK) }] };
    let stderr = "";
    const result = await cli(["audit", "verify"], env, {
      interactive: true,
      stderr: (t) => {
        stderr += t;
        if (stderr.includes("2 of 4 entries")) shown.open();
      },
    });
    expect(result.code).toBe(0);
    expect(api.requests[0]).toMatchObject({ method: "POST", path: "/admin/v1/audit/verify" });
    expect(api.requests[0]!.headers.accept).toBe("application/x-ndjson");
    expect(stderr).toContain("\r[########----------------------]  25%  verifying: 1 of 4 entries");
    expect(stderr).toContain(" 50%  verifying: 2 of 4 entries");
    expect(stderr.endsWith("\r\x1b[K")).toBe(true);
    expect(result.stdout).toBe(
      [
        "OK  the gateway's audit chain verifies: 3 entries (seq 1-3), 1 signed checkpoint",
        `  head            seq 3  ${"c".repeat(64)}`,
        "  last checkpoint seq 2",
        "  after it        1 entry",
        "",
      ].join("\n"),
    );
  }, 10_000);

  it("draws nothing on a non-interactive stderr; --json prints the result", async () => {
    api.verify = { steps: [{ write: ndjson({ type: "progress", verified: 1, total: 3 }) }, { write: ndjson(OK) }] };
    const result = await cli(["audit", "verify", "--json"], env);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    const { type: _type, ...verdict } = OK;
    expect(JSON.parse(result.stdout)).toEqual(verdict);
  });

  it("a broken chain is exit 1 with the first bad seq, the reason and the message", async () => {
    const failed = { type: "result", ok: false, failure: { seq: 7, reason: "hash-mismatch", message: "seq 7 does not match its hash: a hashed field was edited after it was written" }, entries: 6, checkpoints: 1 };
    api.verify = { steps: [{ write: ndjson({ type: "progress", verified: 6, total: 9 }, failed) }] };
    const result = await cli(["audit", "verify"], env);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe(
      [
        "FAILED  the gateway's audit chain does not verify at seq 7: hash-mismatch",
        "  seq 7 does not match its hash: a hashed field was edited after it was written",
        "  6 entries and 1 checkpoint verified before it",
        "",
      ].join("\n"),
    );
    const json = await cli(["audit", "verify", "--json"], env);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, failure: { seq: 7, reason: "hash-mismatch" } });
  });

  it("an answer cut off before the result is exit 1, whether the connection breaks or the answer just ends", async () => {
    api.verify = { steps: [{ write: ndjson({ type: "progress", verified: 1, total: 9 }) }, { write: '{"type":"res' }, { cut: true }] };
    const cut = await cli(["audit", "verify"], env);
    expect(cut).toMatchObject({ code: 1, stdout: "" });
    expect(cut.stderr).toBe(`mcp-gateway: cannot reach the gateway at ${api.url}/admin/v1/audit/verify: the answer was cut off: the connection was closed\n`);

    api.verify = { steps: [{ write: ndjson({ type: "progress", verified: 1, total: 9 }) }] };
    const ended = await cli(["audit", "verify"], env);
    expect(ended).toMatchObject({ code: 1, stdout: "" });
    expect(ended.stderr).toContain("ended without a result");
  });

  it("the gateway's own failure reported in band is exit 1 with its message, not a verdict", async () => {
    const message = "The verification could not finish (the gateway logged it as abc); nothing is known about the chain — retry";
    api.verify = { steps: [{ write: ndjson({ type: "progress", verified: 1, total: 9 }) }, { write: ndjson({ type: "error", error: { code: "unavailable", message } }) }] };
    const failed = await cli(["audit", "verify"], env);
    expect(failed).toMatchObject({ code: 1, stdout: "" });
    expect(failed.stderr).toContain(message);
  });

  it("a stream that goes silent fails after the idle timeout, one that keeps talking may outlast it", async () => {
    api.verify = { steps: [{ write: ndjson({ type: "progress", verified: 1, total: 9 }) }, { stall: true }] };
    const silent = await cli(["audit", "verify"], env, { timeoutMs: 300 });
    expect(silent.code).toBe(1);
    expect(silent.stderr).toContain("no data for 300 ms: the answer stopped");

    // 12 × 60 ms of regular progress: longer than the 400 ms timeout in all, never silent for that long.
    const steps = Array.from({ length: 12 }, (_, i) => [{ write: ndjson({ type: "progress", verified: i, total: 12 }) }, { sleep: 60 }]).flat();
    api.verify = { steps: [...steps, { write: ndjson(OK) }] };
    const talking = await cli(["audit", "verify"], env, { timeoutMs: 400 });
    expect(talking).toMatchObject({ code: 0, stderr: "" });
  });

  it("a refusal, or an answer that is not NDJSON, is exit 1", async () => {
    api.raw = { status: 403, contentType: "application/json", body: JSON.stringify({ error: { code: "forbidden", message: "this key does not have the admin role" } }) };
    expect(await cli(["audit", "verify"], env)).toMatchObject({ code: 1, stderr: "mcp-gateway: the gateway refused: forbidden (HTTP 403): this key does not have the admin role\n" });
    api.raw = { status: 200, contentType: "text/html", body: "<html>login</html>\n" };
    const html = await cli(["audit", "verify"], env);
    expect(html.code).toBe(1);
    expect(html.stderr).toContain("HTTP 200: a line of the answer is not JSON (text/html)");
  });

  it("never prints the admin key, even when the gateway echoes it", async () => {
    api.verify = { steps: [{ write: ndjson({ type: "result", ok: false, failure: { seq: 1, reason: "malformed", message: `key ${AUDIT_ADMIN_KEY}` }, entries: 0, checkpoints: 0 }) }] };
    const result = await cli(["audit", "verify"], env);
    expect(result.stdout).toContain("key [admin key]");
    expect(result.stdout + result.stderr).not.toContain(AUDIT_ADMIN_KEY);
  });
});

/** A real export (src/audit) of `count` entries with checkpoints every 4, as the lines of the file. */
async function exportOf(count: number, options: { head?: "header" | "none"; checkpointEvery?: number } = {}): Promise<{ lines: string[]; chain: AuditEntry[]; checkpoints: AuditCheckpoint[] }> {
  const chain = buildChain(count);
  const every = options.checkpointEvery ?? 4;
  const checkpoints = chain.filter((e) => e.seq % every === 0).map((e) => checkpointOf(e));
  const lines: string[] = [];
  const head = options.head === "none" ? null : headOf(chain[chain.length - 1]!);
  for await (const line of exportLines({ tenant: TENANT, entries: chain, checkpoints, head, exportedAt: NOW })) lines.push(line);
  return { lines, chain, checkpoints };
}
const fileOf = (lines: string[]) => `${lines.join("\n")}\n`;
const entryLine = (lines: string[], seq: number) => lines.findIndex((l) => l.startsWith('{"type":"entry"') && (JSON.parse(l) as { seq: number }).seq === seq);

describe("audit verify --file (offline)", () => {
  /** No URL, no admin key, and any network use fails the test. */
  const offlineEnv: Record<string, string> = {};
  const noNetwork = { fetch: (() => Promise.reject(new Error("the network was used"))) as typeof fetch };
  const verify = (file: string, ...rest: string[]) => cli(["audit", "verify", "--file", file, "--public-key", PUBLIC_KEY, ...rest], offlineEnv, noNetwork);

  it("a good export verifies: exit 0, the head to keep for next time", async () => {
    const { lines, chain } = await exportOf(12);
    writeFileSync(join(dir, "audit.jsonl"), fileOf(lines));
    const result = await verify("audit.jsonl");
    expect(result.code).toBe(0);
    const head = chain[11]!.hash;
    expect(result.stdout).toBe(
      [
        "OK  the audit export audit.jsonl verifies: 12 entries (seq 1-12), 3 signed checkpoints",
        `  head            seq 12  ${head}`,
        "  last checkpoint seq 12",
        "  after it        0 entries",
        `  Keep the head to check the next export against it: --head 12:${head}`,
        "",
      ].join("\n"),
    );
    expect(result.stderr).toBe("");
    expect(api.requests).toEqual([]);
    const json = await verify("audit.jsonl", "--json");
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, entries: 12, checkpoints: 3, head: { seq: 12, hash: head }, header: { tenant: TENANT } });
  });

  it("an edited field is exit 1 naming that seq, the reason and the line", async () => {
    const { lines } = await exportOf(12);
    const index = entryLine(lines, 7);
    const edited = [...lines];
    const value = JSON.parse(lines[index]!) as Record<string, unknown>;
    value.consumer = "someone-else";
    edited[index] = JSON.stringify(value);
    writeFileSync(join(dir, "edited.jsonl"), fileOf(edited));
    const result = await verify("edited.jsonl");
    expect(result.code).toBe(1);
    expect(result.stdout).toBe(
      [
        "FAILED  the audit export edited.jsonl does not verify at seq 7: hash-mismatch",
        "  seq 7 does not match its hash: a hashed field was edited after it was written",
        `  line ${index + 1} of edited.jsonl; 6 entries and 1 checkpoint verified before it`,
        "",
      ].join("\n"),
    );
  });

  it("a file whose last lines were removed is exit 1: the header's head, or a checkpoint left behind, shows it", async () => {
    const { lines } = await exportOf(12);
    writeFileSync(join(dir, "short.jsonl"), fileOf(lines.slice(0, -3)));
    const short = await verify("short.jsonl");
    expect(short.code).toBe(1);
    expect(short.stdout).toMatch(/^FAILED {2}the audit export short\.jsonl does not verify at seq 11: missing-tail\n/);

    // No head in the header (a whole-chain export), the last entries deleted but the checkpoint that covers them kept.
    const open = await exportOf(12, { head: "none" });
    const tailless = open.lines.filter((l) => !(l.startsWith('{"type":"entry"') && (JSON.parse(l) as { seq: number }).seq > 9));
    writeFileSync(join(dir, "tailless.jsonl"), fileOf(tailless));
    const result = await verify("tailless.jsonl");
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("does not verify at seq 10: missing-tail");
    expect(result.stdout).toContain("a signed checkpoint covers seq 12 but the entries end at seq 9");
  });

  it("--head catches a tail removed after the last checkpoint, which the file alone cannot show", async () => {
    const { lines, chain } = await exportOf(10, { head: "none" });
    const cut = lines.filter((l) => !(l.startsWith('{"type":"entry"') && (JSON.parse(l) as { seq: number }).seq > 8));
    writeFileSync(join(dir, "cut.jsonl"), fileOf(cut));
    const alone = await verify("cut.jsonl");
    expect(alone.code).toBe(0);
    const withHead = await verify("cut.jsonl", "--head", `10:${chain[9]!.hash}`);
    expect(withHead.code).toBe(1);
    expect(withHead.stdout).toContain("does not verify at seq 9: missing-tail");
  });

  it("the wrong public key is exit 1; a malformed key and an unreadable file are exit 2", async () => {
    const { lines } = await exportOf(4);
    writeFileSync(join(dir, "audit.jsonl"), fileOf(lines));
    const wrong = await cli(["audit", "verify", "--file", "audit.jsonl", "--public-key", OTHER_PUBLIC_KEY], offlineEnv, noNetwork);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toMatch(/^FAILED {2}the audit export audit\.jsonl does not verify: key-mismatch\n/);

    const malformed = await cli(["audit", "verify", "--file", "audit.jsonl", "--public-key", "not-a-key"], offlineEnv, noNetwork);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toMatch(/^mcp-gateway: --public-key: the public key must be base64url of a raw 32-byte Ed25519 key\n/);

    expect(await verify("missing.jsonl")).toMatchObject({ code: 2, stdout: "", stderr: "mcp-gateway: cannot read missing.jsonl: no such file or directory\n" });
    mkdirSync(join(dir, "a-directory"));
    expect(await verify("a-directory")).toMatchObject({ code: 2, stdout: "", stderr: "mcp-gateway: cannot read a-directory: it is a directory\n" });
  });

  it("a file that is not an export is exit 1 (it does not verify), not a crash", async () => {
    writeFileSync(join(dir, "notes.txt"), "hello\n");
    const result = await verify("notes.txt");
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("does not verify: malformed");
    writeFileSync(join(dir, "empty.jsonl"), "");
    expect((await verify("empty.jsonl")).code).toBe(1);
  });

  it("shows progress by bytes read on an interactive stderr, nothing otherwise", async () => {
    const { lines } = await exportOf(10_001, { checkpointEvery: 1000 });
    writeFileSync(join(dir, "big.jsonl"), fileOf(lines));
    const quiet = await verify("big.jsonl");
    expect(quiet).toMatchObject({ code: 0, stderr: "" });
    const loud = await cli(["audit", "verify", "--file", "big.jsonl", "--public-key", PUBLIC_KEY], offlineEnv, { ...noNetwork, interactive: true });
    expect(loud.code).toBe(0);
    expect(loud.stderr).toMatch(/^\r\[[#-]{30}\] +\d+% {2}[\d.]+ MB of [\d.]+ MB, 10,000 entries\x1b\[K\r\x1b\[K$/);
    expect(loud.stdout).toContain("10,001 entries");
  });

  it("refuses --url/--admin-key with --file, and --public-key or --head without it", async () => {
    const both = await cli(["audit", "verify", "--file", "x.jsonl", "--public-key", PUBLIC_KEY, "--url", api.url], env);
    expect(both).toMatchObject({ code: 2, stderr: expect.stringMatching(/^mcp-gateway: --file verifies offline: --url is not used\n/) });
    const stray = await cli(["audit", "verify", "--public-key", PUBLIC_KEY], env);
    expect(stray).toMatchObject({ code: 2, stderr: expect.stringMatching(/^mcp-gateway: --public-key goes with --file/) });
    expect(api.requests).toEqual([]);
  });
});

describe("audit export", () => {
  const multibyte = Buffer.from('{"note":"café ☕ 😀"}\n', "utf8");
  /** The chunks split a multi-byte character: the file must still hold the very bytes sent. */
  const splitChunks = [multibyte.subarray(0, 13), multibyte.subarray(13, 22), multibyte.subarray(22)];

  it("--out writes exactly the streamed bytes, then a summary on stderr", async () => {
    const { lines } = await exportOf(8);
    const body = Buffer.concat([Buffer.from(fileOf(lines)), ...splitChunks]);
    api.exportScript = { steps: [{ write: body.subarray(0, 1000) }, { write: body.subarray(1000, 1001) }, { write: body.subarray(1001) }] };
    const result = await cli(["audit", "export", "--out", "audit.jsonl", "--from-seq", "1", "--to-seq", "8"], env);
    expect(result.code).toBe(0);
    expect(readFileSync(join(dir, "audit.jsonl")).equals(body)).toBe(true);
    expect(readdirSync(dir)).toEqual(["audit.jsonl"]);
    expect(Object.fromEntries(api.requests[0]!.query)).toEqual({ format: "jsonl", fromSeq: "1", toSeq: "8" });
    expect(api.requests[0]!.headers.accept).toBe("application/x-ndjson");
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe(`wrote audit.jsonl: ${lines.length + 1} lines, ${(body.length / 1024).toFixed(1)} KB; tenant acme, entries 1-8\nverify it offline: mcp-gateway audit verify --file audit.jsonl --public-key KEY\n`);
  });

  it("what it downloads verifies offline", async () => {
    const { lines } = await exportOf(9);
    api.exportScript = { steps: lines.map((l) => ({ write: `${l}\n` })) };
    expect((await cli(["audit", "export", "--out", "dl.jsonl", "--json"], env)).stdout).toContain('"lines": 12');
    const verified = await cli(["audit", "verify", "--file", "dl.jsonl", "--public-key", PUBLIC_KEY], {});
    expect(verified.code).toBe(0);
  });

  it("without --out streams the bytes to stdout; --format csv", async () => {
    api.exportScript = { steps: splitChunks.map((c) => ({ write: c })) };
    const jsonl = await cli(["audit", "export"], env);
    expect(jsonl).toMatchObject({ code: 0, stdout: "", stderr: "" });
    expect(jsonl.bytes.equals(multibyte)).toBe(true);

    api.exportScript = { steps: [{ write: "time,seq\r\n2026-01-01T00:00:01.000Z,1\r\n" }] };
    const csv = await cli(["audit", "export", "--format", "csv", "--out", "audit.csv"], env);
    expect(csv.code).toBe(0);
    expect(readFileSync(join(dir, "audit.csv"), "utf8")).toBe("time,seq\r\n2026-01-01T00:00:01.000Z,1\r\n");
    expect(api.requests[1]!.query.get("format")).toBe("csv");
    expect(api.requests[1]!.headers.accept).toBe("text/csv");
  });

  it("a download cut mid-stream is exit 1 and leaves no file, not even a temporary one; an earlier file is kept", async () => {
    writeFileSync(join(dir, "audit.jsonl"), "the previous export\n");
    api.exportScript = { steps: [{ write: '{"type":"header"}\n' }, { write: '{"type":"entry","seq":1' }, { cut: true }] };
    const result = await cli(["audit", "export", "--out", "audit.jsonl"], env);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `mcp-gateway: cannot reach the gateway at ${api.url}/admin/v1/audit/export?format=jsonl: the answer was cut off: the connection was closed\nmcp-gateway: audit.jsonl was not written\n`,
    );
    expect(readdirSync(dir)).toEqual(["audit.jsonl"]);
    expect(readFileSync(join(dir, "audit.jsonl"), "utf8")).toBe("the previous export\n");

    api.exportScript = { steps: [{ write: "{}\n" }, { cut: true }] };
    expect((await cli(["audit", "export", "--out", "new.jsonl"], env)).code).toBe(1);
    expect(readdirSync(dir)).toEqual(["audit.jsonl"]);
  });

  it("a refusal, or an answer of another type, is exit 1 with no file", async () => {
    api.raw = { status: 404, contentType: "application/json", body: JSON.stringify({ error: { code: "not_found", message: "no audit trail" } }) };
    expect(await cli(["audit", "export", "--out", "a.jsonl"], env)).toMatchObject({ code: 1, stderr: "mcp-gateway: the gateway refused: not_found (HTTP 404): no audit trail\nmcp-gateway: a.jsonl was not written\n" });
    api.raw = undefined;
    api.exportScript = { contentType: "text/html", steps: [{ write: "<html></html>" }] };
    const html = await cli(["audit", "export", "--out", "a.jsonl"], env);
    expect(html.code).toBe(1);
    expect(html.stderr).toContain("expected application/x-ndjson, got text/html");
    expect(readdirSync(dir)).toEqual([]);
  });

  it("an --out that cannot be written is exit 2 before anything is asked", async () => {
    expect(await cli(["audit", "export", "--out", "no/such/dir/a.jsonl"], env)).toMatchObject({ code: 2, stderr: "mcp-gateway: cannot write no/such/dir/a.jsonl: no such file or directory\n" });
    mkdirSync(join(dir, "d"));
    expect(await cli(["audit", "export", "--out", "d"], env)).toMatchObject({ code: 2, stderr: "mcp-gateway: cannot write d: it is a directory\n" });
    expect(await cli(["audit", "export", "--format", "xml"], env)).toMatchObject({ code: 2 });
    expect(api.requests).toEqual([]);
  });
});

describe("the installed bin", () => {
  it("verifies an export offline as a process: no URL, no admin key", async () => {
    const { lines } = await exportOf(6);
    writeFileSync(join(dir, "audit.jsonl"), fileOf(lines));
    const tampered = [...lines];
    tampered[entryLine(lines, 3)] = tampered[entryLine(lines, 3)]!.replace(/"latencyMs":\d+/, '"latencyMs":99999');
    writeFileSync(join(dir, "tampered.jsonl"), fileOf(tampered));
    const run = (file: string) => {
      const child = spawn(process.execPath, [BIN, "audit", "verify", "--file", file, "--public-key", PUBLIC_KEY], { env: { PATH: process.env.PATH ?? "" }, cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (t: string) => (stdout += t));
      child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
      return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => child.once("close", (code) => resolve({ code: code ?? -1, stdout, stderr })));
    };
    const good = await run("audit.jsonl");
    expect(good).toMatchObject({ code: 0, stderr: "" });
    expect(good.stdout).toMatch(/^OK {2}the audit export audit\.jsonl verifies: 6 entries \(seq 1-6\), 1 signed checkpoint\n/);
    const bad = await run("tampered.jsonl");
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain("does not verify at seq 3: hash-mismatch");
  });
});
