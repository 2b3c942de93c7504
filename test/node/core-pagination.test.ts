import { ProtocolError } from "@modelcontextprotocol/server";
import { describe, expect, it } from "vitest";
import { decodeCursor, encodeCursor, PAGE_SIZE, paginate } from "../../src/mcp/pagination.ts";

function expectInvalidCursor(cursor: unknown): void {
  let thrown: unknown;
  try {
    decodeCursor(cursor);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(ProtocolError);
  expect((thrown as ProtocolError).code).toBe(-32602);
  expect((thrown as ProtocolError).message).toMatch(/Invalid cursor/);
}

describe("paginate", () => {
  const items = Array.from({ length: 250 }, (_, i) => i);

  it("walks a list page by page via nextCursor, the last page without a cursor", () => {
    const seen: number[] = [];
    const pageSizes: number[] = [];
    let cursor: string | undefined;
    do {
      const page = paginate(items, decodeCursor(cursor));
      seen.push(...page.items);
      pageSizes.push(page.items.length);
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    expect(pageSizes).toEqual([100, 100, 50]);
    expect(seen).toEqual(items);
  });

  it("uses PAGE_SIZE = 100 by default", () => {
    expect(PAGE_SIZE).toBe(100);
    expect(paginate(items, 0).items).toHaveLength(100);
  });

  it("gives no cursor when the list fits exactly into the page", () => {
    expect(paginate([1, 2, 3], 0, 3)).toEqual({ items: [1, 2, 3] });
    expect(paginate([1, 2, 3, 4], 0, 3)).toEqual({ items: [1, 2, 3], nextCursor: encodeCursor(3) });
  });

  it("returns an empty last page for an empty list or an offset past the end", () => {
    expect(paginate([], 0)).toEqual({ items: [] });
    expect(paginate([1, 2], 10)).toEqual({ items: [] });
  });
});

describe("encodeCursor / decodeCursor", () => {
  it.each([0, 1, 100, 123_456_789])("round-trips offset %i", (offset) => {
    expect(decodeCursor(encodeCursor(offset))).toBe(offset);
  });

  it("produces opaque base64url text without padding", () => {
    expect(encodeCursor(100)).toBe("bzoxMDA");
    expect(encodeCursor(7)).not.toMatch(/[=+/]/);
  });

  it("reads a missing cursor (undefined or null) as offset 0", () => {
    expect(decodeCursor(undefined)).toBe(0);
    expect(decodeCursor(null)).toBe(0);
  });

  it("refuses a forged cursor that is valid base64 but not an offset", () => {
    expectInvalidCursor(btoa("o:-1"));
    expectInvalidCursor(btoa("x:10"));
    expectInvalidCursor(btoa("o:1e3"));
    expectInvalidCursor(btoa("o:1234567890")); // ten digits
  });

  it("refuses a cursor that is not base64", () => {
    expectInvalidCursor("!!!not base64!!!");
  });

  it("refuses an empty string cursor", () => {
    expectInvalidCursor("");
  });

  it("refuses a cursor longer than 32 characters", () => {
    expectInvalidCursor(encodeCursor(1) + "A".repeat(40));
  });

  it.each([[42], [{ offset: 1 }], [["bzox"]], [true]])("refuses a non-string cursor %j", (cursor) => {
    expectInvalidCursor(cursor);
  });
});
