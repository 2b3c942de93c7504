/**
 * The admin API's config validation as a function: a file whose stored form would exceed D1's value limit is
 * refused as too large before anything is written (defaults make the stored form larger than the text).
 */
import { describe, expect, it } from "vitest";
import { MAX_PUBLISHED_BYTES, validatedConfig } from "../../src/admin/config.ts";
import { AdminError } from "../../src/admin/errors.ts";

describe("validatedConfig", () => {
  it("refuses a file under the body limit whose published form would not fit in one D1 value", async () => {
    // 22 bytes of text per rule, 35 once defaults are filled in: under 1 MiB of text, over the published cap.
    const rules = "    - {action: allow}\n".repeat(46_000);
    const text = `policies:\n  - id: big\n    roles: [reader]\n    rules:\n${rules}`;
    expect(text.length).toBeLessThan(1024 * 1024);
    const refusal = await validatedConfig(text).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(AdminError);
    expect((refusal as AdminError).code).toBe("too_large");
    expect((refusal as AdminError).message).toContain(String(MAX_PUBLISHED_BYTES));
  });

  it("accepts the same file with fewer rules, with its digest and summary", async () => {
    const text = `policies:\n  - id: small\n    roles: [reader]\n    rules:\n      - { action: allow }\n`;
    const validated = await validatedConfig(text);
    expect(validated.summary).toEqual({ keys: 0, policies: 1, servers: 0 });
    expect(validated.digest).toMatch(/^[0-9a-f]{64}$/);
  });
});
