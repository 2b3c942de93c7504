import { describe, expect, it } from "vitest";
import { entryCanonicalJson, headOf, sha256Hex } from "../../src/audit/chain.ts";
import { publicKeyId } from "../../src/audit/checkpoint.ts";
import { AUDIT_ENTRY_FIELDS, type AuditEntry } from "../../src/audit/entry.ts";
import {
  AUDIT_CSV_COLUMNS,
  AUDIT_CSV_HEADER,
  AuditExportError,
  csvCell,
  entryLineHash,
  entryToCsvRow,
  type ExportSource,
  exportEntryLine,
  exportLines,
  type ExportVerifyResult,
  parseExportLine,
  verifyExport,
} from "../../src/audit/export-format.ts";
import { buildChain, checkpointOf, fields, OTHER_PUBLIC_KEY, PUBLIC_KEY, TENANT } from "./core-audit-fixtures.ts";

const CHAIN = buildChain(12);
const at = (seq: number) => CHAIN[seq - 1] as AuditEntry;
const CHECKPOINTS = [4, 8, 12].map((seq) => checkpointOf(at(seq)));

async function collect(source: Partial<ExportSource> = {}): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of exportLines({ tenant: TENANT, entries: CHAIN, checkpoints: CHECKPOINTS, head: headOf(at(12)), exportedAt: 1, ...source })) lines.push(line);
  return lines;
}

function failure(result: ExportVerifyResult) {
  if (result.ok) throw new Error(`expected a failure, got ${JSON.stringify(result)}`);
  return { seq: result.failure.seq, reason: result.failure.reason, line: result.failure.line };
}

/** Index of the line holding the entry at `seq`. */
const lineOf = (lines: string[], seq: number) =>
  lines.findIndex((l) => {
    const value = JSON.parse(l) as { type: string; seq?: number };
    return value.type === "entry" && value.seq === seq;
  });

function editLine(lines: string[], index: number, edit: (value: Record<string, unknown>) => void): string[] {
  const copy = [...lines];
  const value = JSON.parse(copy[index] as string) as Record<string, unknown>;
  edit(value);
  copy[index] = JSON.stringify(value);
  return copy;
}

