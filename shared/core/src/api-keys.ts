/**
 * API keys: `uspl_` followed by 256 random bits, shown once, stored as a SHA-256 hash (a key is looked up
 * by its hash, and the stored hash is compared in constant time), revocable by id. Two kinds:
 *
 * - operator keys (the connections operator API, /introspect): `verify` accepts only these;
 * - personal keys, bound to a user (name, optional expiry): the workspace REST API (services/api) accepts
 *   only these, through `authenticate`, and the key acts as its user with that user's roles.
 *
 * `authenticate` reads the key's record and, for a personal key, its user on every call. The workspace
 * API reads the same records through a cache that Redis keeps true (services/api/src/live-cache.ts) and
 * judges them with the same functions (`keyOfRecord`, `judgeKey`). `last used` is written at most once a
 * minute per key (a SET NX marker shared by all replicas decides who writes). Creating and revoking a key are audit records in the revocation trail,
 * written in the same transaction as the change.
 */
import { runScript, script, prefixOf, hashOfReply, type RedisClient } from '@uspl/redis'
import { keys, keyPatterns } from './keys.ts'
import { randomToken, hashSecret, constantTimeEqual, newId } from './crypto.ts'
import { appendAudit, type AuditRecord } from './revocation-worker.ts'
import type { RevocationActor } from './revocation.ts'

export const API_KEY_PREFIX = 'uspl_'
export const LAST_USED_INTERVAL_MS = 60_000
const NAME_MAX = 100

// KEYS[1] the key's record. ARGV: now (ms). Writes last used unless the key was revoked meanwhile.
const TOUCH = script('usplApiKeyTouch', 1, `
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'last_used_at', ARGV[1]) end
return 1`)

// The keys found from the record: its user's, and its last-used marker's (by the key's id).
const CHECK_KEYS = keyPatterns({ user: keys.user, apiKeyUsed: keys.apiKeyUsed }, 2)

// KEYS[1] the key's record. ARGV: the marker's lifetime (ms), then CHECK_KEYS. Returns {} when there is no
// record, else { the record (HGETALL), a personal key's user's id and disabled_at ({} for an operator key),
// 1 when this call took the minute's last-used marker }. The caller judges (keyOfRecord, judgeKey).
const CHECK = script('usplApiKeyCheck', 1, `${CHECK_KEYS.lua}
local r = redis.call('HGETALL', KEYS[1])
local f = {}
for i = 1, #r, 2 do f[r[i]] = r[i + 1] end
if not f.id then return {} end
local u = {}
if f.user_id and f.user_id ~= '' then u = redis.call('HMGET', key_user(f.user_id), 'id', 'disabled_at') end
local won = 0
if redis.call('SET', key_apiKeyUsed(f.id), '1', 'PX', ARGV[1], 'NX') then won = 1 end
return { r, u, won }
`)

export type ApiKeyKind = 'operator' | 'personal'

export interface ApiKey {
  id: string
  name: string
  kind: ApiKeyKind
  /** the user a personal key acts as; null for operator keys */
  userId: string | null
  createdAt: number
  lastUsedAt: number | null
  /** epoch ms after which the key is refused; null: never */
  expiresAt: number | null
}

export type KeyCheck =
  | { ok: true, key: ApiKey }
  | { ok: false, reason: 'unknown' | 'expired' | 'user_disabled' }

/** What `ApiKeyStore.lookup` found: the judgement, and whether it took this minute's last-used marker. */
export interface KeyLookup { check: KeyCheck, hash: string, claimed: boolean }

export interface CreateKeyOptions {
  /** a personal key for this user (who must exist and not be disabled); omitted: an operator key */
  userId?: string
  expiresAt?: number | null
  /** who created it, for the audit trail (default: the system) */
  actor?: RevocationActor
}

export class ApiKeyError extends Error {}

/** A user's `id` and `disabled_at` fields, as HMGET returns them. */
export type UserFields = Array<string | null>

/** The SHA-256 a key is stored under, or null when `presented` cannot be a key. */
export function apiKeyHash (presented: string): string | null {
  if (!presented.startsWith(API_KEY_PREFIX) || presented.length > 128) return null
  return hashSecret(presented)
}

/** The key a stored record describes, when it is the record of `hash` (compared in constant time). */
export function keyOfRecord (record: Record<string, string>, hash: string): ApiKey | null {
  if (!record.id || !constantTimeEqual(record.hash, hash)) return null
  return toKey(record)
}

function isExpired (key: ApiKey, now: number): boolean {
  return key.expiresAt !== null && now >= key.expiresAt
}

