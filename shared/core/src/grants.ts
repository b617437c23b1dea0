/**
 * Grants: one user's authorization of one client. While a grant is active, a new consent for the same
 * user and client reuses it (one Connected App per client); once revoked, it is dead for good and the next
 * consent creates a new grant. Refresh tokens belong to a grant (see keys.grantRefreshTokens).
 */
import { type RedisClient, runScript, script } from '@uspl/redis'
import { keys, keyPatterns } from './keys.ts'
import { newId } from './crypto.ts'

/**
 * The terms of an authorization: who authorized which client, for what scope and resource, and when they
 * signed in. A grant, its codes and its refresh tokens each record them, under the same hash fields.
 */
export interface GrantTerms {
  userId: string
  clientId: string
  scope: string
  resource: string
  authTime: number
}

/** GrantTerms as hash fields. */
export function grantTermsFields (t: GrantTerms): Record<string, string> {
  return { user_id: t.userId, client_id: t.clientId, scope: t.scope, resource: t.resource, auth_time: String(t.authTime) }
}

/** GrantTerms from a hash that holds them (a grant, a code, a refresh token). */
export function readGrantTerms (h: Record<string, string>): GrantTerms {
  return { userId: h.user_id, clientId: h.client_id, scope: h.scope, resource: h.resource, authTime: Number(h.auth_time) }
}

export interface Grant extends GrantTerms {
  id: string
  createdAt: number
  lastUsedAt: number
  revokedAt: number | null
  revokedBy: string | null
  revocationId: string | null
  /** the enterprise issuer (its `ent_…` id) that manages this grant (ID-JAG), or null for a user's consent */
  managedBy: string | null
}

export function toGrant (h: Record<string, string>): Grant | null {
  if (!h.id) return null
  return {
    id: h.id,
    ...readGrantTerms(h),
    createdAt: Number(h.created_at),
    lastUsedAt: Number(h.last_used_at || h.created_at),
    revokedAt: h.revoked_at ? Number(h.revoked_at) : null,
    revokedBy: h.revoked_by || null,
    revocationId: h.revocation_id || null,
    managedBy: h.managed_by || null
  }
}

// The active grant's key: its id is read from the pointer, so it cannot be KEYS.
const ACTIVE_GRANT_KEY = keyPatterns({ grant: keys.grant }, 10)

// KEYS: activeGrant, (new) grant key, the user's grants, the client's grants
// ARGV: newId, userId, clientId, scope, resource, nowMs, authTime, ttlS, managedBy ('' = a user's consent), then ACTIVE_GRANT_KEY
const ENSURE_GRANT = script('usplEnsureGrant', 4, `${ACTIVE_GRANT_KEY.lua}
local existing = redis.call('GET', KEYS[1])
if existing then
  local gkey = key_grant(existing)
  if redis.call('EXISTS', gkey) == 1 and redis.call('HEXISTS', gkey, 'revoked_at') == 0 then
    redis.call('HSET', gkey, 'scope', ARGV[4], 'auth_time', ARGV[7], 'last_used_at', ARGV[6])
    if ARGV[9] ~= '' then redis.call('HSET', gkey, 'managed_by', ARGV[9]) end
    redis.call('EXPIRE', gkey, ARGV[8])
    redis.call('EXPIRE', KEYS[1], ARGV[8])
    return existing
  end
end
redis.call('HSET', KEYS[2], 'id', ARGV[1], 'user_id', ARGV[2], 'client_id', ARGV[3], 'scope', ARGV[4], 'resource', ARGV[5], 'created_at', ARGV[6], 'auth_time', ARGV[7], 'last_used_at', ARGV[6])
if ARGV[9] ~= '' then redis.call('HSET', KEYS[2], 'managed_by', ARGV[9]) end
redis.call('EXPIRE', KEYS[2], ARGV[8])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[8])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
return ARGV[1]
`)

export class GrantStore {
  constructor (private readonly redis: RedisClient, private readonly prefix: string) {}

  /** The user's active grant for the client, created when there is none; atomically. */
  async ensure (input: { userId: string, clientId: string, scope: string, resource: string, authTime: number, ttlS: number, managedBy?: string }): Promise<Grant> {
    const id = newId('grt', 16)
    const now = Date.now()
    const gid = await runScript(this.redis, ENSURE_GRANT, keys.activeGrant(input.userId, input.clientId), keys.grant(id), keys.userGrants(input.userId), keys.clientGrants(input.clientId),
      id, input.userId, input.clientId, input.scope, input.resource, String(now), String(input.authTime), String(input.ttlS), input.managedBy ?? '', ...ACTIVE_GRANT_KEY.argv(this.prefix)) as string
    const grant = await this.get(gid)
    if (!grant) throw new Error('grant vanished while being created')
    return grant
  }

  async get (id: string): Promise<Grant | null> {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) return null
    return toGrant(await this.redis.hgetall(keys.grant(id)))
  }

  async activeFor (userId: string, clientId: string): Promise<Grant | null> {
    const id = await this.redis.get(keys.activeGrant(userId, clientId))
    const grant = id ? await this.get(id) : null
    return grant && grant.revokedAt === null ? grant : null
  }

  private async many (ids: string[], indexKey: string): Promise<Grant[]> {
    if (ids.length === 0) return []
    const pipeline = this.redis.pipeline()
    for (const id of ids) pipeline.hgetall(keys.grant(id))
    const results = (await pipeline.exec()) ?? []
    const grants: Grant[] = []
    const gone: string[] = []
    results.forEach(([err, h], i) => {
      if (err) throw err
      const g = toGrant(h as Record<string, string>)
      if (g) grants.push(g)
      else gone.push(ids[i])
    })
    if (gone.length > 0) await this.redis.srem(indexKey, ...gone)
    return grants.sort((a, b) => b.createdAt - a.createdAt)
  }

  async listByUser (userId: string): Promise<Grant[]> {
    return this.many(await this.redis.smembers(keys.userGrants(userId)), keys.userGrants(userId))
  }

  async listByClient (clientId: string): Promise<Grant[]> {
    return this.many(await this.redis.smembers(keys.clientGrants(clientId)), keys.clientGrants(clientId))
  }

  async touch (id: string): Promise<void> {
    await this.redis.hset(keys.grant(id), 'last_used_at', String(Date.now()))
  }
}
