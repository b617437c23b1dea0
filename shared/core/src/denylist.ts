/**
 * The denylist the gateway checks on every request, in one Redis round trip (MGET of three keys each):
 * - dl:g:<grant>  the grant is revoked: every token of it is dead (grant ids are never reused);
 * - dl:c:<client> tokens of this client issued before T (seconds) are dead;
 * - dl:j:<jti>    this one access token was revoked (RFC 7009).
 * Entries expire when the longest-lived access token they could match has expired. A gateway replica also
 * remembers the grants and tokens of the revocation events it applied, and refuses those without asking.
 *
 * One MGET is in flight at a time, as in a group commit: the checks asked for while it is out share the
 * next one, sent when it is answered (and after the turn of the event loop in which the first of them was
 * asked for). Under load one socket write and one reply then serve every request that arrived during a
 * round trip, instead of one each (on a busy gateway that write is a large share of a request's CPU);
 * every MGET is sent after each request it answers arrived, and each request waits for at most the one
 * in flight and its own.
 */
import type { RedisClient } from '@uspl/redis'
import { keys } from './keys.ts'

export type DenyReason = 'grant_revoked' | 'client_revoked' | 'token_revoked'

export interface TokenRef {
  grantId: string
  clientId: string
  jti: string
  /** issued-at, seconds */
  iat: number
}

export function denyReason (ref: TokenRef, values: Array<string | null>): DenyReason | null {
  const [grant, client, jti] = values
  if (grant !== null) return 'grant_revoked'
  if (jti !== null) return 'token_revoked'
  if (client !== null && ref.iat < Number(client)) return 'client_revoked'
  return null
}

/** What the gateway remembers of a revocation event it applied: the grants it revoked, or the one token. */
export interface RevokedRef { scope: string, grantIds: string[], jti: string | null }

/** How many revoked grants and tokens a replica remembers (oldest forgotten first); ~100 bytes each. */
export const REMEMBERED_REVOCATIONS = 50_000

/** At most this many checks share one MGET (three keys each); the rest wait for the next. */
export const DENYLIST_BATCH = 128

interface PendingCheck {
  ref: TokenRef
  resolve: (reason: DenyReason | null) => void
  reject: (err: unknown) => void
}

export class Denylist {
  /**
   * Grants and tokens this replica has seen revoked (from the revocation events it applied). Grant ids and
   * jtis are never reused, so a remembered one stays denied for good: a request with it is refused without
   * a round trip, and forgetting the oldest only sends their requests back to Redis. Nothing is ever allowed
   * from memory: every token not remembered is checked in Redis.
   */
  private readonly revokedGrants = new Set<string>()
  private readonly revokedTokens = new Set<string>()
  /** the checks not yet sent */
  private readonly pending: PendingCheck[] = []
  private inflight = false

  constructor (private readonly redis: RedisClient, private readonly remembered = REMEMBERED_REVOCATIONS) {}

  /** null when the token may be used; the reason otherwise. Rejects when Redis cannot answer (fail closed). */
  check (ref: TokenRef): Promise<DenyReason | null> {
    if (this.revokedGrants.has(ref.grantId)) return Promise.resolve('grant_revoked')
    if (this.revokedTokens.has(ref.jti)) return Promise.resolve('token_revoked')
    return new Promise((resolve, reject) => {
      if (this.pending.length === 0 && !this.inflight) setImmediate(this.send)
      this.pending.push({ ref, resolve, reject })
    })
  }

  /** One MGET for the pending checks (three keys each, answered in order); the next goes when it is answered. */
  private readonly send = (): void => {
    if (this.inflight || this.pending.length === 0) return
    const batch = this.pending.splice(0, DENYLIST_BATCH)
    this.inflight = true
    const args: string[] = []
    for (const { ref } of batch) args.push(keys.denyGrant(ref.grantId), keys.denyClient(ref.clientId), keys.denyJti(ref.jti))
    this.redis.mget(args).then((values) => {
      for (let i = 0; i < batch.length; i++) batch[i].resolve(denyReason(batch[i].ref, values.slice(i * 3, i * 3 + 3)))
    }, (err: unknown) => {
      for (const c of batch) c.reject(err)
    }).finally(() => {
      this.inflight = false
      if (this.pending.length > 0) setImmediate(this.send)
    })
  }

  /**
   * Remembers a revocation event's grants (a grant, client or user revocation) or its one token (scope
   * `token`, whose grant stays alive). A client's later grants are not in its event, and are not denied.
   */
  remember (event: RevokedRef): void {
    if (event.scope === 'token') {
      if (event.jti) add(this.revokedTokens, event.jti, this.remembered)
      return
    }
    for (const gid of event.grantIds) add(this.revokedGrants, gid, this.remembered)
  }
}

function add (set: Set<string>, id: string, max: number): void {
  if (set.has(id)) return
  set.add(id)
  if (set.size > max) set.delete(set.values().next().value as string)
}
