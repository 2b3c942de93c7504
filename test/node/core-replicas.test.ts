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
  const replica = (name: string, inFlight: number, ...servers: ServerReport[]) => ({ name, inFlight, servers });

  it("picks the healthy replica with the fewest calls in flight", () => {
    const picked = pickReplica(
      [replica("r1", 5, report("a", "healthy")), replica("r2", 1, report("a", "healthy")), replica("r3", 3, report("a", "healthy"))],
      "a",
    );
    expect(picked?.name).toBe("r2");
  });

  it("ignores replicas where the server is not healthy, however idle", () => {
    const picked = pickReplica(
      [replica("idle-starting", 0, report("a", "starting")), replica("idle-unhealthy", 0, report("a", "unhealthy")), replica("busy", 9, report("a", "healthy"))],
      "a",
    );
    expect(picked?.name).toBe("busy");
  });

  it("ignores replicas whose healthy server is a different one", () => {
    expect(pickReplica([replica("r1", 0, report("b", "healthy")), replica("r2", 4, report("a", "healthy"))], "a")?.name).toBe("r2");
  });

  it("breaks ties by taking the first", () => {
    expect(pickReplica([replica("r1", 2, report("a", "healthy")), replica("r2", 2, report("a", "healthy"))], "a")?.name).toBe("r1");
  });

  it("returns undefined when no replica has the server healthy", () => {
    expect(pickReplica([replica("r1", 0, report("a", "stopped")), replica("r2", 0, report("b", "healthy"))], "a")).toBeUndefined();
    expect(pickReplica([], "a")).toBeUndefined();
  });
});
