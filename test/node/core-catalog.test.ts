import { describe, expect, it } from "vitest";
import type { ServerCatalog } from "../../src/link/protocol.ts";
import { buildCatalog, describeConflicts, type CatalogServer } from "../../src/mcp/catalog.ts";
import { exposedName, exposedPrefix, NAMESPACE_SEPARATOR, prefixOf } from "../../src/mcp/namespacing.ts";

function catalog(partial: Partial<ServerCatalog>): ServerCatalog {
  return { tools: [], resources: [], resourceTemplates: [], prompts: [], ...partial };
}

function server(id: string, registeredAt: number, partial: Partial<ServerCatalog>, prefix?: string, available = true): CatalogServer {
  return {
    id,
    name: id,
    registeredAt,
    available,
    status: available ? "healthy" : "disconnected",
    catalog: catalog(partial),
    ...(prefix === undefined ? {} : { prefix }),
  };
}

describe("namespacing", () => {
  it("uses the id as prefix unless a prefix (possibly empty) is set", () => {
    expect(exposedPrefix({ id: "crm" })).toBe("crm");
    expect(exposedPrefix({ id: "crm", prefix: "sales" })).toBe("sales");
    expect(exposedPrefix({ id: "crm", prefix: "" })).toBe("");
  });

  it("joins prefix and name with the separator, or leaves bare names alone", () => {
    expect(NAMESPACE_SEPARATOR).toBe("__");
    expect(exposedName("crm", "get_contact")).toBe("crm__get_contact");
    expect(exposedName("", "get_contact")).toBe("get_contact");
  });

  it("finds the prefix before the first separator, or undefined for a bare name", () => {
    expect(prefixOf("crm__get__contact")).toBe("crm");
    expect(prefixOf("get_contact")).toBeUndefined();
    expect(prefixOf("__leading")).toBeUndefined();
  });
});

