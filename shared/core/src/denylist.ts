/**
 * The denylist the gateway checks on every request, in one Redis round trip (MGET of three keys):
 * - dl:g:<grant>  the grant is revoked: every token of it is dead (grant ids are never reused);
 * - dl:c:<client> tokens of this client issued before T (seconds) are dead;
 * - dl:j:<jti>    this one access token was revoked (RFC 7009).
 * Entries expire when the longest-lived access token they could match has expired. A gateway replica also
 * remembers the grants and tokens of the revocation events it applied, and refuses those without asking.
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

export class Denylist {
  /**
   * Grants and tokens this replica has seen revoked (from the revocation events it applied). Grant ids and
   * jtis are never reused, so a remembered one stays denied for good: a request with it is refused without
   * a round trip, and forgetting the oldest only sends their requests back to Redis. Nothing is ever allowed
   * from memory: every token not remembered is checked in Redis.
   */
  private readonly revokedGrants = new Set<string>()
  private readonly revokedTokens = new Set<string>()

  constructor (private readonly redis: RedisClient, private readonly remembered = REMEMBERED_REVOCATIONS) {}

  /** null when the token may be used; the reason otherwise. Throws when Redis cannot answer (fail closed). */
  async check (ref: TokenRef): Promise<DenyReason | null> {
    if (this.revokedGrants.has(ref.grantId)) return 'grant_revoked'
    if (this.revokedTokens.has(ref.jti)) return 'token_revoked'
    const values = await this.redis.mget(keys.denyGrant(ref.grantId), keys.denyClient(ref.clientId), keys.denyJti(ref.jti))
    return denyReason(ref, values)
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
