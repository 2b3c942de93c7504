import { describe, expect, it } from "vitest";
import { AUDIT_ENTRY_FIELDS, type AuditEntry, auditEntrySchema, parsedEntrySchema, readParsedEntry, toAuditJson } from "../../src/audit/entry.ts";
import { buildChain } from "./core-audit-fixtures.ts";

const [ENTRY] = buildChain(1) as [AuditEntry];
const VALUES: unknown[] = [undefined, null, "", "x", "ok", 0, -1, 1, 1.5, 2 ** 53, Number.NaN, true, {}, [], "a".repeat(64), "A".repeat(64), "0".repeat(63)];

describe("readParsedEntry", () => {
  it("gives parsedEntrySchema's verdict for every field set to every kind of value", () => {
    let checked = 0;
    for (const field of AUDIT_ENTRY_FIELDS) {
      for (const value of VALUES) {
        const candidate: Record<string, unknown> = { ...ENTRY };
        if (value === undefined) delete candidate[field];
        else candidate[field] = value;
        const fast = readParsedEntry(candidate);
        const zod = parsedEntrySchema.safeParse(candidate);
        expect(fast.ok, `${field} = ${JSON.stringify(value)}`).toBe(zod.success);
        if (fast.ok) expect(fast.entry).toEqual(zod.data);
        else expect(fast.error.startsWith(`${field}:`), fast.error).toBe(true);
        checked++;
      }
    }
    expect(checked).toBe(AUDIT_ENTRY_FIELDS.length * VALUES.length);
  });

  it("refuses unknown fields (they would not be covered by the hash) but allows the ignored key", () => {
    expect(readParsedEntry({ ...ENTRY, note: "unhashed" })).toMatchObject({ ok: false, error: expect.stringContaining('"note"') });
    expect(parsedEntrySchema.safeParse({ ...ENTRY, note: "unhashed" }).success).toBe(false);
    expect(readParsedEntry({ type: "entry", ...ENTRY }, "type")).toEqual({ ok: true, entry: ENTRY });
    expect(readParsedEntry(JSON.parse(`{"__proto__":1,${JSON.stringify(ENTRY).slice(1)}`)).ok).toBe(false);
    expect(readParsedEntry([ENTRY]).ok).toBe(false);
    expect(readParsedEntry("entry").ok).toBe(false);
  });

  it("copies the fields in the documented order", () => {
    const shuffled = Object.fromEntries(Object.entries(ENTRY).reverse());
    const read = readParsedEntry(shuffled);
    expect(read.ok && Object.keys(read.entry)).toEqual([...AUDIT_ENTRY_FIELDS]);
  });
});

describe("auditEntrySchema", () => {
  it("accepts an entry and validates payloads as JSON in depth", () => {
    expect(auditEntrySchema.parse(ENTRY)).toEqual(ENTRY);
    expect(auditEntrySchema.safeParse({ ...ENTRY, arguments: { a: [1, { b: Number.POSITIVE_INFINITY }] } }).success).toBe(false);
    expect(auditEntrySchema.safeParse({ ...ENTRY, arguments: { a: () => 1 } }).success).toBe(false);
  });
});

describe("toAuditJson", () => {
  it("is the identity on JSON.parse output", () => {
    const value = JSON.parse('{"a":[1,2.5,-3e-7,"x",null,true,{"b":{}}],"ü":"😀"}');
    expect(toAuditJson(value)).toEqual(value);
  });
});
