// The local Worker's environment defaults (scripts/local-gateway.ts): wrangler dev's tracing collector off unless the
// operator asked for it, for `npm start` (a child process) and the end-to-end stack (wrangler in-process).
import { afterEach, describe, expect, it } from "vitest";
import { applyLocalWorkerEnv, LOCAL_WORKER_ENV, withLocalWorkerEnv } from "../../scripts/local-gateway.ts";

const saved = process.env.X_LOCAL_OBSERVABILITY;
afterEach(() => {
  if (saved === undefined) delete process.env.X_LOCAL_OBSERVABILITY;
  else process.env.X_LOCAL_OBSERVABILITY = saved;
});

describe("local Worker environment", () => {
  it("turns wrangler dev's local observability collector off by default", () => {
    expect(LOCAL_WORKER_ENV).toEqual({ X_LOCAL_OBSERVABILITY: "false" });
    expect(withLocalWorkerEnv({ PATH: "/bin" })).toEqual({ PATH: "/bin", X_LOCAL_OBSERVABILITY: "false" });
  });

  it("leaves an operator's own choice alone, in a child's environment and in this process's", () => {
    expect(withLocalWorkerEnv({ X_LOCAL_OBSERVABILITY: "true" }).X_LOCAL_OBSERVABILITY).toBe("true");
    process.env.X_LOCAL_OBSERVABILITY = "true";
    applyLocalWorkerEnv();
    expect(process.env.X_LOCAL_OBSERVABILITY).toBe("true");
    delete process.env.X_LOCAL_OBSERVABILITY;
    applyLocalWorkerEnv();
    expect(process.env.X_LOCAL_OBSERVABILITY).toBe("false");
  });
});
