/**
 * RFC 9728 Protected Resource Metadata, at the path-aware location for /mcp and at the root (some clients
 * only try the root). Public, cacheable, and open to browsers (CORS is registered app-wide).
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Config } from './config.ts'
import { REQUIRED_SCOPE } from './auth/challenges.ts'

async function discovery (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const metadata = {
    resource: opts.config.GATEWAY_RESOURCE_URL,
    authorization_servers: [opts.config.ISSUER_URL],
    scopes_supported: [REQUIRED_SCOPE],
    bearer_methods_supported: ['header'],
    resource_name: 'uspl workspace MCP server'
  }
  const paths = new Set(['/.well-known/oauth-protected-resource', `/.well-known/oauth-protected-resource${new URL(opts.config.GATEWAY_RESOURCE_URL).pathname.replace(/\/$/, '')}`])
  for (const url of paths) {
    app.get(url, { config: { public: true } }, async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=3600')
      return metadata
    })
  }
}

export default fp(discovery, { name: 'gateway-discovery' })
