/**
 * Global setup of the worker project, run in Node before the tests: a real HTTP receiver for the audit webhook and a
 * minimal S3-compatible object store on 127.0.0.1 (a random port), whose base URL reaches the tests in workerd by
 * `inject("auditWebhookReceiver")`.
 *
 * Each test uses its own channel (any path segment), so test files and tests never see each other's requests:
 * - `POST /hook/<channel>`: a delivery. Recorded (headers and raw body) and answered 204, or as told below.
 * - `PUT /s3/<channel>/<bucket>/<key…>`: an S3 PutObject, path style, the S3 endpoint being
 *   `<base>/s3/<channel>`. Its AWS Signature V4 is checked by {@link verifySigV4} (written here from the AWS
 *   specification with node:crypto, sharing nothing with the gateway's signer) against {@link S3_TEST_CREDENTIALS}:
 *   a bad or missing signature is answered 403 with an S3 error document (SignatureDoesNotMatch, …) and stores
 *   nothing. A good one stores the object (200 with an ETag), or is answered as told below.
 * - `POST /control/<channel>/fail` with `{"count": N, "status"?: 500, "hang"?: false}`: the next N deliveries or
 *   correctly signed PUTs get `status` (default 500), or, with `hang`, no answer at all until the caller gives up.
 * - `GET /control/<channel>/requests`: every delivery so far, in arrival order, as {@link ReceivedDelivery} objects.
 * - `GET /control/<channel>/s3`: every PUT so far ({@link ReceivedPut}) and the objects stored ({@link StoredObject}).
 * - `POST /stripe/<channel>/v1/billing/meter_events`: a fake of Stripe's Meter Events API, the Stripe base URL being
 *   `<base>/stripe/<channel>`. It wants `Authorization: Bearer` {@link STRIPE_TEST_KEY}, a form body with
 *   event_name, payload[stripe_customer_id], payload[value], timestamp and identifier, and an `Idempotency-Key`
 *   equal to the identifier (else 401/400 with Stripe's error shape). A repeated Idempotency-Key is replayed as
 *   Stripe does (same answer, `Idempotent-Replayed: true`, nothing recorded twice). `control/<channel>/fail` makes
 *   the next N of these fail too.
 * - `GET /control/<channel>/stripe`: every meter event request so far ({@link ReceivedStripeRequest}) and the
 *   events accepted ({@link AcceptedMeterEvent}), by identifier.
 * - `POST /control/<channel>/jwks` with a JWK Set (`{"keys": [...]}`, public keys): what `GET /jwks/<channel>` serves
 *   from then on (an empty set until told). `GET /control/<channel>/jwks-fetches` says how many times it was fetched.
 * - `GET /oidc/<channel>/.well-known/openid-configuration`: an OpenID discovery document for the issuer
 *   `<base>/oidc/<channel>`, whose jwks_uri is `<base>/jwks/<channel>` (test/worker/jwt.test.ts).
 * - `GET /.well-known/oauth-authorization-server/as/<channel>`: RFC 8414 metadata of the OAuth authorization server
 *   `<base>/as/<channel>` (path-inserted, and no OpenID configuration beside it), whose jwks_uri is
 *   `<base>/jwks/<channel>` (test/worker/oauth.test.ts).
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { TestProject } from "vitest/node";

export interface ReceivedDelivery {
  /** 1, 2, 3… per channel, in arrival order. */
  n: number;
  method: string;
  contentType: string | null;
  signature: string | null;
  deliveryId: string | null;
  /** The raw body, as received (what the signature covers). */
  body: string;
  /** What the receiver answered: a status, or "hung" when it never answered. */
  answered: number | "hung";
  receivedAt: number;
}

/** The S3 credentials the receiver accepts; the worker tests' AUDIT_S3_* bindings (vitest.config.ts) are these. */
export const S3_TEST_CREDENTIALS = { accessKeyId: "TESTAUDITS3ACCESSKEY", secretAccessKey: "test-audit-s3-secret-access-key" } as const;

/** One S3 PUT as the receiver saw it. */
export interface ReceivedPut {
  n: number;
  method: string;
  /** The request path as sent (percent-encoded), and the bucket and key it names (decoded). */
  rawPath: string;
  bucket: string;
  key: string;
  contentType: string | null;
  /** The `x-amz-meta-*` headers, by name without the prefix. */
  metadata: Record<string, string>;
  contentSha256: string | null;
  body: string;
  /** The signature check: its scope and signed headers when it passed, the S3 error code when it did not. */
  auth: SigV4Result;
  /** What the receiver answered: a status, or "hung". */
  answered: number | "hung";
}

