/** Connected Apps as the API and the page show them: a user's active grants joined with their clients. */
import type { FastifyInstance } from 'fastify'
import { EnterpriseIssuerStore, RedisSessionIndex, keys, type Client, type EnterpriseIssuer, type Grant } from '@uspl/core'
import { ApiError } from '@uspl/errors'
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

/** A metadata-document client's host (its client_id is the document URL), or null. */
export function documentHost (client: Client | null, clientId: string): string | null {
  if (client ? client.kind !== 'metadata_document' : !clientId.startsWith('https://')) return null
  try {
    return new URL(clientId).host
  } catch {
    return null
  }
}

/** Live MCP sessions of each grant: entries of ended sessions and of dead replicas do not count. */
export async function openSessions (app: FastifyInstance, grantIds: string[]): Promise<number[]> {
  return new RedisSessionIndex(app.redis, app.redisPrefix).liveCounts(grantIds)
}

/** Active grants, newest first, for a user, a client, or both. */
export async function activeGrants (app: FastifyInstance, filter: { userId?: string, clientId?: string }): Promise<Grant[]> {
  const { grants } = app.connectionsContext
  const list = filter.userId ? await grants.listByUser(filter.userId) : filter.clientId ? await grants.listByClient(filter.clientId) : []
  return list
    .filter((g) => g.revokedAt === null && (!filter.clientId || g.clientId === filter.clientId))
    .sort((a, b) => b.createdAt - a.createdAt)
}

/**
 * Everyone's active grants, one page at a time: users are walked with SSCAN (never the whole set at once),
 * each user's grants newest first. The cursor says where the page stopped: the SSCAN cursor of the batch,
 * the user within it and the grant within that user (a batch is re-read on the next page, so users added
 * meanwhile may be skipped or repeated, as SSCAN allows).
 */
export async function activeGrantsPage (app: FastifyInstance, cursor: string | undefined, limit: number): Promise<{ grants: Grant[], nextCursor: string | null }> {
  let [scan, user, offset] = decodeCursor(cursor)
  const out: Grant[] = []
  for (;;) {
    const [next, batch] = await app.redis.sscan(keys.users(), scan, 'COUNT', 100)
    const ids = [...batch].sort()
    for (; user < ids.length; user++, offset = 0) {
      const mine = await activeGrants(app, { userId: ids[user] })
      const take = mine.slice(offset, offset + limit - out.length)
      out.push(...take)
      if (out.length === limit) {
        const more = offset + take.length < mine.length
        const at: [string, number, number] = more ? [scan, user, offset + take.length] : [scan, user + 1, 0]
        return { grants: out, nextCursor: at[1] >= ids.length && next === '0' ? null : encodeCursor(at[1] >= ids.length ? [next, 0, 0] : at) }
      }
    }
    if (next === '0') return { grants: out, nextCursor: null }
    scan = next
    user = 0
    offset = 0
  }
}

function encodeCursor (c: [string, number, number]): string {
  return Buffer.from(c.join('.')).toString('base64url')
}

function decodeCursor (cursor: string | undefined): [string, number, number] {
  if (!cursor) return ['0', 0, 0]
  const m = /^(\d{1,20})\.(\d{1,6})\.(\d{1,6})$/.exec(Buffer.from(cursor, 'base64url').toString())
  if (!m) throw new ApiError('invalid_request', 'cursor is not one this API returned', 400)
  return [m[1], Number(m[2]), Number(m[3])]
}

/** A managed grant names its issuer; one whose issuer was removed still says it is managed (by its id). */
function managedBy (g: Grant, issuers: Map<string, EnterpriseIssuer>): Connection['managed_by'] {
  if (g.managedBy === null) return null
  const issuer = issuers.get(g.managedBy)
  return { issuer_id: g.managedBy, issuer: issuer?.issuer ?? g.managedBy, name: issuer?.name ?? g.managedBy }
}

export async function toConnections (app: FastifyInstance, grants: Grant[]): Promise<Connection[]> {
  const clientIds = [...new Set(grants.map((g) => g.clientId))]
  const clients = new Map(await Promise.all(clientIds.map(async (id) => [id, await app.connectionsContext.clients.get(id)] as const)))
  const sessions = await openSessions(app, grants.map((g) => g.id))
  const issuers = new Map<string, EnterpriseIssuer>()
  if (grants.some((g) => g.managedBy !== null)) for (const i of await new EnterpriseIssuerStore(app.redis).list()) issuers.set(i.id, i)
  return grants.map((g, i) => {
    const client = clients.get(g.clientId) ?? null
    return {
      grant_id: g.id,
      user_id: g.userId,
      client_id: g.clientId,
      client_name: displayName(client, g.clientId),
      logo_uri: client?.metadata.logo_uri ?? null,
      redirect_host: redirectHost(client),
      client_host: documentHost(client, g.clientId),
      scopes: g.scope.split(' ').filter((s) => s.length > 0),
      authorized_at: new Date(g.createdAt).toISOString(),
      last_used_at: new Date(g.lastUsedAt).toISOString(),
      open_sessions: sessions[i],
      managed_by: managedBy(g, issuers)
    }
  })
}
