/**
 * @module `mcp-gateway`, the admin CLI: the process shell around {@link runCli} (argv, env, stdout/stderr, exit).
 */
import { pathToFileURL } from "node:url";
import { runCli } from "./commands.ts";

export { runCli, type CliIo } from "./commands.ts";

export function main(argv: readonly string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return runCli(argv, env, {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  });
}

// `node connector/cli/main.ts` (npm run cli).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main();
}
