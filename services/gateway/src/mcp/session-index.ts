/**
 * The Redis index of MCP sessions, for operators and cross-replica routing: keys.mcpSession(id) is a hash
 * (grant, client, user, replica, url, opened, last_active) and keys.grantSessions(grant) the set of a grant's
 * session ids; both expire after the idle timeout and are extended when a session is touched. Opening a
 * session checks the per-grant cap and writes the entry in one script; only live entries count (their hash
 * exists and their replica keeps its heartbeat, shared/core/src/session-liveness.ts), and the script deletes
 * the others as it meets them. keys.replicaSessions(replica) lists the ids each replica holds, so a live
 * replica can delete a dead one's entries without a scan (heartbeat.ts).
 */
import { type RedisClient, runScript, script } from '@uspl/redis'
import { keys, indexKeyArgs, PRUNE_GRANT_LUA } from '@uspl/core'

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

// KEYS[1] the grant's session set, KEYS[2] the session hash, KEYS[3] the replica's session set.
// ARGV: indexKeyArgs (5), id, cap, ttlS, grant, client, user, replica, openedMs, url
const OPEN = script('usplSessionOpen', 3, `${PRUNE_GRANT_LUA}
if prune_grant(KEYS[1], 1) >= tonumber(ARGV[7]) then return 0 end
redis.call('HSET', KEYS[2], 'grant', ARGV[9], 'client', ARGV[10], 'user', ARGV[11], 'replica', ARGV[12], 'url', ARGV[14], 'opened', ARGV[13], 'last_active', ARGV[13])
redis.call('EXPIRE', KEYS[2], ARGV[8])
redis.call('SADD', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[8])
redis.call('SADD', KEYS[3], ARGV[6])
redis.call('EXPIRE', KEYS[3], ARGV[8])
return 1
`)

export class RedisSessionIndex implements SessionIndex {
  private readonly keyArgs: string[]

  /** `replica`: this replica's id, whose set of session ids `remove` keeps */
  constructor (private readonly redis: RedisClient, prefix: string, private readonly replica: string) {
    this.keyArgs = indexKeyArgs(prefix)
  }

  async open (r: SessionRecord, cap: number, ttlS: number): Promise<boolean> {
    const ok = await runScript(this.redis, OPEN, keys.grantSessions(r.grantId), keys.mcpSession(r.id), keys.replicaSessions(r.replica),
      ...this.keyArgs, r.id, String(cap), String(ttlS), r.grantId, r.clientId, r.userId, r.replica, String(r.openedAt), r.url) as number
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
      .srem(keys.replicaSessions(this.replica), id)
      .exec()
  }
}
