/**
 * The gateway's JSON-RPC error answers, written in one place: the body (`id: null`, as the transport
 * specification has for errors outside any request), and the reply with its status and headers.
 */
import type { FastifyReply } from 'fastify'

export function rpcErrorBody (code: number, message: string): string {
  return JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null })
}

/** Answers a JSON-RPC error through Fastify (not cached; `retryAfterS` for a 429 or 503). */
export function sendRpcError (reply: FastifyReply, status: number, code: number, message: string, retryAfterS?: number): FastifyReply {
  reply.code(status).header('cache-control', 'no-store').header('content-type', 'application/json')
  if (retryAfterS !== undefined) reply.header('retry-after', String(retryAfterS))
  return reply.send(rpcErrorBody(code, message))
}
