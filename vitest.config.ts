import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// One `vitest run`, two worlds: tests inside workerd (the Worker, its Durable Objects and local D1) and tests in
// Node (pure cores, the connector, end-to-end runs of the real Worker + connector + MCP servers).
export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  return {
    test: {
      projects: [
        {
          plugins: [
            cloudflareTest({
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                bindings: {
                  TEST_MIGRATIONS: migrations,
                  ALLOWED_HOSTS: "gateway.test",
                  // SHA-256 of PLATFORM_TOKEN (test/worker/fixtures.ts): the platform admin token of the worker tests.
                  ADMIN_TOKEN_SHA256: "b64caead7c91fd77e0917f545f289b85463cab064939b82648523f4ad4a1f7e3",
                  // The audit checkpoint signing key of the worker tests: the seed bytes 1…32 (docs/audit-chain.md's
                  // golden vector), so tests can sign checkpoints themselves. Checkpoints every 25 entries, not 1000.
                  AUDIT_SIGNING_KEY: "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA",
                  AUDIT_CHECKPOINT_EVERY: "25",
                  // Root of the audit webhooks' signing keys in the worker tests (test/worker/audit-delivery.test.ts).
                  AUDIT_WEBHOOK_SECRET: "test-audit-webhook-secret",
                  // Tenant hs-tenant's HS256 shared secret (test/worker/jwt.test.ts): JWT_<TENANT>_… names only.
                  JWT_HS_TENANT_SECRET: "test-hs256-shared-secret-of-32-bytes!",
                  // Credentials of the audit S3 sink in the worker tests; the receiver (test/worker/webhook-receiver.ts) knows them.
                  AUDIT_S3_ACCESS_KEY_ID: "TESTAUDITS3ACCESSKEY",
                  AUDIT_S3_SECRET_ACCESS_KEY: "test-audit-s3-secret-access-key",
                },
              },
            }),
          ],
          test: {
            name: "worker",
            include: ["test/worker/**/*.test.ts"],
            setupFiles: ["./test/worker/apply-migrations.ts"],
            // In Node: a real HTTP receiver on 127.0.0.1 for the audit webhook tests (its URL reaches them by inject()).
            globalSetup: ["./test/worker/webhook-receiver.ts"],
          },
        },
        {
          test: {
            name: "node",
            environment: "node",
            globalSetup: ["./test/build-connector.ts"],
            include: ["test/node/**/*.test.ts"],
            testTimeout: 60_000,
            hookTimeout: 120_000,
            // Some suites spawn the connector, the CLI and wrangler: one file at a time, as before the e2e split.
            fileParallelism: false,
          },
        },
        {
          test: {
            name: "e2e",
            environment: "node",
            globalSetup: ["./test/build-connector.ts"],
            include: ["test/e2e/**/*.test.ts"],
            testTimeout: 60_000,
            hookTimeout: 120_000,
            // End-to-end suites start wrangler and child processes: keep them off each other's toes on 2 cores,
            // and run them after the other projects, so the fault suites' recovery bounds never share the CPU with
            // the worker project's corpora.
            fileParallelism: false,
            sequence: { groupOrder: 1 },
          },
        },
      ],
    },
  };
});