/** Whether a known key may be used now: not expired, and a personal key's user active. No I/O. */
export function judgeKey (key: ApiKey, user: UserFields | null, now: number): KeyCheck {
  if (isExpired(key, now)) return { ok: false, reason: 'expired' }
  if (key.userId) {
    const [id, disabled] = user ?? [null, null]
    if (!id || disabled) return { ok: false, reason: 'user_disabled' }
  }
  return { ok: true, key }
}

function toKey (h: Record<string, string>): ApiKey {
  return {
    id: h.id,
    name: h.name,
    kind: h.kind === 'personal' ? 'personal' : 'operator',
    userId: h.user_id || null,
    createdAt: Number(h.created_at),
    lastUsedAt: h.last_used_at ? Number(h.last_used_at) : null,
    expiresAt: h.expires_at ? Number(h.expires_at) : null
  }
}

export class ApiKeyStore {
  constructor (private readonly redis: RedisClient, private readonly opts: { auditRetentionS?: number } = {}) {}

  async create (name: string, opts: CreateKeyOptions = {}): Promise<{ key: string, apiKey: ApiKey }> {
    const trimmed = name.trim()
    if (trimmed.length === 0 || trimmed.length > NAME_MAX) throw new ApiKeyError(`a key name is 1 to ${NAME_MAX} characters`)
    const expiresAt = opts.expiresAt ?? null
    if (expiresAt !== null && (!Number.isFinite(expiresAt) || expiresAt <= Date.now())) throw new ApiKeyError('the expiry must be in the future')
    if (opts.userId !== undefined) {
      const [id, disabled] = await this.redis.hmget(keys.user(opts.userId), 'id', 'disabled_at')
      if (!id || disabled) throw new ApiKeyError(`no active user ${opts.userId}`)
    }
    const key = API_KEY_PREFIX + randomToken(32)
    const hash = hashSecret(key)
    const apiKey: ApiKey = {
      id: newId('key', 8),
      name: trimmed,
      kind: opts.userId !== undefined ? 'personal' : 'operator',
      userId: opts.userId ?? null,
      createdAt: Date.now(),
      lastUsedAt: null,
      expiresAt
    }
    const tx = this.redis.multi()
      .hset(keys.apiKey(hash), {
        id: apiKey.id, name: apiKey.name, kind: apiKey.kind, user_id: apiKey.userId ?? '',
        created_at: String(apiKey.createdAt), expires_at: expiresAt === null ? '' : String(expiresAt), hash
      })
      .hset(keys.apiKeys(), apiKey.id, hash)
    if (apiKey.userId) tx.sadd(keys.userApiKeys(apiKey.userId), apiKey.id)
    await appendAudit(tx, this.audit('api_key_create', apiKey, opts.actor), this.opts.auditRetentionS).exec()
    return { key, apiKey }
  }

  /** The key's record when `presented` is a live operator key; null otherwise (a personal key is not one). */
  async verify (presented: string): Promise<ApiKey | null> {
    const check = await this.authenticate(presented)
    return check.ok && check.key.kind === 'operator' ? check.key : null
  }

  /**
   * Any live key: known, not expired, and for a personal key a user who exists and is not disabled. One
   * round trip (a script reads the record, a personal key's user, and takes the last-used marker); a
   * second once a minute to write last used.
   */
  async authenticate (presented: string): Promise<KeyCheck> {
    const found = await this.lookup(presented)
    await this.settleUse(found)
    return found.check
  }

  /**
   * The read half of `authenticate`: the key judged, and whether this call took the minute's last-used
   * marker. A caller that accepts the request then calls `settleUse`; one that refuses it for another reason
   * (a rate limit) calls `releaseUse`.
   */
  async lookup (presented: string): Promise<KeyLookup> {
    const hash = apiKeyHash(presented)
    if (hash === null) return { check: { ok: false, reason: 'unknown' }, hash: '', claimed: false }
    const reply = await runScript(this.redis, CHECK, keys.apiKey(hash), String(LAST_USED_INTERVAL_MS), ...CHECK_KEYS.argv(prefixOf(this.redis))) as [] | [string[], UserFields, number]
    if (reply.length === 0) return { check: { ok: false, reason: 'unknown' }, hash, claimed: false }
    const [flat, user, won] = reply
    const key = keyOfRecord(hashOfReply(flat), hash)
    if (key === null) return { check: { ok: false, reason: 'unknown' }, hash, claimed: false }
    return { check: judgeKey(key, key.userId ? user : null, Date.now()), hash, claimed: won === 1 }
  }

