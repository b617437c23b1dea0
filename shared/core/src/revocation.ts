/**
 * The one revocation pipeline. Every path that revokes (connections API and page, RFC 7009 /revoke, a
 * reused refresh token or code, RFC 7592 client deletion, an operator disabling a client or cutting off a
 * user) calls this module. Before it returns, one Lua script has atomically:
 *   1. marked the grants revoked, written their denylist entries and deleted their refresh tokens;
 *   2. appended the event to the Redis Stream (the durable record) and published it on the channel.
 * Then, once the caller has been answered, it queues a BullMQ job keyed by the event id for the durable
 * follow-up (audit, webhooks, cleanup); a failure to queue never undoes or blocks the revocation (the
 * stream still holds the event, and the follow-up sweeper re-queues it).
 * Revoking twice is harmless and reports the first revocation.
 */
import type { Queue } from 'bullmq'
import { type RedisClient, runScript, script } from '@uspl/redis'
import { keys, keyPatterns } from './keys.ts'
import { nowSeconds } from './crypto.ts'

export type RevocationScope = 'grant' | 'client' | 'user' | 'token'
export type RevocationPath =
  | 'connections_user' | 'connections_operator' | 'oauth_revoke' | 'refresh_token_reuse' | 'code_reuse'
  | 'client_delete' | 'client_disable' | 'user_revoke' | 'cli' | 'enterprise_signal'

export interface RevocationActor {
  type: 'user' | 'operator' | 'client' | 'system'
  id: string
}

export interface RevocationEvent {
  /** the Redis Stream entry id: orders events and keys the follow-up job */
  id: string
  scope: RevocationScope
  /** the grant, client, user or jti the revocation named */
  target: string
  grantIds: string[]
  clientId: string | null
  userId: string | null
  jti: string | null
  path: RevocationPath
  actor: RevocationActor
  /** epoch milliseconds */
  at: number
}

export interface RevocationResult {
  status: 'revoked' | 'already_revoked' | 'not_found' | 'noop'
  /** when the (first) revocation happened, epoch ms */
  revokedAt: number | null
  eventId: string | null
  event: RevocationEvent | null
}

export interface RevokeOptions {
  path: RevocationPath
  actor: RevocationActor
}

export const STREAM_MAXLEN = 100000

// The keys of the grants a revocation names: read from a set (a client's or user's grants) or known only
// once the grant's hash is read (its active-grant pointer, its refresh tokens), so they cannot be KEYS.
const GRANT_KEYS = keyPatterns({
  grant: keys.grant,
  denyGrant: keys.denyGrant,
  grantRefreshTokens: keys.grantRefreshTokens,
  refreshToken: keys.refreshToken,
  activeGrant: keys.activeGrant
}, 12)

// KEYS[1] stream, KEYS[2] the target: the grant's hash (scope grant) or the grant set of the client or user;
// for scope client also KEYS[3] the client's hash and KEYS[4] its denylist entry (REVOKE_CLIENT).
// ARGV: scope, id, nowMs, denyTtlS, revokedGrantTtlS, path, actorType, actorId, channel, maxlen,
// disableClient, then GRANT_KEYS.
const REVOKE_LUA = `${GRANT_KEYS.lua}
local scope = ARGV[1]
local id = ARGV[2]
local nowMs = tonumber(ARGV[3])
local nowS = math.floor(nowMs / 1000)
local grants
local clientId = ''
local userId = ''
if scope == 'grant' then
  if redis.call('EXISTS', KEYS[2]) == 0 then return {'not_found'} end
  local f = redis.call('HMGET', KEYS[2], 'revoked_at', 'revocation_id', 'client_id', 'user_id')
  if f[1] then return {'already_revoked', f[2] or '', f[1]} end
  clientId = f[3]
  userId = f[4]
  grants = {id}
elseif scope == 'client' then
  clientId = id
  grants = redis.call('SMEMBERS', KEYS[2])
else
  userId = id
  grants = redis.call('SMEMBERS', KEYS[2])
end
local revoked = {}
for _, gid in ipairs(grants) do
  local g = key_grant(gid)
  if redis.call('EXISTS', g) == 1 and redis.call('HEXISTS', g, 'revoked_at') == 0 then
    local f = redis.call('HMGET', g, 'user_id', 'client_id')
    redis.call('HSET', g, 'revoked_at', nowMs, 'revoked_by', ARGV[6])
    redis.call('EXPIRE', g, ARGV[5])
    redis.call('SET', key_denyGrant(gid), nowS, 'EX', ARGV[4])
    local rtset = key_grantRefreshTokens(gid)
    -- members are token hashes and their successors' members (keys.refreshTokenSuccessorMember), whose
    -- refreshToken key is the successor's
    for _, h in ipairs(redis.call('SMEMBERS', rtset)) do redis.call('DEL', key_refreshToken(h)) end
    redis.call('DEL', rtset)
    local ugc = key_activeGrant(f[1], f[2])
    if redis.call('GET', ugc) == gid then redis.call('DEL', ugc) end
    table.insert(revoked, gid)
  end
end
local changed = #revoked > 0
if scope == 'client' then
  if ARGV[11] == '1' and redis.call('EXISTS', KEYS[3]) == 1 and redis.call('HEXISTS', KEYS[3], 'disabled_at') == 0 then
    redis.call('HSET', KEYS[3], 'disabled_at', nowS)
    changed = true
  end
  if changed then redis.call('SET', KEYS[4], nowS + 1, 'EX', ARGV[4]) end
end
if not changed then return {'noop'} end
local body = cjson.encode({scope = scope, target = id, grantIds = revoked, clientId = clientId, userId = userId, path = ARGV[6], actorType = ARGV[7], actorId = ARGV[8], at = nowMs})
local eid = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[10], '*', 'event', body)
for _, gid in ipairs(revoked) do redis.call('HSET', key_grant(gid), 'revocation_id', eid) end
redis.call('PUBLISH', ARGV[9], eid .. ' ' .. body)
return {'revoked', eid, tostring(nowMs), body}
`
const REVOKE = script('usplRevoke', 2, REVOKE_LUA)
const REVOKE_CLIENT = script('usplRevokeClient', 4, REVOKE_LUA)

