/**
 * The API key lifecycle end to end through /mcp and /admin/v1 inside workerd with the real local D1: create →
 * use → list (lastUsedAt, status; never a key or a digest), rotation with and without a grace period (time driven
 * by rewriting `previous_expires_at` in D1, not by waiting), rotating during a grace, revocation ending a grace,
 * a config apply leaving a grace alone, a stored digest refused as a credential, the once-a-minute last-used write,
 * and the `gw_` prefix and entropy of generated keys.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { keyStatus, lastUseIsStale, MAX_ROTATION_GRACE_SECONDS } from "../../src/auth/principal.ts";
import { API_KEY_PREFIX, generateSecret, sha256Hex } from "../../src/auth/secrets.ts";
import { adminCall, mcpPost, PLATFORM_TOKEN, rpcRequest, seedTenant } from "./fixtures.ts";

const ADMIN = "/admin/v1";
const KEY_SHAPE = /^gw_[A-Za-z0-9_-]{43}$/;

/** A tenant whose admin key (from its config) issues API keys with the reader role. */
async function tenant() {
  const adminKey = `gw_${crypto.randomUUID().replace(/-/g, "")}`;
  const seeded = await seedTenant({ keys: [{ id: "admin", key: adminKey, roles: ["admin"] }] });
  return { tenant: seeded.tenant, adminKey };
}

/** An API key created through the admin API. */
async function createKey(adminKey: string, id: string, roles = ["reader"]): Promise<string> {
  const created = await adminCall("POST", `${ADMIN}/keys`, adminKey, { id, name: id, consumerId: "agent-1", roles });
  expect(created.status).toBe(201);
  return created.body.key;
}

/** What /mcp answers a tools/list with this key: the status and, on 401, the challenge. */
async function mcpUse(apiKey: string): Promise<{ status: number; challenge: string | null }> {
  const response = await mcpPost(rpcRequest("tools/list"), apiKey);
  await response.body?.cancel();
  return { status: response.status, challenge: response.headers.get("www-authenticate") };
}

const mcpStatus = async (apiKey: string) => (await mcpUse(apiKey)).status;

interface KeyColumns {
  key_hash: string;
  previous_key_hash: string | null;
  previous_expires_at: number | null;
  last_used_at: number | null;
}

async function row(tenantId: string, id: string): Promise<KeyColumns> {
  const found = await env.DB.prepare("SELECT key_hash, previous_key_hash, previous_expires_at, last_used_at FROM api_keys WHERE tenant_id = ? AND id = ?")
    .bind(tenantId, id)
    .first<KeyColumns>();
  if (!found) throw new Error(`no key ${id}`);
  return found;
}

/** Waits for the last-used write that runs after the answer (waitUntil). */
async function lastUsedWritten(tenantId: string, id: string, after: number | null = null): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const { last_used_at } = await row(tenantId, id);
    if (last_used_at !== null && last_used_at !== after) return last_used_at;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error("last_used_at was not written");
}

/** Ends a running grace as if its time had passed. */
async function endGrace(tenantId: string, id: string): Promise<void> {
  await env.DB.prepare("UPDATE api_keys SET previous_expires_at = ? WHERE tenant_id = ? AND id = ?").bind(Date.now() - 1, tenantId, id).run();
}

async function listed(adminKey: string, id: string) {
  const answer = await adminCall("GET", `${ADMIN}/keys`, adminKey);
  expect(answer.status).toBe(200);
  return { text: answer.text, key: answer.body.keys.find((k: { id: string }) => k.id === id) };
}

