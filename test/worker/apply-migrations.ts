import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

// Every test file starts from the real schema (migrations/), applied to its own isolated local D1.
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
