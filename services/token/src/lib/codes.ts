/**
 * Pending authorization requests and authorization codes.
 * - A request validated by /authorize waits under a random id (10 minutes) for sign-in and consent;
 *   the consent decision consumes it (GETDEL), so a decision is taken once.
 * - A code is random (256 bits), stored only as its SHA-256 hash for 60 s, bound to the client, redirect
 *   URI, PKCE challenge, resource, scope, user and grant. Redeeming it is one Lua script that deletes it,
 *   leaves a used-code marker holding the grant id (so a second use revokes that grant), and writes the
 *   first refresh token into the grant, or nothing at all.
 */
import { type RedisClient, runScript, script } from '@uspl/redis'
import { keys, randomToken, hashSecret, grantTermsFields, readGrantTerms, type GrantTerms } from '@uspl/core'
import { STORE_REFRESH_TOKEN_LUA, refreshTokenKeys } from './refresh-tokens.ts'

export const AUTH_REQUEST_TTL_S = 600
export const CODE_TTL_S = 60
/** how long a redeemed code is remembered, so a replay is recognised and revokes the grant */
export const USED_CODE_TTL_S = 3600

export interface AuthRequest {
  clientId: string
  redirectUri: string
  state: string | null
  codeChallenge: string
  scope: string
  resource: string
  createdAt: number
}

export class AuthRequestStore {
  constructor (private readonly redis: RedisClient) {}

  async create (req: AuthRequest): Promise<string> {
    const id = randomToken(18)
    await this.redis.set(keys.authRequest(hashSecret(id)), JSON.stringify(req), 'EX', AUTH_REQUEST_TTL_S)
    return id
  }

  async get (id: string): Promise<AuthRequest | null> {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) return null
    const raw = await this.redis.get(keys.authRequest(hashSecret(id)))
    return raw ? JSON.parse(raw) as AuthRequest : null
  }

  /** Reads and deletes: a decision is taken once. */
  async take (id: string): Promise<AuthRequest | null> {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) return null
    const raw = await this.redis.getdel(keys.authRequest(hashSecret(id)))
    return raw ? JSON.parse(raw) as AuthRequest : null
  }
}

export interface CodeRecord extends GrantTerms {
  redirectUri: string
  codeChallenge: string
  grantId: string
}

export type CodeLookup = { status: 'valid', record: CodeRecord } | { status: 'used', grantId: string } | { status: 'unknown' }

// KEYS: refreshTokenKeys of the first refresh token, then the code, its used marker
// ARGV: usedTtl, rtTtl, rtHash, nowMs, then the new refresh token's field/value pairs
const REDEEM = script('usplCodeRedeem', 6, `${STORE_REFRESH_TOKEN_LUA}
if redis.call('EXISTS', KEYS[5]) == 0 then
  local g = redis.call('GET', KEYS[6])
  if g then return {'used', g} end
  return {'unknown'}
end
local gid = redis.call('HGET', KEYS[5], 'grant_id')
redis.call('DEL', KEYS[5])
redis.call('SET', KEYS[6], gid, 'EX', ARGV[1])
if not grant_live() then return {'revoked', gid} end
store_refresh_token(gid, ARGV[3], ARGV[2], ARGV[4], 5)
return {'ok', gid}
`)

export class CodeStore {
  constructor (private readonly redis: RedisClient) {}

  async issue (record: CodeRecord): Promise<string> {
    const code = randomToken(32)
    const key = keys.authCode(hashSecret(code))
    await this.redis.multi()
      .hset(key, { ...grantTermsFields(record), redirect_uri: record.redirectUri, code_challenge: record.codeChallenge, grant_id: record.grantId })
      .expire(key, CODE_TTL_S)
      .exec()
    return code
  }

  async lookup (code: string): Promise<CodeLookup> {
    if (code.length === 0 || code.length > 256) return { status: 'unknown' }
    const hash = hashSecret(code)
    const [[, h], [, used]] = await this.redis.multi().hgetall(keys.authCode(hash)).get(keys.usedAuthCode(hash)).exec() as [[null, Record<string, string>], [null, string | null]]
    if (h.grant_id) {
      return {
        status: 'valid',
        record: { ...readGrantTerms(h), redirectUri: h.redirect_uri, codeChallenge: h.code_challenge, grantId: h.grant_id }
      }
    }
    return used ? { status: 'used', grantId: used } : { status: 'unknown' }
  }

  /** Deletes a code that a refused request presented (a wrong verifier burns it; no grant is touched). */
  async burn (code: string): Promise<void> {
    await this.redis.del(keys.authCode(hashSecret(code)))
  }

  /** Consumes the code and stores the grant's first refresh token, atomically. */
  async redeem (code: string, record: CodeRecord, refresh: { hash: string, ttlS: number, fields: Record<string, string> }): Promise<{ status: 'ok' | 'used' | 'revoked' | 'unknown', grantId: string | null }> {
    const hash = hashSecret(code)
    const pairs = Object.entries(refresh.fields).flat()
    const reply = await runScript(this.redis, REDEEM, ...refreshTokenKeys(refresh.hash, record), keys.authCode(hash), keys.usedAuthCode(hash),
      String(USED_CODE_TTL_S), String(refresh.ttlS), refresh.hash, String(Date.now()), ...pairs) as string[]
    return { status: reply[0] as 'ok' | 'used' | 'revoked' | 'unknown', grantId: reply[1] ?? null }
  }
}