// KEYS[1] stream, KEYS[2] dl:j key. ARGV: ttlS, nowMs, body (without at), channel, maxlen
const REVOKE_JTI = script('usplRevokeJti', 2, `
local nowMs = tonumber(ARGV[2])
if redis.call('SET', KEYS[2], math.floor(nowMs / 1000), 'EX', ARGV[1], 'NX') == false then return {'already_revoked'} end
local eid = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '*', 'event', ARGV[3])
redis.call('PUBLISH', ARGV[4], eid .. ' ' .. ARGV[3])
return {'revoked', eid, ARGV[2], ARGV[3]}
`)

interface RawEvent {
  scope: RevocationScope
  target: string
  grantIds: string[] | Record<string, never>
  clientId: string
  userId: string
  jti?: string
  path: RevocationPath
  actorType: RevocationActor['type']
  actorId: string
  at: number
}

/** Parses a stream entry or channel message body into an event. */
export function parseEvent (id: string, body: string): RevocationEvent {
  const raw = JSON.parse(body) as RawEvent
  return {
    id,
    scope: raw.scope,
    target: raw.target,
    grantIds: Array.isArray(raw.grantIds) ? raw.grantIds : [],
    clientId: raw.clientId || null,
    userId: raw.userId || null,
    jti: raw.jti || null,
    path: raw.path,
    actor: { type: raw.actorType, id: raw.actorId },
    at: Number(raw.at)
  }
}

/** Parses a channel message: "<stream id> <json>". */
export function parseMessage (message: string): RevocationEvent {
  const space = message.indexOf(' ')
  return parseEvent(message.slice(0, space), message.slice(space + 1))
}

/** Orders stream ids ("ms-seq"). */
export function compareStreamIds (a: string, b: string): number {
  const [am, as] = a.split('-').map(Number)
  const [bm, bs] = b.split('-').map(Number)
  return am !== bm ? am - bm : (as ?? 0) - (bs ?? 0)
}

export interface RevokerOptions {
  redis: RedisClient
  prefix: string
  /** the longest access token lifetime: denylist entries live this long plus skew */
  accessTokenTtlS: number
  /** the BullMQ queue for follow-up work; optional for tools that only revoke */
  queue?: Queue
  /** how long a revoked grant stays readable (to report the first revocation and for Connected Apps history) */
  revokedGrantTtlS?: number
  log?: { error: (obj: object, msg: string) => void }
}

export const CLOCK_SKEW_S = 60

export class Revoker {
  private readonly denyTtlS: number
  /** follow-ups handed over and not queued yet */
  private readonly queueing = new Set<Promise<void>>()
  constructor (private readonly opts: RevokerOptions) {
    this.denyTtlS = opts.accessTokenTtlS + CLOCK_SKEW_S
  }

  revokeGrant (grantId: string, how: RevokeOptions): Promise<RevocationResult> {
    return this.run('grant', grantId, how, false)
  }