/** An object in the receiver's store: the last accepted PUT of its key, and how many PUTs of that key were accepted. */
export interface StoredObject {
  bucket: string;
  key: string;
  body: string;
  contentType: string | null;
  metadata: Record<string, string>;
  writes: number;
}

/** The Stripe secret key the fake Stripe accepts (tests pass it to the Worker as STRIPE_API_KEY). */
export const STRIPE_TEST_KEY = "sk_test_mcp_gateway_fake_stripe_key";

/** One POST to the fake Stripe's /v1/billing/meter_events. */
export interface ReceivedStripeRequest {
  n: number;
  authorization: string | null;
  idempotencyKey: string | null;
  contentType: string | null;
  /** The form fields, decoded. */
  form: Record<string, string>;
  /** What the fake answered, and whether it was an idempotent replay. */
  answered: number | "hung";
  replayed: boolean;
}

/** A meter event the fake Stripe accepted (once per identifier). */
export interface AcceptedMeterEvent {
  identifier: string;
  event_name: string;
  payload: { stripe_customer_id: string; value: string };
  timestamp: number;
}

interface Channel {
  requests: ReceivedDelivery[];
  puts: ReceivedPut[];
  objects: Map<string, StoredObject>;
  stripe: ReceivedStripeRequest[];
  /** Accepted events by identifier, and the answers already given per Idempotency-Key (replayed as given). */
  meterEvents: Map<string, AcceptedMeterEvent>;
  idempotent: Map<string, { status: number; body: unknown }>;
  failures: { count: number; status: number; hang: boolean };
}

// ---------------------------------------------------------------------------------------------------------------
// AWS Signature Version 4, verified from the specification ("Authenticating Requests: Using the Authorization Header",
// Amazon S3 API reference): canonical request, string to sign, signing key. Independent of aws4fetch on purpose.
// ---------------------------------------------------------------------------------------------------------------

export type SigV4Result =
  | { ok: true; accessKeyId: string; date: string; region: string; service: string; signedHeaders: string[]; amzDate: string }
  | { ok: false; status: number; code: string; message: string; canonicalRequest?: string; stringToSign?: string };

/** The request as it came in: the raw request target's path and query, its headers (Node's), and the raw body. */
export interface SigV4Request {
  method: string;
  rawPath: string;
  rawQuery: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** URI-encode per SigV4: every byte of the UTF-8 form except A-Z a-z 0-9 - _ . ~ as %XX (upper case), "/" included. */
export function sigV4UriEncode(text: string): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** S3's canonical URI: the path as sent, each segment decoded once and URI-encoded (no dot-segment normalisation). */
function canonicalUri(rawPath: string): string {
  return rawPath
    .split("/")
    .map((segment) => sigV4UriEncode(decodeURIComponent(segment)))
    .join("/");
}

function canonicalQuery(rawQuery: string): string {
  if (rawQuery === "") return "";
  return rawQuery
    .split("&")
    .filter((pair) => pair !== "")
    .map((pair) => {
      const eq = pair.indexOf("=");
      const name = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq));
      const value = eq < 0 ? "" : decodeURIComponent(pair.slice(eq + 1));
      return [sigV4UriEncode(name), sigV4UriEncode(value)] as const;
    })
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join("&");
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}

const hmacSha256 = (key: string | Buffer, data: string): Buffer => createHmac("sha256", key).update(data, "utf8").digest();
const sha256Hex = (data: string | Buffer): string => createHash("sha256").update(data).digest("hex");

/**
 * Checks a request's `Authorization: AWS4-HMAC-SHA256 Credential=<id>/<date>/<region>/<service>/aws4_request,
 * SignedHeaders=<a;b;…>, Signature=<hex>` against `secretOf(<id>)`, as S3 does: `host`, `x-amz-date` and
 * `x-amz-content-sha256` must be signed, and every `x-amz-*` header sent; `x-amz-date` within 15 minutes of `nowMs`
 * and on the scope's date; `x-amz-content-sha256` the body's SHA-256 (or UNSIGNED-PAYLOAD); then the signature
 * recomputed: canonical request → string to sign → HMAC under the key derived from "AWS4" + secret, date, region,
 * service, "aws4_request".
 */
