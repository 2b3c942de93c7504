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
          plugins: [cloudflareTest({ wrangler: { configPath: "./wrangler.toml" }, miniflare: { bindings: { TEST_MIGRATIONS: migrations, ALLOWED_HOSTS: "gateway.test" } } })],
          test: {
            name: "worker",
            include: ["test/worker/**/*.test.ts"],
            setupFiles: ["./test/worker/apply-migrations.ts"],
          },
        },
        {
          test: {
            name: "node",
            environment: "node",
            include: ["test/node/**/*.test.ts", "test/e2e/**/*.test.ts"],
            testTimeout: 60_000,
            hookTimeout: 120_000,
            // End-to-end suites start wrangler and child processes: keep them off each other's toes on 2 cores.
            fileParallelism: false,
          },
        },
      ],
    },
  };
});
