/**
 * The Shared Signals receiver's poller (RFC 8936): for each trusted enterprise issuer with a `pollUrl`,
 * every SSF_POLL_INTERVAL_S it POSTs `{maxEvents, returnImmediately: true, ack, setErrs}` (with the
 * issuer's `Authorization` value) and takes `{sets, moreAvailable}`. Each SET goes through `receiveSet`,
 * exactly as a pushed one (read, act, audit with via=poll); accepted (and ignored) ones are acknowledged,
 * refused ones reported in `setErrs` with their RFC 8935 code. While `moreAvailable`, it polls again at
 * once, at most MAX_REQUESTS_PER_ROUND times per round.
 * Replicas: one polls a given issuer at a time (a SET NX PX lock per issuer); the acknowledgements still
 * to send live in Redis per issuer, so they survive the IdP being down and any replica sends them with its
 * next poll. The poll URL is fetched only under ENTERPRISE_JWKS_ORIGINS, by the same bounded fetch as
 * jwks_uri. A failed poll is counted, logged once per issuer and failure streak (never the credential),
 * and retried next interval; nothing here throws out of a round.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { keys, type EnterpriseIssuer } from '@uspl/core'
import { runScript, script } from '@uspl/redis'
import { fetchAllowListed, JwksUnavailableError, OutboundFetchError } from './enterprise-keys.ts'
import { receiveSet, type IntakeDeps } from './ssf-receiver.ts'

export const MAX_EVENTS = 25
export const MAX_REQUESTS_PER_ROUND = 10
const TIMEOUT_MS = 5000
// more than MAX_EVENTS SETs of at most 64 KiB each, and the JSON around them
const MAX_BYTES = 2 * 1024 * 1024
// longer than a round can take (every request at its timeout), so the lock outlives its holder's work
const LOCK_MS = MAX_REQUESTS_PER_ROUND * TIMEOUT_MS + 10000

// KEYS: the lock. ARGV: the holder's token. Deletes the lock only when this holder still has it.
const releaseLock = script('usplSsfPollUnlock', 1, `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

export interface IssuerPollResult {
  issuer: string
  /** polled: every request answered; locked: another replica is polling it; failed: see error */
  status: 'polled' | 'locked' | 'failed'
  requests: number
  accepted: number
  refused: number
  error?: string
}

export interface PollerStats {
  rounds: number
  requests: number
  accepted: number
  refused: number
  failures: number
}

interface SetErr { err: string, description: string }

export interface PollerOptions {
  intervalS: number
  fetch?: typeof fetch
  origins: ReadonlySet<string>
}

export class SsfPoller {
  readonly stats: PollerStats = { rounds: 0, requests: 0, accepted: 0, refused: 0, failures: 0 }
  /** per issuer id: failed polls in a row (the first of a streak is logged) */
  private readonly streaks = new Map<string, number>()
  private timer: NodeJS.Timeout | null = null
  private running: Promise<unknown> | null = null
  private stopped = false

  constructor (private readonly deps: IntakeDeps, private readonly log: FastifyBaseLogger, private readonly opts: PollerOptions) {}

  /** Polls every SSF_POLL_INTERVAL_S (0: never); one round at a time. */
  start (): void {
    if (this.opts.intervalS <= 0 || this.timer || this.stopped) return
    this.schedule()
  }

