/// <reference types="@cloudflare/vitest-plugin/types" />
// Types for tests inside workerd: the Worker's bindings on `env`, its default export on `exports`.
import type { D1Migration } from "cloudflare:test";
import type { Env as GatewayEnv } from "../../src/env.ts";

declare global {
  namespace Cloudflare {
    interface Env extends GatewayEnv {
      TEST_MIGRATIONS: D1Migration[];
    }
    interface GlobalProps {
      mainModule: typeof import("../../src/index.ts");
      durableNamespaces: "ConnectorDurableObject" | "AuditLogDurableObject" | "RateLimiterDurableObject";
    }
  }
}

// Values the worker project's global setup hands the tests (`inject()` in a test, `provide()` in the setup).
declare module "vitest" {
  export interface ProvidedContext {
    /** Base URL of the Node HTTP receiver of test/worker/webhook-receiver.ts, e.g. http://127.0.0.1:41234. */
    auditWebhookReceiver: string;
  }
}
