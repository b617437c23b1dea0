/**
 * Slows down password guessing: sign-in attempts are counted per account (by the email's hash, whether or
 * not the account exists, so the answer reveals nothing) and per source address, in Redis counters that
 * expire with their window. An attempt is counted (reserved) atomically before its password is checked,
 * so concurrent attempts cannot all pass the check while the counters are still low. Past a limit,
 * sign-in answers 429 with Retry-After without checking the password. A success clears the account's
 * counter and gives its address slot back, so only failures use up the allowance.
 */
import { type RedisClient, runScript, script } from '@uspl/redis'
import { keys, hashSecret } from '@uspl/core'

export interface ThrottleLimits {
  perAccount: number
  perAddress: number
  windowS: number
}

// KEYS: account counter, address counter. ARGV: window, account limit, address limit.
// Either counter at its limit: the seconds to wait (at least 1), nothing counted. Otherwise both are
// incremented (with their expiry on first use) and 0 is returned: the attempt may check its password.
const RESERVE = script('usplSigninReserve', 2, `
local a = tonumber(redis.call('GET', KEYS[1]) or '0')
local b = tonumber(redis.call('GET', KEYS[2]) or '0')
local wait = 0
if a >= tonumber(ARGV[2]) then wait = math.max(wait, redis.call('TTL', KEYS[1])) end
if b >= tonumber(ARGV[3]) then wait = math.max(wait, redis.call('TTL', KEYS[2])) end
if a >= tonumber(ARGV[2]) or b >= tonumber(ARGV[3]) then return math.max(wait, 1) end
for i = 1, 2 do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ARGV[1]) end
end
return 0
`)

// KEYS: account counter, address counter. A success: the account starts over, the address slot is given back.
const SUCCEED = script('usplSigninSucceed', 2, `
redis.call('DEL', KEYS[1])
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
return 1
`)

export class SigninThrottle {
  constructor (private readonly redis: RedisClient, private readonly limits: ThrottleLimits) {}

  private keysFor (email: string, address: string): [string, string] {
    return [keys.signinFailuresAccount(hashSecret(email.trim().toLowerCase())), keys.signinFailuresAddress(address)]
  }

  /**
   * Counts one sign-in attempt before its password is checked. Returns the seconds to wait when either
   * counter is at its limit (nothing is counted then), or 0 when the password may be checked.
   */
  async reserve (email: string, address: string): Promise<number> {
    const [acct, addr] = this.keysFor(email, address)
    return await runScript(this.redis, RESERVE, acct, addr, String(this.limits.windowS), String(this.limits.perAccount), String(this.limits.perAddress)) as number
  }

  /** The password was right: the account's counter starts over and the attempt no longer counts for the address. */
  async recordSuccess (email: string, address: string): Promise<void> {
    const [acct, addr] = this.keysFor(email, address)
    await runScript(this.redis, SUCCEED, acct, addr)
  }
}
