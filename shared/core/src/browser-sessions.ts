/**
 * Browser sessions: the cookie holds a random id; Redis holds the session under the id's hash, so the
 * token service (which signs users in) and the connections service (which reads who is signed in) share it.
 * Each session carries its own CSRF secret for the forms it renders.
 */
import type { RedisClient } from '@uspl/redis'
import { keys } from './keys.ts'
import { randomToken, hashSecret } from './crypto.ts'

export const SESSION_COOKIE = 'uspl_session'

export interface BrowserSession {
  userId: string
  csrf: string
  /** sign-in time, epoch seconds (auth_time) */
  authTime: number
}

export class BrowserSessionStore {
  constructor (private readonly redis: RedisClient, private readonly ttlS: number) {}

  async create (userId: string, authTime: number): Promise<{ sid: string, session: BrowserSession }> {
    const sid = randomToken(32)
    const session: BrowserSession = { userId, csrf: randomToken(24), authTime }
    const key = keys.browserSession(hashSecret(sid))
    await this.redis.multi()
      .hset(key, { user_id: userId, csrf: session.csrf, auth_time: String(authTime) })
      .expire(key, this.ttlS)
      .exec()
    return { sid, session }
  }

  async get (sid: string | undefined): Promise<BrowserSession | null> {
    if (!sid || sid.length > 128) return null
    const h = await this.redis.hgetall(keys.browserSession(hashSecret(sid)))
    return h.user_id ? { userId: h.user_id, csrf: h.csrf, authTime: Number(h.auth_time) } : null
  }

  async destroy (sid: string): Promise<void> {
    await this.redis.del(keys.browserSession(hashSecret(sid)))
  }
}
