/** Connected Apps as the API and the page show them: a user's active grants joined with their clients. */
import type { FastifyInstance } from 'fastify'
import { keys, liveSessionCounts, type Client, type Grant } from '@uspl/core'
import type { Connection } from './schemas.ts'

export function displayName (client: Client | null, clientId: string): string {
  const name = client?.metadata.client_name?.trim()
  return name && name.length > 0 ? name : clientId
}

function redirectHost (client: Client | null): string | null {
  const first = client?.metadata.redirect_uris[0]
  if (!first) return null
  try {
    return new URL(first).host || null
  } catch {
    return null
  }
}

/** Live MCP sessions of each grant: entries of ended sessions and of dead replicas do not count. */
export async function openSessions (app: FastifyInstance, grantIds: string[]): Promise<number[]> {
  return liveSessionCounts(app.redis, app.redisPrefix, grantIds)
}

/** Active grants, newest first, for a user, a client, both, or (neither) everyone. */
export async function activeGrants (app: FastifyInstance, filter: { userId?: string, clientId?: string }): Promise<Grant[]> {
  const { grants } = app.domain
  let list: Grant[]
  if (filter.userId) list = await grants.listByUser(filter.userId)
  else if (filter.clientId) list = await grants.listByClient(filter.clientId)
  else {
    const users = await app.redis.smembers(keys.users())
    list = (await Promise.all(users.map((u) => grants.listByUser(u)))).flat()
  }
  return list
    .filter((g) => g.revokedAt === null && (!filter.clientId || g.clientId === filter.clientId))
    .sort((a, b) => b.createdAt - a.createdAt)
}

export async function toConnections (app: FastifyInstance, grants: Grant[]): Promise<Connection[]> {
  const clientIds = [...new Set(grants.map((g) => g.clientId))]
  const clients = new Map(await Promise.all(clientIds.map(async (id) => [id, await app.domain.clients.get(id)] as const)))
  const sessions = await openSessions(app, grants.map((g) => g.id))
  return grants.map((g, i) => {
    const client = clients.get(g.clientId) ?? null
    return {
      grant_id: g.id,
      user_id: g.userId,
      client_id: g.clientId,
      client_name: displayName(client, g.clientId),
      logo_uri: client?.metadata.logo_uri ?? null,
      redirect_host: redirectHost(client),
      scopes: g.scope.split(' ').filter((s) => s.length > 0),
      authorized_at: new Date(g.createdAt).toISOString(),
      last_used_at: new Date(g.lastUsedAt).toISOString(),
      open_sessions: sessions[i]
    }
  })
}
