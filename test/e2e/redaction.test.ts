/**
 * Redaction end to end: the real Worker, connector and @modelcontextprotocol/server-everything echoing personal
 * data back, with rules applied through the admin API while the stack runs. Responses are rewritten before the
 * agent sees them, requests before the upstream does, images pass through byte for byte or are replaced as the
 * rule says, and no raw personal data reaches D1.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/auth/secrets.ts";
import { EVERYTHING_SERVER, rawPost, startStack, type Stack } from "./stack.ts";

const SSN = "123-45-6789";
const CARD = "4111 1111 1111 1111";
const EMAIL = "jane.doe@example.com";
const ORDER = "4111 1111 1111 1112"; // Luhn-invalid: an order number, left alone

let stack: Stack;
let version = 0;

beforeAll(async () => {
  stack = await startStack(() => [EVERYTHING_SERVER]);
}, 120_000);

afterAll(async () => {
  await stack?.dispose();
});

/** Applies the e2e tenant's file with these redaction rules through the admin API; waits until it is live. */
async function applyRedaction(rules: unknown[]): Promise<void> {
  const document = {
    tenant: "e2e",
    auth: {
      keys: [
        { id: "e2e-key", keyHash: await sha256Hex(stack.apiKey), name: "e2e agent", consumerId: "e2e-agent", roles: ["reader"] },
        { id: "e2e-admin", keyHash: await sha256Hex(stack.adminKey), name: "e2e admin", consumerId: "e2e-admin", roles: ["admin"] },
      ],
    },
    servers: [{ id: "everything" }],
    policies: [{ id: "e2e-allow-all", roles: ["reader"], rules: [{ action: "allow" }] }],
    redaction: { rules },
  };
  const response = await fetch(new URL("/admin/v1/config", stack.url), {
    method: "PUT",
    headers: { authorization: `Bearer ${stack.adminKey}`, "content-type": "application/json" },
    body: JSON.stringify(document),
  });
  expect(response.status).toBe(200);
  version = ((await response.json()) as { version: number }).version;
  // The per-isolate config cache re-checks once a second.
  await new Promise((resolve) => setTimeout(resolve, 1_500));
}

async function call(name: string, args: Record<string, unknown>) {
  const { messages } = await rawPost(stack, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name, arguments: args } }));
  return messages[0];
}

describe("redaction through the real stack", () => {
  it("rewrites what server-everything echoes back before the agent sees it, leaving near-misses alone", async () => {
    await applyRedaction([{ id: "pii-out", servers: ["everything"], directions: ["response"], detectors: ["ssn", "card", "email"], actions: { card: "partial" } }]);
    const answer = await call("everything__echo", { message: `ssn ${SSN}, card ${CARD}, mail ${EMAIL}, order ${ORDER}` });
    const text = answer.result.content[0].text as string;
    expect(text).toContain("ssn [REDACTED:ssn]");
    expect(text).toContain("card **** **** **** 1111");
    expect(text).toContain("mail [REDACTED:email]");
    expect(text).toContain(`order ${ORDER}`);
    for (const raw of [SSN, CARD, EMAIL]) expect(text).not.toContain(raw);
  });

  it("rewrites arguments before the upstream receives them (the echo shows what it got)", async () => {
    await applyRedaction([{ id: "pii-in", tools: ["echo"], directions: ["request"], detectors: ["ssn"], action: "hash" }]);
    const first = (await call("everything__echo", { message: `a ${SSN}` })).result.content[0].text as string;
    const second = (await call("everything__echo", { message: `b ${SSN}` })).result.content[0].text as string;
    expect(first).not.toContain(SSN);
    // Without REDACTION_HMAC_KEY the hash action masks (fail closed); with it, equal values correlate.
    const tag = /\[(?:HASH:ssn:[0-9a-f]{16}|REDACTED:ssn)\]/.exec(first)?.[0];
    expect(tag).toBeDefined();
    expect(second).toContain(tag as string);
  });

  it("passes an image through byte for byte, or replaces it with a text block when the rule drops binaries", async () => {
    const imageOf = async () => (await call("everything__get-tiny-image", {})).result.content.find((block: { type: string }) => block.type === "image");
    await applyRedaction([{ id: "echo-only", tools: ["echo"], directions: ["response"], detectors: ["ssn"] }]);
    const untouched = await imageOf();
    await applyRedaction([{ id: "pii-out", directions: ["response"], detectors: ["ssn", "card", "phone", "ip", "secret"] }]);
    const scanned = await imageOf();
    expect(untouched.data.length).toBeGreaterThan(100);
    expect(scanned).toEqual(untouched);
    await applyRedaction([{ id: "no-binaries", directions: ["response"], binary: "drop" }]);
    const dropped = (await call("everything__get-tiny-image", {})).result.content;
    expect(dropped.filter((block: { type: string }) => block.type === "image")).toEqual([]);
    expect(dropped).toContainEqual({ type: "text", text: "[REDACTED:image]" });
  });

  // Every table, the audit chain's copy of each call above included (request-only, response-only and audit rules).
  it("leaves no raw personal data anywhere in D1", async () => {
    expect(version).toBeGreaterThan(1);
    const tables = (await stack.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name != 'd1_migrations'")).map(
      (r) => r.name as string,
    );
    expect(tables).toEqual(expect.arrayContaining(["tenants", "api_keys", "servers"]));
    const dump = JSON.stringify(await stack.query(tables.map((table) => `SELECT * FROM "${table}"`).join("; ")));
    expect(dump).toContain("e2e-admin");
    for (const raw of [SSN, CARD, EMAIL, SSN.replaceAll("-", "")]) expect(dump).not.toContain(raw);
  });
});
