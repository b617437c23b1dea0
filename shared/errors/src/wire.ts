/**
 * How a catalogued error is written on the wire, each format by one function:
 * - oauthBody: RFC 6749 §5.2 `{ error, error_description }` (RFC 7591 §3.2.2, RFC 7009, RFC 7662 and the
 *   RFC 6750 §3.1 body share its members);
 * - apiBody: the REST APIs' `{ error: { code, message } }`;
 * - rpcBody: the JSON-RPC 2.0 error object `{ jsonrpc, error: { code, message }, id }`;
 * - secEventBody: RFC 8935 §2.4 `{ err, description }`;
 * - bearerChallenge: the RFC 6750 §3 `WWW-Authenticate: Bearer …` value;
 * - errorHeaders: the headers an error's answer carries (Cache-Control, Retry-After, WWW-Authenticate), the
 *   one place Retry-After is written.
 * renderError puts them together; writeError answers on a bare node:http response (the Fastify glue is
 * shared/server's errorHandler and sendError).
 */
import type { ServerResponse, OutgoingHttpHeaders } from 'node:http'
import { HttpError, OAuthError, ApiError, RpcError, SecEventError } from './errors.ts'

export type WireFormat = 'oauth' | 'api' | 'jsonrpc' | 'secevent'

export interface OAuthErrorBody { error: string, error_description: string }
export interface ApiErrorBody { error: { code: string, message: string } }
export interface RpcErrorBody { jsonrpc: '2.0', error: { code: number, message: string }, id: string | number | null }
export interface SecEventErrorBody { err: string, description: string }

export function oauthBody (err: HttpError): OAuthErrorBody {
  return { error: err.code, error_description: err.description }
}

export function apiBody (err: HttpError): ApiErrorBody {
  return { error: { code: err.code, message: err.description } }
}

/** `id: null` as the transport specification has for errors outside any request. */
export function rpcBody (err: HttpError, id: string | number | null = null): RpcErrorBody {
  const code = err instanceof RpcError ? err.rpcCode : err.statusCode >= 500 ? -32603 : -32000
  return { jsonrpc: '2.0', error: { code, message: err.description }, id }
}

export function secEventBody (err: HttpError): SecEventErrorBody {
  return { err: err.code, description: err.description }
}

/** `Bearer k="v", …` in the given order (RFC 6750 §3; quotes and backslashes are dropped from values). */
export function bearerChallenge (params: Record<string, string | undefined> = {}): string {
  const given = Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined)
  if (given.length === 0) return 'Bearer'
  return `Bearer ${given.map(([k, v]) => `${k}="${v.replace(/["\\]/g, '')}"`).join(', ')}`
}

/** The headers an error's answer carries, from the error itself. */
export function errorHeaders (err: Pick<HttpError, 'noStore' | 'retryAfterS' | 'challenge' | 'headers'>): Record<string, string> {
  const headers: Record<string, string> = {}
  if (err.noStore) headers['cache-control'] = 'no-store'
  if (err.retryAfterS !== undefined) headers['retry-after'] = String(err.retryAfterS)
  if (err.challenge !== undefined) headers['www-authenticate'] = err.challenge
  return Object.assign(headers, err.headers)
}

/** The format an error is written in: its own class's, else the answering service's. */
export function formatOf (err: HttpError, fallback: WireFormat): WireFormat {
  if (err instanceof OAuthError) return 'oauth'
  if (err instanceof ApiError) return 'api'
  if (err instanceof RpcError) return 'jsonrpc'
  if (err instanceof SecEventError) return 'secevent'
  return fallback
}

const BODIES: Record<WireFormat, (err: HttpError) => object> = { oauth: oauthBody, api: apiBody, jsonrpc: rpcBody, secevent: secEventBody }

export interface RenderedError {
  status: number
  headers: Record<string, string>
  body: object
  format: WireFormat
}

export function renderError (err: HttpError, fallback: WireFormat = 'oauth'): RenderedError {
  const format = formatOf(err, fallback)
  return { status: err.statusCode, headers: errorHeaders(err), body: BODIES[format](err), format }
}

/** Answers an error on a bare node:http response (the MCP transport's own writes), after `headers`. */
export function writeError (res: ServerResponse, err: HttpError, headers: OutgoingHttpHeaders = {}, fallback: WireFormat = 'oauth'): void {
  const rendered = renderError(err, fallback)
  res.writeHead(rendered.status, { ...headers, 'content-type': 'application/json', ...rendered.headers })
  res.end(JSON.stringify(rendered.body))
}