describe("create, use, list", () => {
  it("a used key lists lastUsedAt and its status, never the key or any digest", async () => {
    const t = await tenant();
    const key = await createKey(t.adminKey, "bot");
    expect(key).toMatch(KEY_SHAPE);
    const before = await listed(t.adminKey, "bot");
    expect(before.key).toMatchObject({ status: "active", lastUsedAt: null, previousExpiresAt: null });

    const usedAt = Date.now();
    expect(await mcpStatus(key)).toBe(200);
    const written = await lastUsedWritten(t.tenant, "bot");
    expect(written).toBeGreaterThanOrEqual(usedAt - 5);

    const after = await listed(t.adminKey, "bot");
    expect(after.key).toMatchObject({ status: "active", lastUsedAt: new Date(written).toISOString(), previousExpiresAt: null });
    // Rotate with a grace so that a previous digest exists too; neither digest nor either key is ever listed.
    const rotated = await adminCall("POST", `${ADMIN}/keys/bot/rotate`, t.adminKey, { graceSeconds: 600 });
    const final = await listed(t.adminKey, "bot");
    const columns = await row(t.tenant, "bot");
    for (const secret of [key, rotated.body.key, columns.key_hash, columns.previous_key_hash as string, await sha256Hex(key)]) {
      expect(final.text).not.toContain(secret);
    }
    expect(Object.keys(final.key).sort()).toEqual(
      ["consumerId", "createdAt", "enabled", "expiresAt", "id", "lastUsedAt", "name", "previousExpiresAt", "revokedAt", "roles", "source", "status"].sort(),
    );
  });

  it("last_used_at is written at most once a minute per key, not on every call", async () => {
    const t = await tenant();
    const key = await createKey(t.adminKey, "busy");
    expect(await mcpStatus(key)).toBe(200);
    const first = await lastUsedWritten(t.tenant, "busy");
    // Two more calls within the minute: the column keeps the first value.
    expect(await mcpStatus(key)).toBe(200);
    expect(await mcpStatus(key)).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await row(t.tenant, "busy")).last_used_at).toBe(first);
    // A minute later (the row made older instead of waiting) the next use writes again.
    const old = Date.now() - 61_000;
    await env.DB.prepare("UPDATE api_keys SET last_used_at = ? WHERE tenant_id = ? AND id = ?").bind(old, t.tenant, "busy").run();
    expect(await mcpStatus(key)).toBe(200);
    expect(await lastUsedWritten(t.tenant, "busy", old)).toBeGreaterThan(old + 60_000);
  });

  it("the once-a-minute rule and the listed status, as pure functions", () => {
    expect(lastUseIsStale(null, 1_000_000)).toBe(true);
    expect(lastUseIsStale(1_000_000 - 59_999, 1_000_000)).toBe(false);
    expect(lastUseIsStale(1_000_000 - 60_000, 1_000_000)).toBe(true);
    const key = { enabled: true, revokedAt: null, expiresAt: null, previousExpiresAt: null };
    expect(keyStatus(key, 10)).toBe("active");
    expect(keyStatus({ ...key, previousExpiresAt: 11 }, 10)).toBe("grace");
    expect(keyStatus({ ...key, previousExpiresAt: 10 }, 10)).toBe("active");
    expect(keyStatus({ ...key, previousExpiresAt: 11, expiresAt: 10 }, 10)).toBe("expired");
    expect(keyStatus({ ...key, previousExpiresAt: 11, enabled: false }, 10)).toBe("disabled");
    expect(keyStatus({ ...key, enabled: false, revokedAt: 5 }, 10)).toBe("revoked");
  });

  it("a refused key is not marked as used", async () => {
    const t = await tenant();
    const key = await createKey(t.adminKey, "refused");
    expect((await adminCall("DELETE", `${ADMIN}/keys/refused`, t.adminKey)).status).toBe(200);
    expect(await mcpStatus(key)).toBe(401);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await row(t.tenant, "refused")).last_used_at).toBeNull();
    expect((await listed(t.adminKey, "refused")).key).toMatchObject({ status: "revoked", lastUsedAt: null });
  });

  it("list status shows expired keys", async () => {
    const t = await tenant();
    await createKey(t.adminKey, "short");
    await env.DB.prepare("UPDATE api_keys SET expires_at = ? WHERE tenant_id = ? AND id = ?").bind(Date.now() - 1000, t.tenant, "short").run();
    expect((await listed(t.adminKey, "short")).key.status).toBe("expired");
  });
});

