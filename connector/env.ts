/**
 * @module A server's environment: `${VAR}` references in gateway.yaml resolved from the connector's own environment,
 * and the minimal environment a child process starts with.
 *
 * Pure. Secrets live in the connector host's environment and reach only the child that declares them; they are
 * never logged, never reported to the edge, and redacted from the child's stderr before it is logged or reported.
 */

export type HostEnv = Readonly<Record<string, string | undefined>>;

export type ResolvedEnv =
  | {
      ok: true;
      env: Record<string, string>;
      /** Values that came from the host environment: redact them wherever the child's output is shown. */
      secrets: string[];
    }
  | { ok: false; error: string };

/** `$$` (a literal `$`) or `${...}` (a reference; the braces' content is validated after the match). */
const TOKEN = /\$\$|\$\{([^}]*)\}/g;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Resolves `${VAR}` in each declared value from `hostEnv`; `$$` stands for a literal `$`, and any other `$` is kept
 * as written. Fails closed: a reference to a variable that is unset or empty is an error naming the server, the
 * key and the variable, so a server never starts with a blank secret.
 */
export function resolveServerEnv(serverId: string, declared: Readonly<Record<string, string>>, hostEnv: HostEnv): ResolvedEnv {
  const env: Record<string, string> = {};
  const secrets = new Set<string>();
  for (const [key, template] of Object.entries(declared)) {
    let error: string | undefined;
    const value = template.replace(TOKEN, (token: string, name: string | undefined) => {
      if (token === "$$") return "$";
      if (name === undefined || !ENV_NAME.test(name)) {
        error ??= `server "${serverId}": env.${key} has an invalid reference "${token}"; write \${NAME} with a variable name, or $$ for a literal $`;
        return "";
      }
      const hostValue = hostEnv[name];
      if (hostValue === undefined || hostValue === "") {
        error ??= `server "${serverId}": env.${key} references \${${name}}, which is not set in the connector's environment; set ${name} where the connector runs (the server is not started without it)`;
        return "";
      }
      secrets.add(hostValue);
      return hostValue;
    });
    if (error !== undefined) return { ok: false, error };
    env[key] = value;
  }
  // Longest first, so a secret that contains another is redacted whole.
  return { ok: true, env, secrets: [...secrets].sort((a, b) => b.length - a.length) };
}

/**
 * What every child inherits from the host: enough to find executables and a home directory. Nothing else, so the
 * connector's own secrets (its token, other servers' credentials) never reach a child that did not declare them.
 */
const BASE_VARIABLES = ["PATH", "HOME"];
/** Windows programs fail in odd ways without these (sockets need SystemRoot, npx needs APPDATA). */
const WINDOWS_BASE_VARIABLES = ["SystemRoot", "SystemDrive", "windir", "ComSpec", "PATHEXT", "TEMP", "TMP", "USERPROFILE", "APPDATA", "LOCALAPPDATA"];

/** The environment a child starts with: the minimal base from the host, then the server's declared (resolved) env. */
export function childEnvironment(declaredResolved: Readonly<Record<string, string>>, hostEnv: HostEnv, platform: string): Record<string, string> {
  const names = platform === "win32" ? [...BASE_VARIABLES, ...WINDOWS_BASE_VARIABLES] : BASE_VARIABLES;
  const env: Record<string, string> = {};
  for (const name of names) {
    const value = hostEnv[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...declaredResolved };
}

/** Short values ("1", "yes") would shred unrelated text and are not credentials worth hiding. */
const MIN_REDACTED_LENGTH = 4;

/** Replaces every occurrence of a secret in text with `[redacted]` (for a child's stderr). */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= MIN_REDACTED_LENGTH) out = out.split(secret).join("[redacted]");
  }
  return out;
}
