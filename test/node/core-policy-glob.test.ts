import { describe, expect, it } from "vitest";
import { SLASH, compileGlob, globError, isGlobPattern } from "../../src/policy/glob.ts";

const matches = (pattern: string, name: string) => compileGlob(pattern).test(name);

describe("policy globs", () => {
  it.each([
    // `*` is any run of characters: across "/", ".", ".." segments, leading dots and line breaks.
    ["*", "a/b", true],
    ["*", ".hidden", true],
    ["*", ".", true],
    ["*", "..", true],
    ["*", "./a", true],
    ["*", "a/../b", true],
    ["*", "line\nbreak", true],
    ["get_*", "get_a/b.c", true],
    ["get_*", "get_../../x", true],
    ["get_*", "get_", true],
    ["get_*", "list_a", false],
    ["get_*", "xget_a", false],
    ["*_admin", "x/y_admin", true],
    ["*_admin", "x_admin_not", false],
    ["*report*", "file:///r/q3.report.pdf", true],
    ["*report*", "file:///r/q3.pdf", false],
    ["file:///*", "file:///a/b/../../etc/passwd", true],
    ["file:///public/*", "file:///private/x", false],
    ["file:///*.txt", "file:///a/.b/c.txt", true],
    ["file:///*.txt", "file:///a/c.txt.bak", false],
    ["x/*/y", "x/a/b/y", true],
    ["x/*/y", "x/y", false],
    // Alternatives and extglobs.
    ["{get,list}_*", "list_x", true],
    ["{get,list}_*", "put_x", false],
    ["@(a|b)", "a", true],
    ["@(a|b)", "ab", false],
    ["!(delete_*)", "get_x", true],
    ["!(delete_*)", "delete_x", false],
    ["+(ab)", "ababab", true],
    // `?` is one character, "/" and "." included.
    ["a?c", "abc", true],
    ["a?c", "a/c", true],
    ["a?c", "a.c", true],
    ["a?c", "ac", false],
    ["a?c", "abbc", false],
    // Classes: sets, ranges, negation, POSIX classes; `[abc]` never matches its own text.
    ["[abc]", "b", true],
    ["[abc]", "d", false],
    ["[abc]", "[abc]", false],
    ["v[0-9]", "v7", true],
    ["v[!0-9]", "vx", true],
    ["v[!0-9]", "v7", false],
    ["v[!0-9]", "v/", true],
    ["[[:alpha:]]*", "x1", true],
    ["[[:alpha:]]*", "1x", false],
    // Dots are literal; matching is exact and case-sensitive.
    ["a.b", "a.b", true],
    ["a.b", "aXb", false],
    ["a.*", "a.txt", true],
    ["a.*", "aXtxt", false],
    ["Get_*", "get_x", false],
    // Escapes make glob characters literal.
    ["a\\*", "a*", true],
    ["a\\*", "ab", false],
  ] as const)("%j against %j: %s", (pattern, name, expected) => {
    expect(matches(pattern, name)).toBe(expected);
  });

  it("treats names without glob syntax as literal, matched by equality (the engine puts them in exact maps)", () => {
    for (const name of ["get_x", "a.b", "file:///a/b.txt", "ui://widget/1", "a+b", "a|b", "$x", "{a}", "x@y:z", "get-env", "a/b"]) {
      expect(isGlobPattern(name), name).toBe(false);
      expect(compileGlob(name).literal, name).toBe(true);
      expect(matches(name, name), name).toBe(true);
      expect(matches(name, `${name}x`), name).toBe(false);
    }
    for (const pattern of ["get_*", "a?", "[x]", "{a,b}", "@(a)", "!(a)", "a\\*", "!a"]) {
      expect(isGlobPattern(pattern), pattern).toBe(true);
    }
  });

  it("refuses patterns that are empty, too long, unbalanced or regex syntax", () => {
    expect(globError("get_*")).toBeUndefined();
    expect(globError("x".repeat(256))).toBeUndefined();
    expect(globError("")).toBe("must not be empty");
    expect(globError("x".repeat(257))).toBe("must be at most 256 characters");
    expect(globError("get_[")).toMatch(/^is not a valid glob: Missing closing: "\]"/);
    expect(globError("@(a|b")).toMatch(/^is not a valid glob: Missing closing: "\)"/);
    expect(globError("{a,b")).toMatch(/^is not a valid glob: Missing closing: "}"/);
    expect(globError("v[z-a]")).toMatch(/^is not a valid glob: .*Range out of order/);
    expect(globError("a(?!b)")).toMatch(/^must not contain "\(\?"/);
    expect(globError(`a${SLASH}b`)).toBe("must not contain U+E000 (reserved)");
  });
});