describe("JSONL export", () => {
  it("writes a header, then entries each followed by their checkpoints", async () => {
    const lines = await collect();
    expect(lines).toHaveLength(1 + 12 + 3);
    expect(JSON.parse(lines[0] as string)).toEqual({
      type: "header",
      format: "mcp-gateway-audit",
      version: 1,
      tenant: TENANT,
      keyId: publicKeyId(PUBLIC_KEY),
      start: { seq: 0, hash: "0".repeat(64) },
      head: headOf(at(12)),
      exportedAt: 1,
    });
    expect(lines.map((l) => (JSON.parse(l) as { type: string; seq?: number }).type + ((JSON.parse(l) as { seq?: number }).seq ?? ""))).toEqual([
      "header", "entry1", "entry2", "entry3", "entry4", "checkpoint4", "entry5", "entry6", "entry7", "entry8", "checkpoint8",
      "entry9", "entry10", "entry11", "entry12", "checkpoint12",
    ]);
  });

  it("round-trips: every line parses back to the same entry or checkpoint, and the export verifies", async () => {
    const lines = await collect();
    const entries = lines.map(parseExportLine).flatMap((l) => (l.type === "entry" ? [l.entry] : []));
    expect(entries).toEqual(CHAIN);
    const checkpoints = lines.map(parseExportLine).flatMap((l) => (l.type === "checkpoint" ? [l.checkpoint] : []));
    expect(checkpoints).toEqual(CHECKPOINTS);
    const result = await verifyExport(lines, PUBLIC_KEY);
    expect(result).toMatchObject({ ok: true, tenant: TENANT, entries: 12, checkpoints: 3, head: headOf(at(12)), uncheckpointed: 0 });
    expect(result.header?.tenant).toBe(TENANT);
  });

  it("verifies from an async stream of lines with \\r\\n endings and blank lines", async () => {
    const lines = await collect();
    async function* stream() {
      for (const line of lines) yield `${line}\r\n`;
      yield "";
    }
    expect(await verifyExport(stream(), PUBLIC_KEY)).toMatchObject({ ok: true, entries: 12 });
  });

  it("writes each entry line as type, hash, prevHash and then the exact text the hash covers", () => {
    const line = exportEntryLine(at(3));
    const head = `{"type":"entry","hash":"${at(3).hash}","prevHash":"${at(3).prevHash}",`;
    expect(line.startsWith(head)).toBe(true);
    expect(`{${line.slice(head.length)}`).toBe(entryCanonicalJson(at(3)));
    expect(entryLineHash(line)).toEqual({ hash: at(3).hash, prevHash: at(3).prevHash, contentHash: at(3).hash });
    const { type, ...rest } = JSON.parse(line) as Record<string, unknown>;
    expect(type).toBe("entry");
    expect(rest).toEqual(at(3));
    expect(entryLineHash(JSON.stringify({ type: "entry", ...at(3) }))).toBeUndefined();
  });

  it("verifies lines in any other layout by recomputing the canonical JSON", async () => {
    const lines = await collect();
    for (const layout of [
      (v: Record<string, unknown>) => JSON.stringify({ type: v.type, seq: v.seq, ...v }), // seq first, the rest as read
      (v: Record<string, unknown>) => JSON.stringify(Object.fromEntries(Object.entries(v).reverse()), null, 1).replace(/\n/g, ""),
    ]) {
      const relaid = lines.map((l) => (l.startsWith('{"type":"entry"') ? layout(JSON.parse(l)) : l));
      expect(relaid).not.toEqual(lines);
      expect(await verifyExport(relaid, PUBLIC_KEY)).toMatchObject({ ok: true, entries: 12, checkpoints: 3 });
    }
  });

  it("a line that only looks canonical (whitespace) falls back to recomputing, and verifies", async () => {
    const lines = await collect();
    const index = lineOf(lines, 7);
    const spaced = [...lines];
    spaced[index] = `${(lines[index] as string).slice(0, -1)} }`;
    expect(entryLineHash(spaced[index] as string)?.contentHash).not.toBe(at(7).hash);
    expect(await verifyExport(spaced, PUBLIC_KEY)).toMatchObject({ ok: true, entries: 12 });
  });

  it("a head whose prevHash is not the line's prevHash is not trusted", async () => {
    const lines = await collect();
    const index = lineOf(lines, 7);
    const original = lines[index] as string;
    const fakePrev = "7".repeat(64);
    const tail = `${original.slice(original.indexOf('","prevHash":"') + 14 + 64 + 2, -1)},"prevHash":"${at(6).hash}"}`;
    const forgedHash = sha256Hex(`${fakePrev}{${tail}`);
    const edited = [...lines];
    edited[index] = `{"type":"entry","hash":"${forgedHash}","prevHash":"${fakePrev}",${tail}`;
    expect(entryLineHash(edited[index] as string)?.contentHash).toBe(forgedHash);
    expect((JSON.parse(edited[index] as string) as { prevHash: string }).prevHash).toBe(at(6).hash);
    expect(failure(await verifyExport(edited, PUBLIC_KEY))).toEqual({ seq: 7, reason: "hash-mismatch", line: index + 1 });
  });

  it("an edit made in place in a canonical line's text → hash mismatch", async () => {
    const lines = await collect();
    const index = lineOf(lines, 7);
    const edited = [...lines];
    edited[index] = (lines[index] as string).replace(/"latencyMs":\d+/, '"latencyMs":1');
    expect(edited[index]).not.toBe(lines[index]);
    expect(failure(await verifyExport(edited, PUBLIC_KEY))).toEqual({ seq: 7, reason: "hash-mismatch", line: index + 1 });
  });

  it("a duplicate key smuggled after a canonical head is not trusted: the parsed fields are what get verified", async () => {
    const lines = await collect();
    const index = lineOf(lines, 7);
    const edited = [...lines];
    edited[index] = `${(lines[index] as string).slice(0, -1)},"status":"denied"}`;
    expect((JSON.parse(edited[index] as string) as { status: string }).status).toBe("denied");
    expect(failure(await verifyExport(edited, PUBLIC_KEY))).toEqual({ seq: 7, reason: "hash-mismatch", line: index + 1 });
    const hashed = [...lines];
    hashed[index] = `${(lines[index] as string).slice(0, -1)},"hash":"${"9".repeat(64)}"}`;
    expect(failure(await verifyExport(hashed, PUBLIC_KEY))).toEqual({ seq: 7, reason: "hash-mismatch", line: index + 1 });
  });

  it("keeps a payload's __proto__ key through export and verification", async () => {
    const chain = buildChain(2, null, (i) => fields(i, { arguments: JSON.parse('{"__proto__":{"x":1},"a":2}') }));
    const lines: string[] = [];
    for await (const line of exportLines({ tenant: TENANT, entries: chain })) lines.push(line);
    expect(await verifyExport(lines, PUBLIC_KEY)).toMatchObject({ ok: true, entries: 2 });
  });

  it("an edited field in a line → hash mismatch at that seq and line", async () => {
    const lines = await collect();
    const index = lineOf(lines, 6);
    for (const edit of [
      (v: Record<string, unknown>) => (v.latencyMs = 1),
      (v: Record<string, unknown>) => ((v.arguments as { limit: number }).limit = 0),
      (v: Record<string, unknown>) => (v.errorMessage = "edited"),
      (v: Record<string, unknown>) => (v.timestamp = 0),
    ]) {
      expect(failure(await verifyExport(editLine(lines, index, edit), PUBLIC_KEY))).toEqual({ seq: 6, reason: "hash-mismatch", line: index + 1 });
    }
  });

  it("a deleted entry line → gap; two swapped → reordered; one repeated → duplicate", async () => {
    const lines = await collect();
    const i5 = lineOf(lines, 5);
    expect(failure(await verifyExport(lines.filter((_, i) => i !== i5), PUBLIC_KEY))).toMatchObject({ seq: 5, reason: "gap" });
    const swapped = [...lines];
    [swapped[i5], swapped[i5 + 1]] = [swapped[i5 + 1] as string, swapped[i5] as string];
    expect(failure(await verifyExport(swapped, PUBLIC_KEY))).toMatchObject({ seq: 5, reason: "reordered" });
    expect(failure(await verifyExport([...lines.slice(0, i5 + 1), lines[i5] as string, ...lines.slice(i5 + 1)], PUBLIC_KEY))).toMatchObject({ seq: 5, reason: "duplicate" });
  });

  it("a truncated file → missing tail (the header's head)", async () => {
    const lines = await collect();
    expect(failure(await verifyExport(lines.slice(0, lineOf(lines, 10)), PUBLIC_KEY))).toMatchObject({ seq: 10, reason: "missing-tail" });
  });

  it("a truncated file with a doctored header → caught by a checkpoint kept apart, or by the expected head", async () => {
    const lines = await collect();
    const cut = editLine(lines.slice(0, lineOf(lines, 10)), 0, (h) => (h.head = headOf(at(9))));
    expect(await verifyExport(cut, PUBLIC_KEY)).toMatchObject({ ok: true, uncheckpointed: 1 });
    expect(failure(await verifyExport(cut, PUBLIC_KEY, { checkpoints: [CHECKPOINTS[2] as never] }))).toMatchObject({ seq: 10, reason: "missing-tail" });
    expect(failure(await verifyExport(cut, PUBLIC_KEY, { expectedHead: headOf(at(12)) }))).toMatchObject({ seq: 10, reason: "missing-tail" });
  });

  it("entries rewritten with recomputed hashes → checkpoint mismatch", async () => {
    const chain = buildChain(12, null, (i) => fields(i, i >= 6 ? { tool: "rewritten" } : {}));
    const lines: string[] = [];
    for await (const line of exportLines({ tenant: TENANT, entries: chain, checkpoints: CHECKPOINTS })) lines.push(line);
    expect(failure(await verifyExport(lines, PUBLIC_KEY))).toMatchObject({ seq: 8, reason: "checkpoint-mismatch" });
  });

  it("a forged checkpoint line → bad signature at its line", async () => {
    const lines = await collect();
    const index = lines.findIndex((l) => l.startsWith('{"type":"checkpoint","tenant":"acme","seq":8,'));
    const forged = editLine(lines, index, (c) => (c.hash = at(7).hash));
    expect(failure(await verifyExport(forged, PUBLIC_KEY))).toEqual({ seq: 8, reason: "bad-signature", line: index + 1 });
  });

  it("the wrong public key → key mismatch from the header, or bad signature when the header names none", async () => {
    const lines = await collect();
    const result = await verifyExport(lines, OTHER_PUBLIC_KEY);
    expect(failure(result)).toEqual({ seq: null, reason: "key-mismatch", line: 1 });
    expect(!result.ok && result.failure.message).toContain(publicKeyId(PUBLIC_KEY));
    const anonymous = editLine(lines, 0, (h) => (h.keyId = null));
    expect(failure(await verifyExport(anonymous, OTHER_PUBLIC_KEY))).toMatchObject({ seq: 4, reason: "bad-signature" });
    expect(await verifyExport(lines, [OTHER_PUBLIC_KEY, PUBLIC_KEY])).toMatchObject({ ok: true });
    await expect(verifyExport(lines, "garbage")).rejects.toThrow(/public key/);
  });

  it("a partial export starts from its anchor checkpoint; without it, it is unanchored", async () => {
    const lines = await collect({ start: headOf(at(4)), entries: CHAIN.slice(4) });
    expect(JSON.parse(lines[1] as string)).toMatchObject({ type: "checkpoint", seq: 4 });
    expect(await verifyExport(lines, PUBLIC_KEY)).toMatchObject({ ok: true, entries: 8, firstSeq: 5 });
    expect(failure(await verifyExport(lines.filter((_, i) => i !== 1), PUBLIC_KEY))).toMatchObject({ seq: 4, reason: "unanchored" });
  });

  it("a range export leaves out checkpoints after its head; a checkpoint whose entry is missing stays, before the next entry", async () => {
    const lines = await collect({ entries: CHAIN.slice(0, 9), head: headOf(at(9)) });
    expect(lines.filter((l) => l.includes('"type":"checkpoint"'))).toHaveLength(2);
    expect(await verifyExport(lines, PUBLIC_KEY)).toMatchObject({ ok: true, entries: 9, uncheckpointed: 1 });
    const holes = await collect({ entries: CHAIN.filter((e) => e.seq !== 8), head: null });
    expect(holes.findIndex((l) => l.includes('"type":"checkpoint","tenant":"acme","seq":8'))).toBe(lineOf(holes, 9) - 1);
    expect(failure(await verifyExport(holes, PUBLIC_KEY))).toMatchObject({ seq: 8, reason: "gap" });
    const missingTail = await collect({ entries: CHAIN.slice(0, 10), head: null });
    expect(failure(await verifyExport(missingTail, PUBLIC_KEY))).toMatchObject({ seq: 11, reason: "missing-tail" });
  });

  it("malformed lines are failures with their line number, never exceptions", async () => {
    const lines = await collect();
    const i3 = lineOf(lines, 3);
    const cases: [string[], object][] = [
      [[], { seq: null, reason: "malformed" }],
      [lines.slice(1), { seq: null, reason: "malformed", line: 1 }],
      [["not json", ...lines.slice(1)], { seq: null, reason: "malformed", line: 1 }],
      [editLine(lines, 0, (h) => (h.version = 2)), { seq: null, reason: "malformed", line: 1 }],
      [[...lines.slice(0, i3), "{oops", ...lines.slice(i3)], { reason: "malformed", line: i3 + 1 }],
      [editLine(lines, i3, (v) => delete v.errorMessage), { seq: 3, reason: "malformed", line: i3 + 1 }],
      [editLine(lines, i3, (v) => (v.extra = "unhashed")), { seq: 3, reason: "malformed", line: i3 + 1 }],
      [editLine(lines, i3, (v) => (v.type = "note")), { seq: 3, reason: "malformed", line: i3 + 1 }],
      [editLine(lines, i3, (v) => (v.latencyMs = "12")), { seq: 3, reason: "malformed", line: i3 + 1 }],
      [editLine(lines, i3, (v) => (v.hash = (v.hash as string).toUpperCase())), { seq: 3, reason: "malformed", line: i3 + 1 }],
      [[...lines.slice(0, i3), lines[0] as string, ...lines.slice(i3)], { reason: "malformed", line: i3 + 1 }],
      [[...lines.slice(0, i3), "[1,2]", ...lines.slice(i3)], { reason: "malformed", line: i3 + 1 }],
    ];
    for (const [input, expected] of cases) expect(failure(await verifyExport(input, PUBLIC_KEY))).toMatchObject(expected);
  });

  it("parseExportLine names the problem", () => {
    const line = exportEntryLine(at(1));
    expect(parseExportLine(line)).toEqual({ type: "entry", entry: at(1) });
    const broken = JSON.stringify({ ...JSON.parse(line), status: "maybe" });
    expect(() => parseExportLine(broken)).toThrow(AuditExportError);
    expect(() => parseExportLine(broken)).toThrow(/status/);
    try {
      parseExportLine(broken);
    } catch (error) {
      expect((error as AuditExportError).seq).toBe(1);
    }
  });
});

