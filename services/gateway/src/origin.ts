/**
 * Origin validation (MCP Streamable HTTP transport, security warning: servers MUST validate `Origin` to
 * stop DNS rebinding and drive-by pages). A request with an `Origin` header to any route that is not
 * declared `public` (the MCP endpoint; discovery, metrics and health are public documents) must come from
 * an allowed origin, or it answers 403 with a JSON-RPC error, before its token is looked at. A request
 * without `Origin` passes: non-browser clients (SDKs, desktop apps, hosted agents) send none.
 * Allowed: ALLOWED_ORIGINS (comma-separated origins, `*` for any), plus the gateway's own origin
 * (GATEWAY_RESOURCE_URL) and the issuer's (ISSUER_URL).
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { RpcError, RpcCode } from '@uspl/errors'
import { sendError } from '@uspl/server'
import type { Config } from './config.ts'

/** The exact origins a browser may call the MCP endpoint from, or null when any origin may. */
export function allowedOrigins (config: Pick<Config, 'ALLOWED_ORIGINS' | 'GATEWAY_RESOURCE_URL' | 'ISSUER_URL'>): Set<string> | null {
  const listed = config.ALLOWED_ORIGINS.split(',').map((o) => o.trim()).filter((o) => o.length > 0)
  if (listed.includes('*')) return null
  return new Set([new URL(config.GATEWAY_RESOURCE_URL).origin, new URL(config.ISSUER_URL).origin, ...listed.map((o) => new URL(o).origin)])
}

async function originCheck (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const allowed = allowedOrigins(opts.config)
  if (allowed === null) return
  app.addHook('onRequest', async (request, reply) => {
    const origin = request.headers.origin
    if (origin === undefined || request.routeOptions.config.public === true || allowed.has(origin)) return
    request.log.info({ origin }, 'request from a disallowed origin refused')
    return sendError(reply, new RpcError(403, RpcCode.ServerError, 'Forbidden: this Origin may not call the MCP endpoint', { noStore: true }))
  })
}

export default fp(originCheck, { name: 'uspl-gateway-origin', fastify: '5.x' })
