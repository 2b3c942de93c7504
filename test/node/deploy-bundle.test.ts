/**
 * `npm run deploy` builds: the production bundle (wrangler's esbuild, not the vitest plugin's) resolves every import
 * for workerd, declares its bindings, and stays far below Workers' script size limit.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { wrangler } from "../../scripts/local-gateway.ts";

const outdir = mkdtempSync(join(tmpdir(), "mcp-gateway-bundle-"));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

it("bundles for deployment with its D1 and Durable Object bindings", async () => {
  const output = await wrangler(["deploy", "--dry-run", "--outdir", outdir]);
  expect(output).toMatch(/env\.CONNECTOR \(ConnectorDurableObject\)\s+Durable Object/);
  expect(output).toMatch(/env\.DB \(mcp-gateway\)\s+D1 Database/);
  const gzipKiB = Number(/gzip: ([\d.]+) KiB/.exec(output)?.[1]);
  // Workers' free-plan limit is 3 MiB compressed; a bundle ten times smaller leaves room for the other pillars.
  expect(gzipKiB).toBeGreaterThan(0);
  expect(gzipKiB).toBeLessThan(1024);
}, 120_000);