describe("CSV", () => {
  it("has a header of time then every entry field", () => {
    expect(AUDIT_CSV_COLUMNS).toEqual(["time", ...AUDIT_ENTRY_FIELDS]);
    expect(AUDIT_CSV_HEADER).toBe(`time,${AUDIT_ENTRY_FIELDS.join(",")}`);
  });

  it("quotes commas, quotes, line breaks and edge spaces (RFC 4180)", () => {
    expect(csvCell("plain")).toBe("plain");
    expect(csvCell("a,b")).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell("two\nlines")).toBe('"two\nlines"');
    expect(csvCell("cr\rhere")).toBe('"cr\rhere"');
    expect(csvCell(" padded ")).toBe('" padded "');
    expect(csvCell(null)).toBe("");
    expect(csvCell("")).toBe("");
    expect(csvCell(-32003)).toBe("-32003");
  });

  it("neutralises formula injection in every text cell", () => {
    expect(csvCell("=HYPERLINK(\"http://evil\",\"x\")")).toBe('"\'=HYPERLINK(""http://evil"",""x"")"');
    expect(csvCell("+1+1")).toBe("'+1+1");
    expect(csvCell("-2+3")).toBe("'-2+3");
    expect(csvCell("@SUM(A1)")).toBe("'@SUM(A1)");
    expect(csvCell("\t=1")).toBe("'\t=1");
    expect(csvCell("\r=1")).toBe('"\'\r=1"');
    expect(csvCell("a=1")).toBe("a=1");
  });

  it("renders an entry: ISO time, numbers raw, JSON payloads, hostile text guarded", () => {
    const [entry] = buildChain(1, null, (i) =>
      fields(i, { tool: "=cmd|' /C calc'!A0", errorMessage: 'line1\n"quoted", comma', errorCode: -32603, status: "error", result: null, resultDigest: null, arguments: { q: "a,b" } }),
    ) as [AuditEntry];
    const row = entryToCsvRow(entry);
    const cells = parseCsvRow(row);
    expect(cells).toHaveLength(AUDIT_CSV_COLUMNS.length);
    const cell = (name: string) => cells[AUDIT_CSV_COLUMNS.indexOf(name)];
    expect(cell("time")).toBe("2026-01-01T00:00:01.000Z");
    expect(cell("seq")).toBe("1");
    expect(cell("tool")).toBe("'=cmd|' /C calc'!A0");
    expect(cell("errorMessage")).toBe('line1\n"quoted", comma');
    expect(cell("errorCode")).toBe("-32603");
    expect(cell("arguments")).toBe('{"q":"a,b"}');
    expect(cell("result")).toBe("");
    expect(cell("hash")).toBe(entry.hash);
    for (const c of cells) expect(c, c).not.toMatch(/^[=+@\t\r]/);
  });
});

/** A small RFC 4180 reader, to check rows the way a spreadsheet splits them. */
function parseCsvRow(row: string): string[] {
  const cells: string[] = [];
  let i = 0;
  while (i <= row.length) {
    if (row[i] === '"') {
      let value = "";
      i++;
      while (i < row.length) {
        if (row[i] === '"' && row[i + 1] === '"') {
          value += '"';
          i += 2;
        } else if (row[i] === '"') {
          i++;
          break;
        } else value += row[i++];
      }
      cells.push(value);
      i++; // the comma
    } else {
      const end = row.indexOf(",", i);
      const stop = end === -1 ? row.length : end;
      cells.push(row.slice(i, stop));
      i = stop + 1;
    }
  }
  return cells;
}
