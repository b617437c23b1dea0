/**
 * Slows down password guessing: failed sign-ins are counted per account (by the email's hash, whether or
 * not the account exists, so the answer reveals nothing) and per source address, in Redis counters that
 * expire with their window. Past a limit, sign-in answers 429 with Retry-After without checking the
 * password. A success clears the account's counter.
 */
import type { RedisClient } from '@uspl/redis'
import { keys, hashSecret } from '@uspl/core'

export interface ThrottleLimits {
  perAccount: number
  perAddress: number
  windowS: number
}

// KEYS: counter. ARGV: window. INCR and its expiry in one step.
const BUMP = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
`

export class SigninThrottle {
  constructor (private readonly redis: RedisClient, private readonly limits: ThrottleLimits) {}

  private keysFor (email: string, address: string): [string, string] {
    return [keys.signinFailuresAccount(hashSecret(email.trim().toLowerCase())), keys.signinFailuresAddress(address)]
  }

  /** Seconds to wait when either counter is over its limit; 0 when sign-in may proceed. */
  async retryAfter (email: string, address: string): Promise<number> {
    const [acct, addr] = this.keysFor(email, address)
    const replies = await this.redis.multi().get(acct).ttl(acct).get(addr).ttl(addr).exec() ?? []
    const [a, aTtl, b, bTtl] = replies.map(([, v]) => v) as [string | null, number, string | null, number]
    let wait = 0
    if (Number(a ?? 0) >= this.limits.perAccount) wait = Math.max(wait, aTtl)
    if (Number(b ?? 0) >= this.limits.perAddress) wait = Math.max(wait, bTtl)
    return wait > 0 ? wait : (Number(a ?? 0) >= this.limits.perAccount || Number(b ?? 0) >= this.limits.perAddress ? 1 : 0)
  }

  async recordFailure (email: string, address: string): Promise<void> {
    const [acct, addr] = this.keysFor(email, address)
    await Promise.all([
      this.redis.eval(BUMP, 1, acct, String(this.limits.windowS)),
      this.redis.eval(BUMP, 1, addr, String(this.limits.windowS))
    ])
  }

  async recordSuccess (email: string): Promise<void> {
    await this.redis.del(this.keysFor(email, '')[0])
  }
}
