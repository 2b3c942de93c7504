import { describe, expect, it } from "vitest";
import { mergeReplicaReports, pickReplica } from "../../src/connectors/replicas.ts";
import type { ServerHealth, ServerReport } from "../../src/link/protocol.ts";

function report(id: string, health: ServerHealth, tool = "t"): ServerReport {
  return { id, name: id, health, catalog: { tools: [{ name: tool }], resources: [], resourceTemplates: [], prompts: [] } };
}

describe("mergeReplicaReports", () => {
  it("keeps one report per server, the healthiest replica's", () => {
    const merged = mergeReplicaReports([
      [report("a", "unhealthy", "from-r1"), report("b", "healthy", "from-r1")],
      [report("a", "healthy", "from-r2"), report("b", "starting", "from-r2")],
      [report("a", "starting", "from-r3")],
    ]);
    expect(merged).toHaveLength(2);
    expect(merged.find((r) => r.id === "a")).toMatchObject({ health: "healthy", catalog: { tools: [{ name: "from-r2" }] } });
    expect(merged.find((r) => r.id === "b")).toMatchObject({ health: "healthy", catalog: { tools: [{ name: "from-r1" }] } });
  });

  it("ranks healthy > starting > unhealthy > stopped", () => {
    const order: ServerHealth[] = ["stopped", "unhealthy", "starting", "healthy"];
    for (let i = 1; i < order.length; i++) {
      const better = order[i] as ServerHealth;
      const worse = order[i - 1] as ServerHealth;
      expect(mergeReplicaReports([[report("a", worse)], [report("a", better)]])[0]?.health).toBe(better);
      expect(mergeReplicaReports([[report("a", better)], [report("a", worse)]])[0]?.health).toBe(better);
    }
  });

  it("keeps the first replica's view when health is equal", () => {
    const merged = mergeReplicaReports([[report("a", "healthy", "first")], [report("a", "healthy", "second")]]);
    expect(merged[0]?.catalog.tools[0]?.name).toBe("first");
  });

  it("includes servers only one replica reports, and nothing for no replicas", () => {
    expect(mergeReplicaReports([[report("a", "stopped")], [report("b", "healthy")]]).map((r) => r.id)).toEqual(["a", "b"]);
    expect(mergeReplicaReports([])).toEqual([]);
    expect(mergeReplicaReports([[], []])).toEqual([]);
  });
});

describe("pickReplica", () => {
  const replica = (name: string, inFlight: number, healthy = true) => ({ name, inFlight, healthy });

  it("picks the healthy replica with the fewest calls in flight", () => {
    expect(pickReplica([replica("r1", 5), replica("r2", 1), replica("r3", 3)])?.name).toBe("r2");
  });

  it("ignores replicas where the server is not healthy, however idle", () => {
    expect(pickReplica([replica("idle-a", 0, false), replica("idle-b", 0, false), replica("busy", 9)])?.name).toBe("busy");
  });

  it("breaks ties by taking the first", () => {
    expect(pickReplica([replica("r1", 2), replica("r2", 2)])?.name).toBe("r1");
  });

  it("returns undefined when no replica has the server healthy", () => {
    expect(pickReplica([replica("r1", 0, false)])).toBeUndefined();
    expect(pickReplica([])).toBeUndefined();
  });
});
