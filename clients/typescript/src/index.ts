/**
 * @temel/client — a typed client for the temel API.
 *
 * `schema.d.ts` is generated from the server's OpenAPI document (`./regenerate.sh`);
 * requests go through openapi-fetch, so paths, parameters, bodies and responses are
 * checked by the compiler. This file adds what every caller needs: the bearer token,
 * the language, and turning an error response into a thrown `TemelError` that carries
 * the RFC 9457 problem (with its `request_id`).
 */
import createClient, { type Client, type Middleware } from "openapi-fetch";

import type { components, paths } from "./schema.js";

export type { components, paths };
export type Schemas = components["schemas"];
export type Problem = Schemas["Problem"];
export type Language = "tr" | "en" | "pl";

export class TemelError extends Error {
  readonly status: number;
  readonly problem: Problem | undefined;

  constructor(status: number, problem: Problem | undefined) {
    super(problem ? `${status} ${problem.code}: ${problem.detail ?? problem.title} (request ${problem.request_id})` : `HTTP ${status}`);
    this.name = "TemelError";
    this.status = status;
    this.problem = problem;
  }
}

export interface TemelClientOptions {
  /** The server, e.g. "https://api.example.com" (the paths carry /api/v1). */
  baseUrl: string;
  /** An access token (JWT) or an API key (tml_...). */
  token?: string;
  /** Accept-Language: picks localized fields such as product names. */
  language?: Language;
  /** A fetch to use instead of globalThis.fetch. */
  fetch?: (input: Request) => Promise<Response>;
}

export type TemelClient = Client<paths> & {
  /** Use this token for the following requests (undefined: anonymous). */
  setToken(token: string | undefined): void;
};

export function createTemelClient(options: TemelClientOptions): TemelClient {
  let token = options.token;
  const client = createClient<paths>({
    baseUrl: options.baseUrl,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const auth: Middleware = {
    onRequest({ request }) {
      if (token) request.headers.set("Authorization", `Bearer ${token}`);
      if (options.language) request.headers.set("Accept-Language", options.language);
      return request;
    },
  };
  client.use(auth);
  return Object.assign(client, {
    setToken(t: string | undefined) {
      token = t;
    },
  });
}

/**
 * The body of a successful response, or a thrown TemelError:
 *   const me = await ok(api.GET("/api/v1/me"));
 */
export async function ok<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) throw new TemelError(response.status, error as Problem | undefined);
  return data as T;
}
