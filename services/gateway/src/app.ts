/**
 * The gateway: the MCP resource server AI clients connect to. Steps of every /mcp request: CORS, token
 * verification and denylist (auth/verifier.ts), session lookup and binding (routes/mcp.ts), then the
 * MCP SDK with the workspace tools (tools/). Revocation events close sessions by index (mcp/sessions.ts).
 */
import type { FastifyInstance } from 'fastify'
import cors from '@fastify/cors'
import { baseFastify, type AppOptions } from '@uspl/server'
import type { WorkspaceRepository } from '@uspl/core'
import type { Config } from './config.ts'
import metrics from './metrics.ts'
import origin from './origin.ts'
import discovery from './discovery.ts'
import verifier from './auth/verifier.ts'
import mcp from './mcp/index.ts'

export type { Config }

export interface GatewayOptions extends AppOptions {
  /** where the tools read and write workspace data; the Redis repository when absent (an upstream API could replace it) */
  repository?: WorkspaceRepository
}

export async function build (config: Config, options: GatewayOptions = {}): Promise<FastifyInstance> {
  const app = baseFastify('gateway', config, options)
  app.register(cors, {
    origin: '*',
    methods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
    // mcp-method and mcp-name: the standard headers of protocol 2026-07-28
    allowedHeaders: ['authorization', 'content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id', 'mcp-method', 'mcp-name'],
    exposedHeaders: ['www-authenticate', 'mcp-session-id', 'mcp-protocol-version'],
    maxAge: 600
  })
  app.register(origin, { config })
  app.register(metrics)
  app.register(discovery, { config })
  app.register(verifier, { config })
  app.register(mcp, { config, repository: options.repository })
  return app
}