describe("buildCatalog", () => {
  it("exposes tools and prompts as <id>__<name> by default and routes them to the upstream name", () => {
    const cat = buildCatalog([
      server("fred", 1, { tools: [{ name: "get_series", description: "d" }], prompts: [{ name: "summary" }] }),
    ]);
    expect(cat.tools.map((t) => t.name)).toEqual(["fred__get_series"]);
    expect(cat.tools[0]?.definition).toEqual({ name: "fred__get_series", description: "d" });
    expect(cat.tool("fred__get_series")).toMatchObject({ serverId: "fred", upstreamName: "get_series" });
    expect(cat.prompt("fred__summary")).toMatchObject({ serverId: "fred", upstreamName: "summary" });
    expect(cat.tool("get_series")).toBeUndefined();
    expect(cat.prompt("fred__get_series")).toBeUndefined();
    expect(cat.conflicts).toEqual([]);
  });

  it("uses a custom prefix instead of the id", () => {
    const cat = buildCatalog([server("mcp-stripe", 1, { tools: [{ name: "charge" }] }, "pay")]);
    expect(cat.tools.map((t) => t.name)).toEqual(["pay__charge"]);
    expect(cat.tool("pay__charge")).toMatchObject({ serverId: "mcp-stripe", upstreamName: "charge" });
    expect(cat.tool("mcp-stripe__charge")).toBeUndefined();
  });

  it("exposes bare upstream names with prefix \"\"", () => {
    const cat = buildCatalog([server("everything", 1, { tools: [{ name: "echo" }], prompts: [{ name: "simple" }] }, "")]);
    expect(cat.tool("echo")).toMatchObject({ name: "echo", serverId: "everything", upstreamName: "echo" });
    expect(cat.prompt("simple")?.upstreamName).toBe("simple");
  });

  it("does not alter the upstream's definition object", () => {
    const tool = { name: "echo", inputSchema: { type: "object" } };
    const cat = buildCatalog([server("a", 1, { tools: [tool] })]);
    expect(tool.name).toBe("echo");
    expect(cat.tool("a__echo")?.definition).toEqual({ name: "a__echo", inputSchema: { type: "object" } });
  });

  describe("name clashes", () => {
    const older = server("old", 100, { tools: [{ name: "echo", v: "old" }, { name: "only_old" }], prompts: [{ name: "p" }] }, "");
    const newer = server("new", 200, { tools: [{ name: "echo", v: "new" }, { name: "only_new" }], prompts: [{ name: "p" }] }, "");

    for (const [order, input] of [
      ["older first", [older, newer]],
      ["newer first", [newer, older]],
    ] as const) {
      it(`lets the older server keep the name and withholds the newer one's item (${order})`, () => {
        const cat = buildCatalog(input);
        expect(cat.tool("echo")).toMatchObject({ serverId: "old", definition: { name: "echo", v: "old" } });
        expect(cat.tools.map((t) => t.name)).toEqual(["echo", "only_old", "only_new"]);
        expect(cat.prompt("p")?.serverId).toBe("old");
        expect(cat.conflicts).toEqual([
          { kind: "tool", name: "echo", serverId: "new", keptBy: "old" },
          { kind: "prompt", name: "p", serverId: "new", keptBy: "old" },
        ]);
      });
    }

    it("breaks a registeredAt tie by server id", () => {
      const cat = buildCatalog([server("b", 5, { tools: [{ name: "x" }] }, ""), server("a", 5, { tools: [{ name: "x" }] }, "")]);
      expect(cat.tool("x")?.serverId).toBe("a");
      expect(cat.conflicts).toEqual([{ kind: "tool", name: "x", serverId: "b", keptBy: "a" }]);
    });

    it("detects a clash between a bare name and a prefixed one that spell the same", () => {
      const cat = buildCatalog([server("crm", 1, { tools: [{ name: "find" }] }), server("bare", 2, { tools: [{ name: "crm__find" }] }, "")]);
      expect(cat.tool("crm__find")).toMatchObject({ serverId: "crm", upstreamName: "find" });
      expect(cat.conflicts).toEqual([{ kind: "tool", name: "crm__find", serverId: "bare", keptBy: "crm" }]);
    });

    it("keeps the first of a name one server lists twice and reports no conflict", () => {
      const cat = buildCatalog([server("a", 1, { tools: [{ name: "t", v: 1 }, { name: "t", v: 2 }] })]);
      expect(cat.tools).toHaveLength(1);
      expect(cat.tool("a__t")?.definition.v).toBe(1);
      expect(cat.conflicts).toEqual([]);
    });
  });

  describe("describeConflicts", () => {
    const cat = buildCatalog([
      server("old", 1, { tools: [{ name: "echo" }], resources: [{ uri: "file:///a", name: "a" }] }, ""),
      server("new", 2, { tools: [{ name: "echo" }], resources: [{ uri: "file:///a", name: "a" }] }, ""),
    ]);

    it("lists the withheld items of the newer server with who keeps them", () => {
      expect(describeConflicts(cat.conflicts, "new")).toBe(
        'unavailable because the name is already taken: tool "echo" (kept by server "old"), resource "file:///a" (kept by server "old"); give this server a different prefix',
      );
    });

    it("returns undefined for a server without conflicts", () => {
      expect(describeConflicts(cat.conflicts, "old")).toBeUndefined();
      expect(describeConflicts([], "new")).toBeUndefined();
    });
  });

  describe("resources", () => {
    const cat = buildCatalog([
      server("docs", 1, {
        resources: [{ uri: "docs://readme", name: "readme", mimeType: "text/markdown" }],
        resourceTemplates: [{ uriTemplate: "docs://items/{id}", name: "item" }],
      }),
      server("files", 2, {
        resources: [{ uri: "docs://items/7", name: "pinned" }],
        resourceTemplates: [{ uriTemplate: "file:///{+path}", name: "file" }],
      }),
    ]);

    it("keeps resource URIs and definitions as the upstream sent them (no prefix)", () => {
      expect(cat.resources).toEqual([
        { serverId: "docs", definition: { uri: "docs://readme", name: "readme", mimeType: "text/markdown" } },
        { serverId: "files", definition: { uri: "docs://items/7", name: "pinned" } },
      ]);
      expect(cat.resourceTemplates.map((t) => t.definition.uriTemplate)).toEqual(["docs://items/{id}", "file:///{+path}"]);
    });

    it("routes an exact resource URI to its server", () => {
      expect(cat.resourceServer("docs://readme")).toBe("docs");
    });

    it("prefers an exact resource over another server's matching template", () => {
      expect(cat.resourceServer("docs://items/7")).toBe("files");
    });

    it("routes a URI that matches a template to that template's server", () => {
      expect(cat.resourceServer("docs://items/42")).toBe("docs");
      expect(cat.resourceServer("file:///etc/hosts")).toBe("files");
    });

    it("returns undefined for a URI nothing serves", () => {
      expect(cat.resourceServer("https://example.com/")).toBeUndefined();
      expect(cat.resourceServer("docs://other/1")).toBeUndefined();
    });

    it("skips a malformed template without throwing and still matches later ones", () => {
      const withBad = buildCatalog([
        server("bad", 1, { resourceTemplates: [{ uriTemplate: "docs://{unclosed", name: "bad" }] }),
        server("good", 2, { resourceTemplates: [{ uriTemplate: "docs://items/{id}", name: "good" }] }),
      ]);
      expect(() => withBad.resourceServer("docs://x")).not.toThrow();
      expect(withBad.resourceServer("docs://x")).toBeUndefined();
      expect(withBad.resourceServer("docs://items/1")).toBe("good");
    });

    it("lets the older server keep a resource URI or template both list", () => {
      const clash = buildCatalog([
        server("new", 9, { resourceTemplates: [{ uriTemplate: "t://{x}", name: "n" }] }),
        server("old", 1, { resourceTemplates: [{ uriTemplate: "t://{x}", name: "o" }] }),
      ]);
      expect(clash.resourceServer("t://1")).toBe("old");
      expect(clash.conflicts).toEqual([{ kind: "resourceTemplate", name: "t://{x}", serverId: "new", keptBy: "old" }]);
    });
  });
});