  /** Writes last used when the lookup accepted the key and took the minute's marker. */
  async settleUse (found: KeyLookup): Promise<void> {
    if (!found.check.ok || !found.claimed) return
    found.claimed = false
    await this.recordUse(found.check.key, found.hash, Date.now())
  }

  /**
   * Gives back the minute's marker a lookup took for a request that was then refused before `settleUse`
   * (a rate limit), so the next accepted use still writes last used.
   */
  async releaseUse (found: KeyLookup): Promise<void> {
    if (!found.check.ok || !found.claimed) return
    found.claimed = false
    await this.redis.del(keys.apiKeyUsed(found.check.key.id))
  }

  /**
   * Writes last used (the caller has just won the minute's marker, with SET NX on keys.apiKeyUsed); a key
   * revoked meanwhile is not recreated.
   */
  async recordUse (key: ApiKey, hash: string, now: number): Promise<void> {
    await runScript(this.redis, TOUCH, keys.apiKey(hash), String(now))
    key.lastUsedAt = now
  }

  /** Takes this minute's last-used marker of a key; true when this caller should write last used. */
  async claimUse (key: ApiKey): Promise<boolean> {
    return await this.redis.set(keys.apiKeyUsed(key.id), '1', 'PX', LAST_USED_INTERVAL_MS, 'NX') === 'OK'
  }

  async get (id: string): Promise<ApiKey | null> {
    const hash = await this.redis.hget(keys.apiKeys(), id)
    if (!hash) return null
    const h = await this.redis.hgetall(keys.apiKey(hash))
    return h.id ? toKey(h) : null
  }

  /** Every key (operators), or one user's personal keys; oldest first. */
  async list (filter: { userId?: string, kind?: ApiKeyKind } = {}): Promise<ApiKey[]> {
    let hashes: string[]
    if (filter.userId !== undefined) {
      const ids = await this.redis.smembers(keys.userApiKeys(filter.userId))
      hashes = ids.length > 0 ? (await this.redis.hmget(keys.apiKeys(), ...ids)).filter((x): x is string => x !== null) : []
    } else {
      hashes = Object.values(await this.redis.hgetall(keys.apiKeys()))
    }
    if (hashes.length === 0) return []
    const pipeline = this.redis.pipeline()
    for (const hash of hashes) pipeline.hgetall(keys.apiKey(hash))
    const out: ApiKey[] = []
    for (const [err, h] of (await pipeline.exec()) ?? []) {
      if (err) throw err
      const record = h as Record<string, string>
      if (!record.id) continue
      const key = toKey(record)
      if (filter.userId !== undefined && key.userId !== filter.userId) continue
      if (filter.kind !== undefined && key.kind !== filter.kind) continue
      out.push(key)
    }
    return out.sort((a, b) => a.createdAt - b.createdAt)
  }

  /**
   * Revokes a key: its record goes, so the next request with it fails everywhere. With `ownerId`, only
   * that user's personal key (anyone else's is "not found"). Returns the revoked key, or null.
   */
  async revoke (id: string, opts: { actor?: RevocationActor, ownerId?: string } = {}): Promise<ApiKey | null> {
    const hash = await this.redis.hget(keys.apiKeys(), id)
    if (!hash) return null
    const h = await this.redis.hgetall(keys.apiKey(hash))
    if (!h.id) {
      await this.redis.hdel(keys.apiKeys(), id)
      return null
    }
    const key = toKey(h)
    if (opts.ownerId !== undefined && key.userId !== opts.ownerId) return null
    const tx = this.redis.multi()
      .del(keys.apiKey(hash), keys.apiKeyUsed(id))
      .hdel(keys.apiKeys(), id)
    if (key.userId) tx.srem(keys.userApiKeys(key.userId), id)
    const results = await appendAudit(tx, this.audit('api_key_revoke', key, opts.actor), this.opts.auditRetentionS).exec()
    if (!results) throw new Error('key revocation aborted')
    for (const [err] of results) if (err) throw err
    return results[0][1] === 0 ? null : key
  }

  private audit (path: 'api_key_create' | 'api_key_revoke', key: ApiKey, actor: RevocationActor = { type: 'system', id: 'cli' }): AuditRecord {
    const now = Date.now()
    return {
      // one record per key and change: a repeated revoke never writes a second one
      event_id: `${path === 'api_key_create' ? 'kc' : 'kr'}-${key.id}`,
      at: now,
      recorded_at: now,
      scope: 'api_key',
      target: key.id,
      grant_ids: [],
      client_id: null,
      user_id: key.userId,
      jti: null,
      path,
      actor
    }
  }
}