describe("rotation", () => {
  it("with a grace: old and new keys both work as the same key until the grace ends, then the old one is refused", async () => {
    const t = await tenant();
    const old = await createKey(t.adminKey, "rot", ["admin"]);
    const asked = Date.now();
    const rotated = await adminCall("POST", `${ADMIN}/keys/rot/rotate`, t.adminKey, { graceSeconds: 3600 });
    expect(rotated.status).toBe(200);
    expect(rotated.body.key).toMatch(KEY_SHAPE);
    expect(rotated.body).toMatchObject({ id: "rot", status: "grace", enabled: true });
    const until = Date.parse(rotated.body.previousExpiresAt);
    expect(until).toBeGreaterThanOrEqual(asked + 3600_000);
    expect(until).toBeLessThanOrEqual(Date.now() + 3600_000);
    const columns = await row(t.tenant, "rot");
    expect(columns).toMatchObject({ previous_key_hash: await sha256Hex(old), previous_expires_at: until, key_hash: await sha256Hex(rotated.body.key) });

    expect(await mcpStatus(old)).toBe(200);
    expect(await mcpStatus(rotated.body.key)).toBe(200);
    // The same principal either way.
    const viaOld = await adminCall("GET", `${ADMIN}/whoami`, old);
    const viaNew = await adminCall("GET", `${ADMIN}/whoami`, rotated.body.key);
    expect(viaOld.body).toEqual(viaNew.body);
    expect(viaOld.body).toMatchObject({ tenant: t.tenant, keyId: "rot", consumer: "agent-1" });
    expect((await listed(t.adminKey, "rot")).key).toMatchObject({ status: "grace", previousExpiresAt: rotated.body.previousExpiresAt });

    await endGrace(t.tenant, "rot");
    const refused = await mcpUse(old);
    expect(refused.status).toBe(401);
    expect(refused.challenge).toContain('error="invalid_token"');
    expect(refused.challenge).toContain("grace period has ended");
    expect((await adminCall("GET", `${ADMIN}/whoami`, old)).status).toBe(401);
    expect(await mcpStatus(rotated.body.key)).toBe(200);
    expect((await listed(t.adminKey, "rot")).key).toMatchObject({ status: "active", previousExpiresAt: null });
  });

  it("without a grace (no body, an empty body or 0) the old key is refused at once", async () => {
    const t = await tenant();
    for (const body of [undefined, {}, { graceSeconds: 0 }]) {
      const id = `now-${Math.random().toString(36).slice(2, 8)}`;
      const old = await createKey(t.adminKey, id);
      const rotated = await adminCall("POST", `${ADMIN}/keys/${id}/rotate`, t.adminKey, body);
      expect(rotated.status).toBe(200);
      expect(rotated.body).toMatchObject({ status: "active", previousExpiresAt: null });
      expect(await mcpStatus(old)).toBe(401);
      expect(await mcpStatus(rotated.body.key)).toBe(200);
      expect(await row(t.tenant, id)).toMatchObject({ previous_key_hash: null, previous_expires_at: null });
    }
  });

  it("rotating again during a grace replaces it: the oldest key stops, the one it replaced gets the new grace", async () => {
    const t = await tenant();
    const first = await createKey(t.adminKey, "twice");
    const second = (await adminCall("POST", `${ADMIN}/keys/twice/rotate`, t.adminKey, { graceSeconds: 3600 })).body.key;
    const third = await adminCall("POST", `${ADMIN}/keys/twice/rotate`, t.adminKey, { graceSeconds: 60 });
    expect(third.status).toBe(200);
    expect(await mcpStatus(first)).toBe(401);
    expect(await mcpStatus(second)).toBe(200);
    expect(await mcpStatus(third.body.key)).toBe(200);
    expect(Date.parse(third.body.previousExpiresAt)).toBeLessThanOrEqual(Date.now() + 60_000);
    // And a rotation without grace ends the running one.
    const fourth = await adminCall("POST", `${ADMIN}/keys/twice/rotate`, t.adminKey);
    expect(await mcpStatus(third.body.key)).toBe(401);
    expect(await mcpStatus(fourth.body.key)).toBe(200);
  });

  it("revoking a key ends its grace: neither secret works", async () => {
    const t = await tenant();
    const old = await createKey(t.adminKey, "gone");
    const rotated = await adminCall("POST", `${ADMIN}/keys/gone/rotate`, t.adminKey, { graceSeconds: 3600 });
    expect(await mcpStatus(old)).toBe(200);
    expect((await adminCall("DELETE", `${ADMIN}/keys/gone`, t.adminKey)).status).toBe(200);
    expect(await mcpStatus(old)).toBe(401);
    expect(await mcpStatus(rotated.body.key)).toBe(401);
    expect(await row(t.tenant, "gone")).toMatchObject({ previous_key_hash: null, previous_expires_at: null });
    expect((await listed(t.adminKey, "gone")).key).toMatchObject({ status: "revoked", previousExpiresAt: null });
  });

  it("a config apply neither ends nor revives a grace", async () => {
    const t = await tenant();
    const old = await createKey(t.adminKey, "kept");
    const rotated = await adminCall("POST", `${ADMIN}/keys/kept/rotate`, t.adminKey, { graceSeconds: 3600 });
    const before = await row(t.tenant, "kept");
    const file = `tenant: ${t.tenant}\npolicies:\n  - id: readers\n    roles: [reader]\n    rules:\n      - action: allow\n`;
    expect((await adminCall("PUT", `${ADMIN}/config?tenant=${t.tenant}`, PLATFORM_TOKEN, file)).status).toBe(200);
    expect(await row(t.tenant, "kept")).toEqual(before);
    expect(await mcpStatus(old)).toBe(200);
    expect(await mcpStatus(rotated.body.key)).toBe(200);
    await endGrace(t.tenant, "kept");
    expect((await adminCall("PUT", `${ADMIN}/config?tenant=${t.tenant}`, PLATFORM_TOKEN, file)).status).toBe(200);
    expect(await mcpStatus(old)).toBe(401);
  });

  it("graceSeconds must be a whole number of seconds up to 7 days", async () => {
    const t = await tenant();
    await createKey(t.adminKey, "bounds");
    for (const body of [{ graceSeconds: -1 }, { graceSeconds: 1.5 }, { graceSeconds: MAX_ROTATION_GRACE_SECONDS + 1 }, { graceSeconds: "1h" }, { grace: 60 }]) {
      const answer = await adminCall("POST", `${ADMIN}/keys/bounds/rotate`, t.adminKey, body);
      expect({ body, status: answer.status, code: answer.body?.error?.code }).toEqual({ body, status: 400, code: "bad_request" });
    }
    const longest = await adminCall("POST", `${ADMIN}/keys/bounds/rotate`, t.adminKey, { graceSeconds: MAX_ROTATION_GRACE_SECONDS });
    expect(longest.status).toBe(200);
    expect(MAX_ROTATION_GRACE_SECONDS).toBe(604_800);
  });
});