describe("availability", () => {
  const deleteFile = { tools: [{ name: "delete_file" }] };

  it("keeps an older server's clashing name while it is down: the newer server never inherits it", () => {
    const up = buildCatalog([server("a", 1, deleteFile, ""), server("b", 2, deleteFile, "")]);
    const aDown = buildCatalog([server("a", 1, deleteFile, "", false), server("b", 2, deleteFile, "")]);
    expect(up.tool("delete_file")?.serverId).toBe("a");
    expect(aDown.tool("delete_file")?.serverId).toBe("a");
    expect(aDown.server("a")?.available).toBe(false);
    expect(aDown.conflicts).toEqual(up.conflicts);
    expect(aDown.conflicts).toEqual([{ kind: "tool", name: "delete_file", serverId: "b", keptBy: "a" }]);
  });

  it("lists only the items of available servers, but routes every claimed name", () => {
    const built = buildCatalog([
      server("a", 1, { tools: [{ name: "x" }], resources: [{ uri: "a://r", name: "r" }], resourceTemplates: [{ uriTemplate: "a://t/{id}", name: "t" }], prompts: [{ name: "p" }] }, undefined, false),
      server("b", 2, { tools: [{ name: "y" }] }),
    ]);
    expect(built.tools.map((t) => t.name)).toEqual(["b__y"]);
    expect(built.prompts).toEqual([]);
    expect(built.resources).toEqual([]);
    expect(built.resourceTemplates).toEqual([]);
    expect(built.tool("a__x")?.serverId).toBe("a");
    expect(built.resourceServer("a://t/1")).toBe("a");
    expect(built.templateServer("a://t/{id}")).toBe("a");
  });

  it("finds the servers behind a prefix", () => {
    const built = buildCatalog([server("crm", 1, {}), server("docs", 2, {}, "kb"), server("x", 3, {}, ""), server("y", 4, {}, "")]);
    expect(built.serversWithPrefix("kb").map((s) => s.id)).toEqual(["docs"]);
    expect(built.serversWithPrefix("crm").map((s) => s.id)).toEqual(["crm"]);
    expect(built.serversWithPrefix("").map((s) => s.id)).toEqual(["x", "y"]);
    expect(built.serversWithPrefix("nope")).toEqual([]);
  });
});

describe("the gateway's own tool names", () => {
  it("are kept by the gateway: a bare upstream tool named like one is withheld as a conflict, never routed", () => {
    const built = buildCatalog([server("raw", 1, { tools: [{ name: "call" }, { name: "list_tools" }, { name: "search" }] }, "")]);
    expect(built.tools.map((t) => t.name)).toEqual(["search"]);
    expect(built.tool("call")).toBeUndefined();
    expect(built.conflicts).toEqual([
      { kind: "tool", name: "call", serverId: "raw", keptBy: "gateway" },
      { kind: "tool", name: "list_tools", serverId: "raw", keptBy: "gateway" },
    ]);
    expect(describeConflicts(built.conflicts, "raw")).toContain('tool "call" (kept by server "gateway")');
  });

  it("routes a resource read through a template with the template that matched, and a listed URI without one", () => {
    const built = buildCatalog([
      server("docs", 1, { resources: [{ uri: "docs://readme", name: "r" }], resourceTemplates: [{ uriTemplate: "docs://items/{id}", name: "i" }] }),
    ]);
    expect(built.resourceTarget("docs://readme")).toEqual({ serverId: "docs" });
    expect(built.resourceTarget("docs://items/42")).toEqual({ serverId: "docs", uriTemplate: "docs://items/{id}" });
    expect(built.resourceTarget("other://x")).toBeUndefined();
  });
});
