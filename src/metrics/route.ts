/**
 * @module `GET /metrics`: the Prometheus scrape endpoint (issue 6), authenticated like the admin API (issue 4) by
 * {@link requireAdmin}, which runs in front of this handler: a tenant's admin key sees that tenant's series only, the
 * platform admin token every tenant's, or one tenant's with `?tenant=`. Missing or bad credentials → 401 with a
 * `WWW-Authenticate` challenge, a consumer key → 403, a malformed `?tenant=` → 400 (src/admin/errors.ts).
 *
 * One D1 query sums `usage_hourly` over every hour and consumer, grouped by tenant, server and tool; exposition.ts
 * renders it. Nothing is cached: a per-isolate cache could hand a scrape an older total than the previous scrape
 * got from another isolate, which Prometheus would read as a counter reset.
 */
import { eq, sql, type AnyColumn, type SQL } from "drizzle-orm";
import type { Context } from "hono";
import type { AdminContext } from "../admin/auth.ts";
import { AdminError } from "../admin/errors.ts";
import { database } from "../db/client.ts";
import { usageHourly } from "../db/schema.ts";
import { LATENCY_BUCKET_COUNT } from "../metering/histogram.ts";
import { EXPOSITION_CONTENT_TYPE, renderExposition, type UsageTotals } from "./exposition.ts";

const total = (column: AnyColumn | SQL) => sql<number>`coalesce(sum(${column}), 0)`.mapWith(Number);

const bucketTotals = Object.fromEntries(
  Array.from({ length: LATENCY_BUCKET_COUNT }, (_, i) => [`bucket${i}`, total(sql.raw(`"latency_bucket_${i}"`))]),
) as Record<`bucket${number}`, ReturnType<typeof total>>;

/** All-time totals per (tenant, server, tool), of one tenant or (null) of every tenant. */
export async function usageTotals(d1: D1Database, tenant: string | null): Promise<UsageTotals[]> {
  const db = database(d1);
  const query = db
    .select({
      tenant: usageHourly.tenantId,
      server: usageHourly.server,
      tool: usageHourly.tool,
      ok: total(usageHourly.ok),
      errors: total(usageHourly.errors),
      denied: total(usageHourly.denied),
      limited: total(usageHourly.limited),
      unknown: total(usageHourly.unknown),
      unauthenticated: total(usageHourly.unauthenticated),
      latencySumMs: total(usageHourly.latencySumMs),
      requestBytes: total(usageHourly.requestBytes),
      responseBytes: total(usageHourly.responseBytes),
      ...bucketTotals,
    })
    .from(usageHourly);
  const rows = await (tenant === null ? query : query.where(eq(usageHourly.tenantId, tenant))).groupBy(
    usageHourly.tenantId,
    usageHourly.server,
    usageHourly.tool,
  );
  return rows.map((row) => ({
    tenant: row.tenant,
    server: row.server,
    tool: row.tool,
    calls: { ok: row.ok, error: row.errors, denied: row.denied, limited: row.limited, unknown: row.unknown, unauthenticated: row.unauthenticated },
    latencySumMs: row.latencySumMs,
    latencyBuckets: Array.from({ length: LATENCY_BUCKET_COUNT }, (_, i) => (row as unknown as Record<string, number>)[`bucket${i}`] ?? 0),
    requestBytes: row.requestBytes,
    responseBytes: row.responseBytes,
  }));
}

/** The handler behind requireAdmin: the exposition of the tenant the credential administers (or of all tenants). */
export async function serveMetrics(c: Context<AdminContext>): Promise<Response> {
  const admin = c.get("admin");
  // Only the platform token without ?tenant= scrapes every tenant; a tenant admin always has its own tenant here.
  if (!admin.platformAdmin && admin.tenant === null) throw new AdminError("forbidden", "This credential administers no tenant");
  const body = renderExposition(await usageTotals(c.env.DB, admin.tenant));
  return c.body(body, 200, { "content-type": EXPOSITION_CONTENT_TYPE, "cache-control": "no-store" });
}
