/**
 * Refresh tokens: random (256 bits), stored only as `rt:<sha256 hex>` and listed in the grant's set, so
 * the revocation module deletes every one of a grant at once. They rotate on every use: the presented
 * token is marked rotated (kept until it would have expired, so a later replay is recognised) and a new
 * one is written, in one Lua script. A rotated token presented again within the grace period is a
 * concurrent retry and gets the SAME successor, so a grant always has one live refresh token (a thief
 * racing the client cannot fork a second chain that reuse detection never sees); after the grace period
 * it is a replay and the caller revokes the grant. The successor is kept for the grace period only,
 * encrypted with AES-256-GCM under a key derived (HKDF-SHA256) from the presented token itself: only a
 * holder of the old token can read it, and Redis never holds a usable refresh token.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { type RedisClient, runScript, script } from '@uspl/redis'
import { keys, randomToken, hashSecret, grantTermsFields, readGrantTerms, type GrantTerms } from '@uspl/core'

function successorKey (presented: string): Buffer {
  return Buffer.from(hkdfSync('sha256', presented, 'uspl refresh successor', 'aes-256-gcm', 32))
}

/** The successor, sealed for the holder of the presented token: iv (12) | tag (16) | ciphertext, base64url. */
export function sealSuccessor (presented: string, successor: string): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', successorKey(presented), iv)
  const ct = Buffer.concat([cipher.update(successor, 'utf8'), cipher.final()])
  return Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64url')
}

export function openSuccessor (presented: string, sealed: string): string | null {
  try {
    const raw = Buffer.from(sealed, 'base64url')
    const decipher = createDecipheriv('aes-256-gcm', successorKey(presented), raw.subarray(0, 12))
    decipher.setAuthTag(raw.subarray(12, 28))
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')
  } catch {
    return null
  }
}

export interface RefreshTokenRecord extends GrantTerms {
  grantId: string
  issuedAt: number
  rotatedAt: number | null
}

export function newRefreshToken (r: Omit<RefreshTokenRecord, 'issuedAt' | 'rotatedAt'>): { token: string, hash: string, fields: Record<string, string> } {
  const token = randomToken(32)
  return {
    token,
    hash: hashSecret(token),
    fields: { grant_id: r.grantId, ...grantTermsFields(r), issued_at: String(Date.now()) }
  }
}

/**
 * The keys a new refresh token of a grant is written under, in the order STORE_REFRESH_TOKEN_LUA reads
 * them as KEYS[1..4]: the token, the grant's token set, the grant, the user's active-grant pointer.
 */
export function refreshTokenKeys (hash: string, grant: { grantId: string, userId: string, clientId: string }): [string, string, string, string] {
  return [keys.refreshToken(hash), keys.grantRefreshTokens(grant.grantId), keys.grant(grant.grantId), keys.activeGrant(grant.userId, grant.clientId)]
}

/**
 * Lua, for a script whose KEYS begin with refreshTokenKeys: `grant_live()`, whether the grant exists and is
 * not revoked; `store_refresh_token(gid, hash, ttl, now, first)` writes the new token (its field/value
 * pairs are ARGV from `first` on), lists it in the grant's set, and keeps the grant and its active-grant
 * pointer at least as long as the token. Redeeming a code (codes.ts) and rotating write through it.
 */
export const STORE_REFRESH_TOKEN_LUA = `
local function grant_live()
  return redis.call('EXISTS', KEYS[3]) == 1 and redis.call('HEXISTS', KEYS[3], 'revoked_at') == 0
end
local function store_refresh_token(gid, hash, ttl, now, first)
  redis.call('HSET', KEYS[1], unpack(ARGV, first))
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('SADD', KEYS[2], hash)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('HSET', KEYS[3], 'last_used_at', now)
  if redis.call('TTL', KEYS[3]) < tonumber(ttl) then redis.call('EXPIRE', KEYS[3], ttl) end
  if redis.call('GET', KEYS[4]) == gid then redis.call('EXPIRE', KEYS[4], ttl) end
end
`

/** `refreshToken` is the one live refresh token of the grant: the new one, or on a retry the same successor. */
export type RotateResult = { status: 'ok', grantId: string, refreshToken: string } | { status: 'reused' | 'revoked', grantId: string } | { status: 'unknown' }

// KEYS: refreshTokenKeys of the new token, then the old token, the old token's sealed successor
// ARGV: nowMs, graceMs, rtTtl, newHash, sealed new token, its member in the grant's set, then the new
//       token's field/value pairs
// A first rotation marks the old token and keeps the sealed successor for the grace period; a retry
// within it gets that sealed successor back and writes nothing; after it (or without it), a reuse.
const ROTATE = script('usplRefreshRotate', 6, `${STORE_REFRESH_TOKEN_LUA}
local f = redis.call('HMGET', KEYS[5], 'grant_id', 'rotated_at')
if not f[1] then return {'unknown'} end
if not grant_live() then return {'revoked', f[1]} end
if f[2] then
  if tonumber(ARGV[1]) - tonumber(f[2]) >= tonumber(ARGV[2]) then return {'reused', f[1]} end
  local sealed = redis.call('GET', KEYS[6])
  if not sealed then return {'reused', f[1]} end
  return {'retry', f[1], sealed}
end
redis.call('HSET', KEYS[5], 'rotated_at', ARGV[1])
-- kept a little past the window (replicas' clocks differ); the window itself is decided by rotated_at
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[6], ARGV[5], 'PX', tonumber(ARGV[2]) + 5000)
  redis.call('SADD', KEYS[2], ARGV[6])
end
store_refresh_token(f[1], ARGV[4], ARGV[3], ARGV[1], 7)
return {'ok', f[1]}
`)

export class RefreshTokenStore {
  constructor (private readonly redis: RedisClient) {}

  async get (token: string): Promise<RefreshTokenRecord | null> {
    if (token.length === 0 || token.length > 256) return null
    const h = await this.redis.hgetall(keys.refreshToken(hashSecret(token)))
    if (!h.grant_id) return null
    return { grantId: h.grant_id, ...readGrantTerms(h), issuedAt: Number(h.issued_at), rotatedAt: h.rotated_at ? Number(h.rotated_at) : null }
  }

  async rotate (presented: string, current: RefreshTokenRecord, next: { token: string, hash: string, fields: Record<string, string> }, opts: { graceS: number, ttlS: number }): Promise<RotateResult> {
    const oldHash = hashSecret(presented)
    const reply = await runScript(this.redis, ROTATE, ...refreshTokenKeys(next.hash, current), keys.refreshToken(oldHash), keys.refreshTokenSuccessor(oldHash),
      String(Date.now()), String(opts.graceS * 1000), String(opts.ttlS), next.hash, sealSuccessor(presented, next.token), keys.refreshTokenSuccessorMember(oldHash), ...Object.entries(next.fields).flat()) as string[]
    if (reply[0] === 'unknown') return { status: 'unknown' }
    if (reply[0] === 'ok') return { status: 'ok', grantId: reply[1], refreshToken: next.token }
    if (reply[0] === 'retry') {
      const successor = openSuccessor(presented, reply[2])
      return successor ? { status: 'ok', grantId: reply[1], refreshToken: successor } : { status: 'reused', grantId: reply[1] }
    }
    return { status: reply[0] as 'reused' | 'revoked', grantId: reply[1] }
  }
}
