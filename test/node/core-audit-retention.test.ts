// Retention's pure rule: how far a chain's D1 copy may be pruned so that what remains still verifies.
import { describe, expect, it } from "vitest";
import type { AuditCheckpoint } from "../../src/audit/checkpoint.ts";
import { pruneAnchor } from "../../src/audit/retention.ts";

const checkpoint = (seq: number, time: number): AuditCheckpoint => ({ tenant: "acme", seq, hash: "a".repeat(64), time, keyId: "0".repeat(16), signature: "s" });

describe("pruneAnchor", () => {
  const checkpoints = [checkpoint(300, 3_000), checkpoint(100, 1_000), checkpoint(200, 2_000), checkpoint(400, 4_000)];

  it("is the newest checkpoint signed before the cutoff, whatever the order given", () => {
    expect(pruneAnchor(checkpoints, 1_000, 2_500)?.seq).toBe(200);
    expect(pruneAnchor(checkpoints, 1_000, 3_001)?.seq).toBe(300);
  });

  it("never goes past what D1 holds, nor to a checkpoint signed at or after the cutoff", () => {
    expect(pruneAnchor(checkpoints, 250, 10_000)?.seq).toBe(200);
    expect(pruneAnchor(checkpoints, 1_000, 2_000)?.seq).toBe(100);
  });

  it("is undefined when nothing is old enough, for no checkpoints, and for the empty chain's checkpoint", () => {
    expect(pruneAnchor(checkpoints, 1_000, 1_000)).toBeUndefined();
    expect(pruneAnchor([], 1_000, 10_000)).toBeUndefined();
    expect(pruneAnchor([checkpoint(0, 1)], 1_000, 10_000)).toBeUndefined();
  });
});