  /** Revokes every grant of a client; with `disable`, also refuses the client new authorizations. */
  revokeClient (clientId: string, how: RevokeOptions & { disable?: boolean }): Promise<RevocationResult> {
    return this.run('client', clientId, how, how.disable ?? false)
  }

  revokeUser (userId: string, how: RevokeOptions): Promise<RevocationResult> {
    return this.run('user', userId, how, false)
  }

  /** Puts one access token on the jti denylist until it expires (RFC 7009 for an access token). */
  async revokeAccessToken (token: { jti: string, exp: number, grantId: string, clientId: string, userId: string }, how: RevokeOptions): Promise<RevocationResult> {
    const ttl = Math.max(1, token.exp - nowSeconds() + CLOCK_SKEW_S)
    const now = Date.now()
    const body = JSON.stringify({ scope: 'token', target: token.jti, grantIds: [token.grantId], clientId: token.clientId, userId: token.userId, jti: token.jti, path: how.path, actorType: how.actor.type, actorId: how.actor.id, at: now })
    const reply = await runScript(this.opts.redis, REVOKE_JTI, keys.revocationStream(), keys.denyJti(token.jti),
      String(ttl), String(now), body, keys.revocationChannel(this.opts.prefix), String(STREAM_MAXLEN)) as string[]
    if (reply[0] !== 'revoked') return { status: 'already_revoked', revokedAt: null, eventId: null, event: null }
    const event = parseEvent(reply[1], reply[3])
    this.followUpAfterAnswer(event)
    return { status: 'revoked', revokedAt: now, eventId: event.id, event }
  }

  private async run (scope: 'grant' | 'client' | 'user', id: string, how: RevokeOptions, disable: boolean): Promise<RevocationResult> {
    const { prefix } = this.opts
    const target = scope === 'grant' ? [keys.grant(id)] : scope === 'client' ? [keys.clientGrants(id), keys.client(id), keys.denyClient(id)] : [keys.userGrants(id)]
    const reply = await runScript(this.opts.redis, scope === 'client' ? REVOKE_CLIENT : REVOKE, keys.revocationStream(), ...target,
      scope, id, String(Date.now()), String(this.denyTtlS), String(this.opts.revokedGrantTtlS ?? 30 * 86400),
      how.path, how.actor.type, how.actor.id, keys.revocationChannel(prefix), String(STREAM_MAXLEN), disable ? '1' : '0', ...GRANT_KEYS.argv(prefix)) as string[]
    switch (reply[0]) {
      case 'not_found': return { status: 'not_found', revokedAt: null, eventId: null, event: null }
      case 'noop': return { status: 'noop', revokedAt: null, eventId: null, event: null }
      case 'already_revoked': return { status: 'already_revoked', revokedAt: Number(reply[2]), eventId: reply[1] || null, event: null }
    }
    const event = parseEvent(reply[1], reply[3])
    this.followUpAfterAnswer(event)
    return { status: 'revoked', revokedAt: event.at, eventId: event.id, event }
  }

  /**
   * Queues the follow-up once the caller has been answered: the revocation has taken effect (denylist,
   * stream, channel), and the BullMQ add (a script and its round trip) need not sit between the revoke and
   * its response. A process that dies in between leaves the event in the stream, where the follow-up
   * sweeper finds it; a graceful stop waits for these (`settled`).
   */
  private followUpAfterAnswer (event: RevocationEvent): void {
    if (!this.opts.queue) return
    const queued: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve))
      .then(async () => { await this.followUp(event) })
      .finally(() => { this.queueing.delete(queued) })
    this.queueing.add(queued)
  }

  /** Resolves when every follow-up handed over so far has been queued (or has failed and been logged). */
  async settled (): Promise<void> {
    await Promise.all([...this.queueing])
  }

  private async followUp (event: RevocationEvent): Promise<void> {
    if (!this.opts.queue) return
    try {
      await this.opts.queue.add('revocation', event, followupJobOptions(event.id))
    } catch (err) {
      // the event is durable in the stream; the follow-up sweeper re-queues it
      this.opts.log?.error({ err, eventId: event.id }, 'could not queue revocation follow-up')
    }
  }
}

/** Job options: keyed by event id so a retry or a re-queue never does the work twice. */
export function followupJobOptions (eventId: string): { jobId: string, attempts: number, backoff: { type: 'exponential', delay: number }, removeOnComplete: { age: number, count: number }, removeOnFail: { age: number } } {
  return {
    jobId: `rev-${eventId}`,
    attempts: 10,
    backoff: { type: 'exponential', delay: 1000 },
    removeOnComplete: { age: 7 * 86400, count: 10000 },
    removeOnFail: { age: 30 * 86400 }
  }
}