  /** Stops the timer and waits for a round in progress. */
  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    await this.running
  }

  private schedule (): void {
    this.timer = setTimeout(() => {
      this.timer = null
      this.running = this.pollOnce().finally(() => {
        this.running = null
        if (!this.stopped) this.schedule()
      })
    }, this.opts.intervalS * 1000)
    this.timer.unref()
  }

  /** One round: every issuer with a poll URL, each on its own (one failing does not stop the others). */
  async pollOnce (): Promise<IssuerPollResult[]> {
    this.stats.rounds++
    let issuers: EnterpriseIssuer[]
    try {
      issuers = (await this.deps.issuers.list()).filter((i) => i.pollUrl)
    } catch (err) {
      this.log.warn({ err }, 'ssf poll: the issuers could not be read')
      return []
    }
    return Promise.all(issuers.map(async (issuer) => this.pollIssuer(issuer)))
  }

  private async pollIssuer (issuer: EnterpriseIssuer): Promise<IssuerPollResult> {
    const result: IssuerPollResult = { issuer: issuer.issuer, status: 'polled', requests: 0, accepted: 0, refused: 0 }
    const lock = keys.ssfPollLock(issuer.id)
    const token = randomBytes(12).toString('base64url')
    try {
      if (await this.deps.redis.set(lock, token, 'PX', LOCK_MS, 'NX') !== 'OK') return { ...result, status: 'locked' }
    } catch (err) {
      return this.failed(issuer, result, (err as Error).message)
    }
    try {
      let more = true
      while (more && result.requests < MAX_REQUESTS_PER_ROUND) {
        more = await this.request(issuer, result)
      }
      this.recovered(issuer)
      return result
    } catch (err) {
      if (err instanceof OutboundFetchError || err instanceof PollAnswerError || err instanceof JwksUnavailableError) return this.failed(issuer, result, err.message)
      this.log.error({ err, issuer: issuer.id }, 'ssf poll: unexpected error')
      return this.failed(issuer, result, 'unexpected error')
    } finally {
      await runScript(this.deps.redis, releaseLock, lock, token).catch(() => {})
    }
  }

  /** One poll request: sends the pending acks and errors, takes in the SETs; answers moreAvailable. */
  private async request (issuer: EnterpriseIssuer, result: IssuerPollResult): Promise<boolean> {
    const pendingKey = keys.ssfPollPendingAcks(issuer.id)
    const pending = await this.deps.redis.hgetall(pendingKey)
    const ack: string[] = []
    const setErrs: Record<string, SetErr> = {}
    for (const [jti, value] of Object.entries(pending)) {
      if (value === '') ack.push(jti)
      else setErrs[jti] = JSON.parse(value) as SetErr
    }
    const body = JSON.stringify({ maxEvents: MAX_EVENTS, returnImmediately: true, ack, setErrs })
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' }
    if (issuer.pollAuthorization) headers.authorization = issuer.pollAuthorization
    result.requests++
    this.stats.requests++
    const text = await fetchAllowListed(this.opts.origins, 'poll_url', new URL(issuer.pollUrl as string), { method: 'POST', headers, body }, { fetch: this.opts.fetch, timeoutMs: TIMEOUT_MS, maxBytes: MAX_BYTES })
    const answer = parseAnswer(text)
    // a poll response: the IdP has them now, so forget exactly those sent (the SETs below add their own)
    const sent = Object.keys(pending)
    if (sent.length > 0) await this.deps.redis.hdel(pendingKey, ...sent)
    // an IdP that sends more than asked: the rest stay unacknowledged, so it sends them again
    const sets = Object.entries(answer.sets)
    for (const [jti, set] of sets.slice(0, MAX_EVENTS)) {
      // a value that is not a string reads as "not a SET", refused like any malformed one
      const received = await receiveSet(this.deps, this.log, typeof set === 'string' ? set : '', 'poll')
      if (received.outcome === 'refused') {
        result.refused++
        this.stats.refused++
        await this.deps.redis.hset(pendingKey, jti, JSON.stringify({ err: received.refusal.err, description: received.refusal.message }))
      } else {
        result.accepted++
        this.stats.accepted++
        await this.deps.redis.hset(pendingKey, jti, '')
      }
    }
    return answer.moreAvailable || sets.length > MAX_EVENTS
  }

  private failed (issuer: EnterpriseIssuer, result: IssuerPollResult, error: string): IssuerPollResult {
    this.stats.failures++
    const streak = (this.streaks.get(issuer.id) ?? 0) + 1
    this.streaks.set(issuer.id, streak)
    // the message names the URL's role and the status, never a header
    if (streak === 1) this.log.warn({ issuer: issuer.id, error }, 'ssf poll failed; retrying every interval (logged once until it succeeds)')
    return { ...result, status: 'failed', error }
  }

  private recovered (issuer: EnterpriseIssuer): void {
    const streak = this.streaks.get(issuer.id)
    if (!streak) return
    this.streaks.delete(issuer.id)
    this.log.info({ issuer: issuer.id, failures: streak }, 'ssf poll recovered')
  }
}

/** The answer is not an RFC 8936 poll response. */
class PollAnswerError extends Error {}

function parseAnswer (text: string): { sets: Record<string, unknown>, moreAvailable: boolean } {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    throw new PollAnswerError('poll_url did not answer JSON')
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new PollAnswerError('poll_url did not answer a JSON object')
  const { sets, moreAvailable } = doc as Record<string, unknown>
  if (typeof sets !== 'object' || sets === null || Array.isArray(sets)) throw new PollAnswerError('poll_url answered no "sets" object')
  return { sets: sets as Record<string, unknown>, moreAvailable: moreAvailable === true }
}
