/**
 * The denylist the gateway checks on every request, in one Redis round trip (MGET of three keys):
 * - dl:g:<grant>  the grant is revoked: every token of it is dead (grant ids are never reused);
 * - dl:c:<client> tokens of this client issued before T (seconds) are dead;
 * - dl:j:<jti>    this one access token was revoked (RFC 7009).
 * Entries expire when the longest-lived access token they could match has expired.
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

export class Denylist {
  constructor (private readonly redis: RedisClient) {}

  /** null when the token may be used; the reason otherwise. Throws when Redis cannot answer (fail closed). */
  async check (ref: TokenRef): Promise<DenyReason | null> {
    const values = await this.redis.mget(keys.denyGrant(ref.grantId), keys.denyClient(ref.clientId), keys.denyJti(ref.jti))
    return denyReason(ref, values)
  }
}