export function verifySigV4(request: SigV4Request, secretOf: (accessKeyId: string) => string | undefined, nowMs = Date.now()): SigV4Result {
  const fail = (status: number, code: string, message: string, extra: { canonicalRequest?: string; stringToSign?: string } = {}): SigV4Result => ({ ok: false, status, code, message, ...extra });
  const authorization = headerValue(request.headers, "authorization");
  if (!authorization) return fail(403, "AccessDenied", "no Authorization header");
  const match = /^AWS4-HMAC-SHA256 Credential=([^/\s,]+)\/(\d{8})\/([^/\s,]+)\/([^/\s,]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/.exec(authorization);
  if (!match) return fail(400, "AuthorizationHeaderMalformed", `cannot parse ${JSON.stringify(authorization)}`);
  const [, accessKeyId, date, region, service, signedHeaderList, signature] = match as unknown as [string, string, string, string, string, string, string];
  const secret = secretOf(accessKeyId);
  if (secret === undefined) return fail(403, "InvalidAccessKeyId", `unknown access key id ${accessKeyId}`);
  if (service !== "s3") return fail(400, "AuthorizationHeaderMalformed", `service ${service}, not s3`);
  const signedHeaders = signedHeaderList.split(";");
  if ([...signedHeaders].sort().join(";") !== signedHeaderList || new Set(signedHeaders).size !== signedHeaders.length) {
    return fail(400, "AuthorizationHeaderMalformed", "SignedHeaders must be sorted and unique");
  }
  for (const required of ["host", "x-amz-date", "x-amz-content-sha256"]) {
    if (!signedHeaders.includes(required)) return fail(403, "AccessDenied", `${required} is not signed`);
  }
  for (const name of Object.keys(request.headers)) {
    if (name.startsWith("x-amz-") && !signedHeaders.includes(name)) return fail(403, "AccessDenied", `${name} is sent but not signed`);
  }
  const amzDate = headerValue(request.headers, "x-amz-date") ?? "";
  const time = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!time) return fail(403, "AccessDenied", `bad x-amz-date ${JSON.stringify(amzDate)}`);
  if (amzDate.slice(0, 8) !== date) return fail(400, "AuthorizationHeaderMalformed", "the credential's date is not x-amz-date's");
  const signedAt = Date.UTC(Number(time[1]), Number(time[2]) - 1, Number(time[3]), Number(time[4]), Number(time[5]), Number(time[6]));
  if (Math.abs(nowMs - signedAt) > 15 * 60_000) return fail(403, "RequestTimeTooSkewed", `x-amz-date ${amzDate} is more than 15 minutes off`);
  const payloadHash = headerValue(request.headers, "x-amz-content-sha256") ?? "";
  if (payloadHash !== "UNSIGNED-PAYLOAD" && payloadHash !== sha256Hex(request.body)) {
    return fail(400, "XAmzContentSHA256Mismatch", "x-amz-content-sha256 is not the body's SHA-256");
  }
  const canonicalHeaders = signedHeaders
    .map((name) => {
      const value = headerValue(request.headers, name);
      return value === undefined ? undefined : `${name}:${value.trim().replace(/\s+/g, " ")}\n`;
    });
  if (canonicalHeaders.includes(undefined)) return fail(403, "AccessDenied", "a signed header is missing");
  const canonicalRequest = [request.method, canonicalUri(request.rawPath), canonicalQuery(request.rawQuery), canonicalHeaders.join(""), signedHeaderList, payloadHash].join("\n");
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256Hex(canonicalRequest)].join("\n");
  const signingKey = hmacSha256(hmacSha256(hmacSha256(hmacSha256(`AWS4${secret}`, date), region), service), "aws4_request");
  const expected = createHmac("sha256", signingKey).update(stringToSign, "utf8").digest();
  if (!timingSafeEqual(expected, Buffer.from(signature, "hex"))) {
    return fail(403, "SignatureDoesNotMatch", "the signature does not match", { canonicalRequest, stringToSign });
  }
  return { ok: true, accessKeyId, date, region, service, signedHeaders, amzDate };
}