describe("what a key is", () => {
  it("a stored digest presented as the key is refused (it is hashed again), current or rotated-out", async () => {
    const t = await tenant();
    const old = await createKey(t.adminKey, "digest");
    await adminCall("POST", `${ADMIN}/keys/digest/rotate`, t.adminKey, { graceSeconds: 3600 });
    const columns = await row(t.tenant, "digest");
    expect(columns.key_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(columns.previous_key_hash).toBe(await sha256Hex(old));
    for (const digest of [columns.key_hash, columns.previous_key_hash as string, columns.key_hash.toUpperCase()]) {
      const refused = await mcpUse(digest);
      expect(refused.status).toBe(401);
      expect(refused.challenge).toContain("The API key is not valid");
      expect((await adminCall("GET", `${ADMIN}/whoami`, digest)).status).toBe(401);
    }
    expect((await row(t.tenant, "digest")).last_used_at).toBeNull();
  });

  it("generated keys carry the gw_ prefix and 256 random bits (≥ 128)", async () => {
    const keys = Array.from({ length: 2000 }, () => generateSecret(API_KEY_PREFIX));
    expect(new Set(keys).size).toBe(keys.length);
    let ones = 0;
    let bits = 0;
    for (const key of keys) {
      expect(key).toMatch(KEY_SHAPE);
      const bytes = Uint8Array.from(atob(key.slice(3).replace(/-/g, "+").replace(/_/g, "/") + "="), (ch) => ch.charCodeAt(0));
      expect(bytes.length).toBe(32); // 256 bits from crypto.getRandomValues
      for (const byte of bytes) for (let b = 0; b < 8; b++) ones += (byte >> b) & 1;
      bits += bytes.length * 8;
    }
    // Unbiased bits: within a generous 6 standard deviations of half (σ = √bits / 2).
    expect(Math.abs(ones - bits / 2)).toBeLessThan(6 * (Math.sqrt(bits) / 2));
    // Every bit position varies across keys (no stuck bits shrinking the space).
    const positions = new Set<number>();
    for (const key of keys.slice(0, 200)) {
      const bytes = Uint8Array.from(atob(key.slice(3).replace(/-/g, "+").replace(/_/g, "/") + "="), (ch) => ch.charCodeAt(0));
      bytes.forEach((byte, i) => {
        for (let b = 0; b < 8; b++) if ((byte >> b) & 1) positions.add(i * 8 + b);
      });
    }
    expect(positions.size).toBe(256);
    // And the admin API issues exactly these.
    const t = await tenant();
    expect(await createKey(t.adminKey, "shape")).toMatch(KEY_SHAPE);
    expect((await adminCall("POST", `${ADMIN}/keys/shape/rotate`, t.adminKey)).body.key).toMatch(KEY_SHAPE);
  });
});
