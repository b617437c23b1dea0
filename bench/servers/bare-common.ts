/** What the bare baselines share: Redis and the tools' stores, the fixed caller, body reading, listen and stop. */
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { createRedis, type RedisClient } from '@uspl/redis'
import { AccountStore, RedisWorkspaceRepository } from '@uspl/core'
import type { ToolDeps } from '@uspl/gateway/tools/context'

export function bareDeps (name: string): { redis: RedisClient, deps: ToolDeps } {
  const redis = createRedis({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix: process.env.REDIS_PREFIX ?? 'bench:', name })
  redis.on('error', () => {})
  return { redis, deps: { accounts: new AccountStore(redis), repo: new RedisWorkspaceRepository(redis) } }
}

/** The caller every request is served as: the seeded user (no token is checked). */
export function bareCaller (): { token: string, clientId: string, scopes: string[], extra: Record<string, unknown> } {
  const userId = process.env.BARE_USER_ID
  if (!userId) throw new Error('BARE_USER_ID is required: the user the bare server serves')
  return { token: 'none', clientId: 'bare', scopes: ['mcp:tools'], extra: { userId } }
}

export async function readJson (req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  const text = Buffer.concat(chunks).toString()
  return text === '' ? undefined : JSON.parse(text)
}

export function listen (http: Server, onStop: () => void, redis: RedisClient): void {
  http.keepAliveTimeout = 72000
  http.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1')
  process.once('SIGTERM', () => {
    onStop()
    http.closeAllConnections()
    http.close(() => { redis.disconnect(); process.exit(0) })
  })
}

/** Answers /health/live and /health/ready (Redis connected); false for any other path. */
export function health (req: IncomingMessage, res: ServerResponse, redis: RedisClient): boolean {
  if (req.url !== '/health/ready' && req.url !== '/health/live') return false
  const ok = req.url === '/health/live' || redis.status === 'ready'
  res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ok ? 'ok' : 'not_ready' }))
  return true
}
