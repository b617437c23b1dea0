/**
 * The MCP plugin: session registry, revocation feed, /mcp routes. The feed applies each revocation event
 * to the registry (by index) and records how late it was; readiness waits for the feed to be subscribed
 * and caught up, so a replica whose subscription dropped serves again only after replaying what it missed.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { AccountStore, RedisSessionIndex, RedisWorkspaceRepository, RevocationFeed, type RevocationEvent, type WorkspaceRepository } from '@uspl/core'
import { type Config, replicaId, replicaUrl, resourceMetadataUrl } from '../config.ts'
import { SessionRegistry } from './sessions.ts'
import { McpEndpoint, mcpRoutes } from '../routes/mcp.ts'
import { ReplicaHeartbeat } from './heartbeat.ts'
import { StatelessEndpoint } from './stateless.ts'
import { Forwarder } from './forward.ts'
import { ToolCatalog } from './catalog.ts'

declare module 'fastify' {
  interface FastifyInstance {
    mcpSessions: SessionRegistry
    revocationFeed: RevocationFeed
    replicaHeartbeat: ReplicaHeartbeat
  }
}

export interface McpPluginOptions {
  config: Config
  repository?: WorkspaceRepository
}

async function mcpPlugin (app: FastifyInstance, opts: McpPluginOptions): Promise<void> {
  const { config } = opts
  const index = new RedisSessionIndex(app.redis, config.REDIS_PREFIX, replicaId(config))
  const registry = new SessionRegistry({
    index,
    metrics: app.metrics,
    log: app.log,
    idleTimeoutS: config.SESSION_IDLE_TIMEOUT_S,
    touchIntervalS: config.SESSION_TOUCH_INTERVAL_S
  })

  const apply = (event: RevocationEvent, source: 'live' | 'replay'): void => {
    // remembered first: the client's next request, sent the moment its stream ends, is refused from memory
    app.denylist.remember(event)
    const closed = registry.applyRevocation(event)
    app.metrics.revocationsApplied.inc({ scope: event.scope, source })
    app.metrics.revokedSessions.inc(closed)
    if (closed > 0) app.metrics.revocationLag.observe(Math.max(0, Date.now() - event.at) / 1000)
    app.log.info({ eventId: event.id, scope: event.scope, source, closed }, 'revocation applied')
  }
  const feed = new RevocationFeed({ url: config.REDIS_URL, prefix: config.REDIS_PREFIX, redis: app.redis, onEvent: apply, log: app.log })

  app.decorate('mcpSessions', registry)
  app.decorate('revocationFeed', feed)
  app.readiness.set('revocation-feed', () => feed.ready ? null : 'replaying revocation events')
  app.addHook('onReady', async () => { await feed.start() })
  // before the server stops listening: open SSE streams would otherwise hold the close
  app.addHook('preClose', async () => { await registry.closeAll('shutdown') })

  // replica liveness: a heartbeat in Redis, so a killed replica's index entries stop counting (heartbeat.ts)
  const heartbeat = new ReplicaHeartbeat({
    redis: app.redis,
    replica: replicaId(config),
    url: replicaUrl(config),
    intervalMs: config.REPLICA_HEARTBEAT_INTERVAL_MS,
    ttlMs: config.REPLICA_HEARTBEAT_TTL_MS,
    idleTtlS: config.SESSION_IDLE_TIMEOUT_S,
    index,
    held: () => registry.all(),
    log: app.log
  })
  app.decorate('replicaHeartbeat', heartbeat)
  app.readiness.set('replica-heartbeat', () => heartbeat.alive ? null : 'replica heartbeat not refreshed')
  app.addHook('onReady', async () => { await heartbeat.start() })
  app.addHook('preClose', async () => { await heartbeat.stop() })

  const deps = { accounts: new AccountStore(app.redis), repo: opts.repository ?? new RedisWorkspaceRepository(app.redis), log: app.log }
  const catalog = new ToolCatalog(deps)
  const stateless = new StatelessEndpoint({
    catalog,
    registry,
    metrics: app.metrics,
    log: app.log,
    resource: new URL(config.GATEWAY_RESOURCE_URL),
    resourceMetadataUrl: resourceMetadataUrl(config)
  })
  const forwarder = new Forwarder({ replica: replicaId(config), connectTimeoutMs: config.FORWARD_CONNECT_TIMEOUT_MS, metrics: app.metrics })
  app.addHook('onClose', async () => {
    forwarder.close()
    await stateless.close()
    await feed.close()
  })

  mcpRoutes(app, new McpEndpoint(app, {
    config,
    registry,
    index,
    catalog,
    replica: replicaId(config),
    replicaUrl: replicaUrl(config),
    forwarder,
    stateless
  }))
}

export default fp(mcpPlugin, { name: 'gateway-mcp', dependencies: ['uspl-redis', 'gateway-metrics', 'gateway-verifier'] })
