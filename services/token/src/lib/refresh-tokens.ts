/**
 * Refresh tokens: random (256 bits), stored only as `rt:<sha256 hex>` and listed in the grant's set, so
 * the revocation module deletes every one of a grant at once. They rotate on every use: the presented
 * token is marked rotated (kept until it would have expired, so a later replay is recognised) and a new
 * one is written, in one Lua script. A rotated token presented again within the grace period is a
 * concurrent retry and gets a fresh token; after it, it is a replay and the caller revokes the grant.
 */
import { type RedisClient, runScript, script } from '@uspl/redis'
import { keys, randomToken, hashSecret } from '@uspl/core'

export interface RefreshTokenRecord {
  grantId: string
  clientId: string
  userId: string
  scope: string
  resource: string
  authTime: number
  issuedAt: number
  rotatedAt: number | null
}

export function newRefreshToken (r: Omit<RefreshTokenRecord, 'issuedAt' | 'rotatedAt'>): { token: string, hash: string, fields: Record<string, string> } {
  const token = randomToken(32)
  return {
    token,
    hash: hashSecret(token),
    fields: { grant_id: r.grantId, client_id: r.clientId, user_id: r.userId, scope: r.scope, resource: r.resource, auth_time: String(r.authTime), issued_at: String(Date.now()) }
  }
}

export type RotateResult = { status: 'ok', grantId: string } | { status: 'reused' | 'revoked', grantId: string } | { status: 'unknown' }

// KEYS: old rt, new rt, grant rt set, grant, active-grant pointer
// ARGV: nowMs, graceMs, rtTtl, newHash, then the new token's field/value pairs
const ROTATE = script('usplRefreshRotate', 5, `
local f = redis.call('HMGET', KEYS[1], 'grant_id', 'rotated_at')
if not f[1] then return {'unknown'} end
if redis.call('EXISTS', KEYS[4]) == 0 or redis.call('HEXISTS', KEYS[4], 'revoked_at') == 1 then return {'revoked', f[1]} end
if f[2] then
  if tonumber(ARGV[1]) - tonumber(f[2]) >= tonumber(ARGV[2]) then return {'reused', f[1]} end
else
  redis.call('HSET', KEYS[1], 'rotated_at', ARGV[1])
end
redis.call('HSET', KEYS[2], unpack(ARGV, 5))
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('EXPIRE', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[4], 'last_used_at', ARGV[1])
if redis.call('TTL', KEYS[4]) < tonumber(ARGV[3]) then redis.call('EXPIRE', KEYS[4], ARGV[3]) end
if redis.call('GET', KEYS[5]) == f[1] then redis.call('EXPIRE', KEYS[5], ARGV[3]) end
return {'ok', f[1]}
`)

export class RefreshTokenStore {
  constructor (private readonly redis: RedisClient) {}

  async get (token: string): Promise<RefreshTokenRecord | null> {
    if (token.length === 0 || token.length > 256) return null
    const h = await this.redis.hgetall(keys.refreshToken(hashSecret(token)))
    if (!h.grant_id) return null
    return {
      grantId: h.grant_id,
      clientId: h.client_id,
      userId: h.user_id,
      scope: h.scope,
      resource: h.resource,
      authTime: Number(h.auth_time),
      issuedAt: Number(h.issued_at),
      rotatedAt: h.rotated_at ? Number(h.rotated_at) : null
    }
  }

  async rotate (presented: string, current: RefreshTokenRecord, next: { hash: string, fields: Record<string, string> }, opts: { graceS: number, ttlS: number }): Promise<RotateResult> {
    const reply = await runScript(this.redis, ROTATE,
      keys.refreshToken(hashSecret(presented)), keys.refreshToken(next.hash), keys.grantRefreshTokens(current.grantId), keys.grant(current.grantId), keys.activeGrant(current.userId, current.clientId),
      String(Date.now()), String(opts.graceS * 1000), String(opts.ttlS), next.hash, ...Object.entries(next.fields).flat()) as string[]
    if (reply[0] === 'unknown') return { status: 'unknown' }
    return { status: reply[0] as 'ok' | 'reused' | 'revoked', grantId: reply[1] }
  }
}
