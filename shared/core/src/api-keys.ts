/**
 * Operator API keys: `uspl_` followed by 256 random bits, shown once, stored as a SHA-256 hash (a key is
 * looked up by its hash, and the stored hash is compared in constant time), revocable by id.
 */
import type { RedisClient } from '@uspl/redis'
import { keys } from './keys.ts'
import { randomToken, hashSecret, constantTimeEqual, newId } from './crypto.ts'

export const API_KEY_PREFIX = 'uspl_'

export interface ApiKey {
  id: string
  name: string
  createdAt: number
  lastUsedAt: number | null
}

export class ApiKeyStore {
  constructor (private readonly redis: RedisClient) {}

  async create (name: string): Promise<{ key: string, apiKey: ApiKey }> {
    const key = API_KEY_PREFIX + randomToken(32)
    const hash = hashSecret(key)
    const apiKey: ApiKey = { id: newId('key', 8), name, createdAt: Date.now(), lastUsedAt: null }
    await this.redis.multi()
      .hset(keys.apiKey(hash), { id: apiKey.id, name, created_at: String(apiKey.createdAt), hash })
      .hset(keys.apiKeys(), apiKey.id, hash)
      .exec()
    return { key, apiKey }
  }

  /** The key's record when `presented` is a live key; null otherwise. */
  async verify (presented: string): Promise<ApiKey | null> {
    if (!presented.startsWith(API_KEY_PREFIX) || presented.length > 128) return null
    const hash = hashSecret(presented)
    const h = await this.redis.hgetall(keys.apiKey(hash))
    if (!h.id || !constantTimeEqual(h.hash, hash)) return null
    return { id: h.id, name: h.name, createdAt: Number(h.created_at), lastUsedAt: h.last_used_at ? Number(h.last_used_at) : null }
  }

  async list (): Promise<ApiKey[]> {
    const all = await this.redis.hgetall(keys.apiKeys())
    const out: ApiKey[] = []
    for (const hash of Object.values(all)) {
      const h = await this.redis.hgetall(keys.apiKey(hash))
      if (h.id) out.push({ id: h.id, name: h.name, createdAt: Number(h.created_at), lastUsedAt: h.last_used_at ? Number(h.last_used_at) : null })
    }
    return out.sort((a, b) => a.createdAt - b.createdAt)
  }

  async revoke (id: string): Promise<boolean> {
    const hash = await this.redis.hget(keys.apiKeys(), id)
    if (!hash) return false
    await this.redis.multi().del(keys.apiKey(hash)).hdel(keys.apiKeys(), id).exec()
    return true
  }
}
