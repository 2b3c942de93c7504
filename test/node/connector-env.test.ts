import { describe, expect, it } from "vitest";
import { childEnvironment, redactSecrets, resolveServerEnv } from "../../connector/env.ts";

describe("resolveServerEnv", () => {
  const host = { DB_PASSWORD: "s3cret-pw", API_KEY: "key-123", EMPTY: "" };

  it("resolves ${VAR} from the connector's environment and keeps literal text", () => {
    const resolved = resolveServerEnv("crm", { DATABASE_URL: "postgres://app:${DB_PASSWORD}@db/crm", MODE: "read-only" }, host);
    expect(resolved).toEqual({
      ok: true,
      env: { DATABASE_URL: "postgres://app:s3cret-pw@db/crm", MODE: "read-only" },
      secrets: ["s3cret-pw"],
    });
  });

  it("refuses a reference to an unset variable, naming the server, the key and the variable", () => {
    const resolved = resolveServerEnv("crm", { TOKEN: "${CRM_TOKEN}" }, host);
    expect(resolved.ok).toBe(false);
    if (resolved.ok) return;
    expect(resolved.error).toContain('server "crm"');
    expect(resolved.error).toContain("env.TOKEN");
    expect(resolved.error).toContain("CRM_TOKEN");
  });

  it("refuses a variable that is set but empty (never a blank secret)", () => {
    expect(resolveServerEnv("crm", { TOKEN: "${EMPTY}" }, host).ok).toBe(false);
  });

  it("reads $$ as a literal $ and leaves a lone $ alone", () => {
    const resolved = resolveServerEnv("s", { PRICE: "$$5 and $$${API_KEY}", RAW: "a$b" }, host);
    expect(resolved.ok && resolved.env).toEqual({ PRICE: "$5 and $key-123", RAW: "a$b" });
    expect(resolveServerEnv("s", { ESC: "$${API_KEY}" }, host)).toMatchObject({ ok: true, env: { ESC: "${API_KEY}" } });
  });

  it("refuses a malformed reference instead of passing it through", () => {
    const resolved = resolveServerEnv("s", { X: "${not a name}" }, host);
    expect(resolved.ok).toBe(false);
    if (!resolved.ok) expect(resolved.error).toContain("env.X");
  });
});

describe("childEnvironment", () => {
  const host = {
    PATH: "/usr/bin",
    HOME: "/home/svc",
    MCP_GATEWAY_CONNECTOR_TOKEN: "connector-token",
    OTHER_SERVER_SECRET: "not-yours",
    SystemRoot: "C:\\Windows",
  };

  it("gives a child PATH, HOME and its declared env, never the connector's other variables", () => {
    const env = childEnvironment({ CRM_TOKEN: "t" }, host, "linux");
    expect(env).toEqual({ PATH: "/usr/bin", HOME: "/home/svc", CRM_TOKEN: "t" });
    expect(Object.values(env)).not.toContain("connector-token");
  });

  it("adds the variables Windows programs need on Windows", () => {
    expect(childEnvironment({}, host, "win32")).toEqual({ PATH: "/usr/bin", HOME: "/home/svc", SystemRoot: "C:\\Windows" });
  });

  it("lets a declared value override the base", () => {
    expect(childEnvironment({ PATH: "/opt/bin" }, host, "linux").PATH).toBe("/opt/bin");
  });
});

describe("redactSecrets", () => {
  it("masks every occurrence of a secret, but not short values", () => {
    expect(redactSecrets("auth failed for s3cret-pw (s3cret-pw) mode 1", ["s3cret-pw", "1"])).toBe(
      "auth failed for [redacted] ([redacted]) mode 1",
    );
  });
});
