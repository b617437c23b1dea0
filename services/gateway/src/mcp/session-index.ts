/**
 * The Redis index of MCP sessions, for operators and cross-replica routing: keys.mcpSession(id) is a hash
 * (grant, client, user, replica, url, opened, last_active) and keys.grantSessions(grant) the set of a grant's
 * session ids; both expire after the idle timeout and are extended when a session is touched. Opening a
 * session checks the per-grant cap and writes both keys in one script, pruning ids whose hash expired.
 */
import { type RedisClient, runScript, script } from '@uspl/redis'
import { keys } from '@uspl/core'

export interface SessionRecord {
  id: string
  grantId: string
  clientId: string
  userId: string
  replica: string
  /** how other replicas reach the one holding the session (REPLICA_URL) */
  url: string
  /** epoch ms */
  openedAt: number
}

/** Where a session lives, as the index says. */
export interface SessionLocation {
  grantId: string
  replica: string
  /** empty for an entry written before replicas recorded their URL */
  url: string
}

export interface SessionIndex {
  /** false when the grant already holds `cap` live sessions */
  open (record: SessionRecord, cap: number, ttlS: number): Promise<boolean>
  touch (id: string, grantId: string, at: number, ttlS: number): Promise<void>
  remove (id: string, grantId: string): Promise<void>
  /** one read: who owns the session, or null when the index does not know it (ended, expired, never) */
  locate (id: string): Promise<SessionLocation | null>
}

// KEYS[1] grant's session set, KEYS[2] the session hash. ARGV: prefix, id, cap, ttlS, grant, client, user, replica, openedMs, url
const OPEN = script('usplSessionOpen', 2, `
local live = 0
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. 'mcps:' .. sid) == 1 then live = live + 1 else redis.call('SREM', KEYS[1], sid) end
end
if live >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[2], 'grant', ARGV[5], 'client', ARGV[6], 'user', ARGV[7], 'replica', ARGV[8], 'url', ARGV[10], 'opened', ARGV[9], 'last_active', ARGV[9])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('SADD', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
`)

export class RedisSessionIndex implements SessionIndex {
  constructor (private readonly redis: RedisClient, private readonly prefix: string) {}

  async open (r: SessionRecord, cap: number, ttlS: number): Promise<boolean> {
    const ok = await runScript(this.redis, OPEN, keys.grantSessions(r.grantId), keys.mcpSession(r.id),
      this.prefix, r.id, String(cap), String(ttlS), r.grantId, r.clientId, r.userId, r.replica, String(r.openedAt), r.url) as number
    return ok === 1
  }

  async touch (id: string, grantId: string, at: number, ttlS: number): Promise<void> {
    await this.redis.multi()
      .hset(keys.mcpSession(id), 'last_active', String(at))
      .expire(keys.mcpSession(id), ttlS)
      .expire(keys.grantSessions(grantId), ttlS)
      .exec()
  }

  async locate (id: string): Promise<SessionLocation | null> {
    const [grantId, replica, url] = await this.redis.hmget(keys.mcpSession(id), 'grant', 'replica', 'url')
    if (!grantId || !replica) return null
    return { grantId, replica, url: url ?? '' }
  }

  async remove (id: string, grantId: string): Promise<void> {
    await this.redis.multi()
      .del(keys.mcpSession(id))
      .srem(keys.grantSessions(grantId), id)
      .exec()
  }
}