function s3Error(response: ServerResponse, status: number, code: string, message: string): void {
  response
    .writeHead(status, { "content-type": "application/xml" })
    .end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message.replace(/[<&]/g, "")}</Message></Error>`);
}

function header(request: IncomingMessage, name: string): string | null {
  const value = request.headers[name];
  return typeof value === "string" ? value : null;
}

async function readRaw(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function readBody(request: IncomingMessage): Promise<string> {
  return (await readRaw(request)).toString("utf8");
}

function json(response: ServerResponse, status: number, value: unknown): void {
  response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const channels = new Map<string, Channel>();
  const channel = (name: string): Channel => {
    let found = channels.get(name);
    if (!found) channels.set(name, (found = { requests: [], puts: [], objects: new Map(), stripe: [], meterEvents: new Map(), idempotent: new Map(), failures: { count: 0, status: 500, hang: false } }));
    return found;
  };
  const keySets = new Map<string, { set: { keys: unknown[] }; fetches: number }>();
  const jwks = (name: string) => {
    let found = keySets.get(name);
    if (!found) keySets.set(name, (found = { set: { keys: [] }, fetches: 0 }));
    return found;
  };
  const server = createServer(async (request, response) => {
    try {
      const url = new URL(request.url ?? "/", "http://receiver");
      const [kind, name, action] = url.pathname.split("/").filter(Boolean);
      if (kind === "jwks" && name && request.method === "GET") {
        const state = jwks(name);
        state.fetches++;
        json(response, 200, state.set);
        return;
      }
      if (kind === "oidc" && name && url.pathname === `/oidc/${name}/.well-known/openid-configuration` && request.method === "GET") {
        const base = `http://${request.headers.host}`;
        json(response, 200, { issuer: `${base}/oidc/${name}`, jwks_uri: `${base}/jwks/${name}`, id_token_signing_alg_values_supported: ["RS256", "ES256"] });
        return;
      }
      const asChannel = /^\/\.well-known\/oauth-authorization-server\/as\/([^/]+)$/.exec(url.pathname)?.[1];
      if (asChannel && request.method === "GET") {
        const base = `http://${request.headers.host}`;
        json(response, 200, {
          issuer: `${base}/as/${asChannel}`,
          token_endpoint: `${base}/as/${asChannel}/token`,
          jwks_uri: `${base}/jwks/${asChannel}`,
          grant_types_supported: ["client_credentials"],
        });
        return;
      }
      if (kind === "control" && name && action === "jwks" && request.method === "POST") {
        jwks(name).set = JSON.parse(await readBody(request)) as { keys: unknown[] };
        json(response, 200, { ok: true });
        return;
      }
      if (kind === "control" && name && action === "jwks-fetches" && request.method === "GET") {
        json(response, 200, { count: jwks(name).fetches });
        return;
      }
      if (kind === "hook" && name && request.method === "POST") {
        const state = channel(name);
        const body = await readBody(request);
        const record: ReceivedDelivery = {
          n: state.requests.length + 1,
          method: request.method,
          contentType: header(request, "content-type"),
          signature: header(request, "x-mcp-gateway-signature"),
          deliveryId: header(request, "x-mcp-gateway-delivery"),
          body,
          answered: 204,
          receivedAt: Date.now(),
        };
        state.requests.push(record);
        if (state.failures.count > 0) {
          state.failures.count--;
          if (state.failures.hang) {
            record.answered = "hung";
            return; // never answered; the sender's timeout ends it
          }
          record.answered = state.failures.status;
          json(response, state.failures.status, { error: "told to fail" });
          return;
        }
        response.writeHead(204).end();
        return;
      }
      if (kind === "s3" && name && request.method === "PUT") {
        const state = channel(name);
        const target = request.url ?? "/";
        const q = target.indexOf("?");
        const rawPath = q < 0 ? target : target.slice(0, q);
        const rawQuery = q < 0 ? "" : target.slice(q + 1);
        const [, , , rawBucket, ...rawKey] = rawPath.split("/");
        const body = await readRaw(request);
        const auth = verifySigV4({ method: request.method, rawPath, rawQuery, headers: request.headers, body }, (id) =>
          id === S3_TEST_CREDENTIALS.accessKeyId ? S3_TEST_CREDENTIALS.secretAccessKey : undefined,
        );
        const metadata: Record<string, string> = {};
        for (const [header, value] of Object.entries(request.headers)) {
          if (header.startsWith("x-amz-meta-") && typeof value === "string") metadata[header.slice("x-amz-meta-".length)] = value;
        }
        const record: ReceivedPut = {
          n: state.puts.length + 1,
          method: request.method,
          rawPath,
          bucket: decodeURIComponent(rawBucket ?? ""),
          key: rawKey.map((segment) => decodeURIComponent(segment)).join("/"),
          contentType: header(request, "content-type"),
          metadata,
          contentSha256: header(request, "x-amz-content-sha256"),
          body: body.toString("utf8"),
          auth,
          answered: 200,
        };
        state.puts.push(record);
        if (!auth.ok) {
          record.answered = auth.status;
          s3Error(response, auth.status, auth.code, auth.message);
          return;
        }
        if (!record.bucket || !record.key) {
          record.answered = 400;
          s3Error(response, 400, "InvalidRequest", "PUT /s3/<channel>/<bucket>/<key>");
          return;
        }
        if (state.failures.count > 0) {
          state.failures.count--;
          if (state.failures.hang) {
            record.answered = "hung";
            return;
          }
          record.answered = state.failures.status;
          s3Error(response, state.failures.status, "InternalError", "told to fail");
          return;
        }
        const id = `${record.bucket}/${record.key}`;
        const writes = (state.objects.get(id)?.writes ?? 0) + 1;
        state.objects.set(id, { bucket: record.bucket, key: record.key, body: record.body, contentType: record.contentType, metadata, writes });
        response.writeHead(200, { etag: `"${createHash("md5").update(body).digest("hex")}"` }).end();
        return;
      }
      if (kind === "control" && name && action === "s3" && request.method === "GET") {
        const state = channel(name);
        json(response, 200, { puts: state.puts, objects: [...state.objects.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)) });
        return;
      }
      if (kind === "stripe" && name && request.method === "POST" && url.pathname === `/stripe/${name}/v1/billing/meter_events`) {
        const state = channel(name);
        const form = Object.fromEntries(new URLSearchParams(await readBody(request)));
        const record: ReceivedStripeRequest = {
          n: state.stripe.length + 1,
          authorization: header(request, "authorization"),
          idempotencyKey: header(request, "idempotency-key"),
          contentType: header(request, "content-type"),
          form,
          answered: 200,
          replayed: false,
        };
        state.stripe.push(record);
        const stripeError = (status: number, type: string, message: string) => {
          record.answered = status;
          json(response, status, { error: { type, message } });
        };
        if (record.authorization !== `Bearer ${STRIPE_TEST_KEY}`) return stripeError(401, "invalid_request_error", "Invalid API Key provided");
        if (!record.contentType?.startsWith("application/x-www-form-urlencoded")) return stripeError(400, "invalid_request_error", "the body must be form-encoded");
        if (!record.idempotencyKey) return stripeError(400, "invalid_request_error", "this fake wants an Idempotency-Key");
        const replay = state.idempotent.get(record.idempotencyKey);
        if (replay) {
          record.answered = replay.status;
          record.replayed = true;
          response.writeHead(replay.status, { "content-type": "application/json", "idempotent-replayed": "true" }).end(JSON.stringify(replay.body));
          return;
        }
        if (state.failures.count > 0) {
          state.failures.count--;
          if (state.failures.hang) {
            record.answered = "hung";
            return;
          }
          // Stripe does not store a 5xx for replay: a retry with the same key runs again.
          return stripeError(state.failures.status, "api_error", "told to fail");
        }
        const missing = ["event_name", "payload[stripe_customer_id]", "payload[value]", "timestamp", "identifier"].filter((k) => !form[k]);
        if (missing.length > 0) return stripeError(400, "invalid_request_error", `missing ${missing.join(", ")}`);
        if (form.identifier !== record.idempotencyKey) return stripeError(400, "invalid_request_error", "this fake wants Idempotency-Key = identifier");
        if (state.meterEvents.has(form.identifier as string)) {
          return stripeError(400, "invalid_request_error", `An event already exists with identifier ${form.identifier}`);
        }
        const event: AcceptedMeterEvent = {
          identifier: form.identifier as string,
          event_name: form.event_name as string,
          payload: { stripe_customer_id: form["payload[stripe_customer_id]"] as string, value: form["payload[value]"] as string },
          timestamp: Number(form.timestamp),
        };
        state.meterEvents.set(event.identifier, event);
        const body = { object: "billing.meter_event", created: Math.floor(Date.now() / 1000), livemode: false, ...event };
        state.idempotent.set(record.idempotencyKey, { status: 200, body });
        json(response, 200, body);
        return;
      }
      if (kind === "control" && name && action === "stripe" && request.method === "GET") {
        const state = channel(name);
        json(response, 200, { requests: state.stripe, events: [...state.meterEvents.values()] });
        return;
      }
      if (kind === "control" && name && action === "fail" && request.method === "POST") {
        const told = JSON.parse((await readBody(request)) || "{}") as { count?: number; status?: number; hang?: boolean };
        channel(name).failures = { count: told.count ?? 1, status: told.status ?? 500, hang: told.hang ?? false };
        json(response, 200, { ok: true });
        return;
      }
      if (kind === "control" && name && action === "requests" && request.method === "GET") {
        json(response, 200, channel(name).requests);
        return;
      }
      json(response, 404, { error: "not found" });
    } catch (error) {
      json(response, 500, { error: (error as Error).message });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  project.provide("auditWebhookReceiver", `http://127.0.0.1:${port}`);
  return async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}
