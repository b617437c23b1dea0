/**
 * The Shared Signals step of the revocation follow-up (run by the worker after audit and cleanup, beside
 * the webhooks): each revocation becomes a CAEP session-revoked SET per enabled stream that asked for it,
 * signed with the issuer's current signing key, and is pushed (RFC 8935) to the stream's receiver or queued
 * for its poll (RFC 8936). The SET's jti is derived from the event and the stream, and each stream's outcome
 * is recorded per event, so a retried job (BullMQ backoff) sends only what has not been accepted: exactly
 * once per event per stream. A receiver's 400 (it refused the SET, RFC 8935 §2.3) is recorded and not
 * retried; network errors and other statuses are retried. Never blocks a revocation (it was answered long
 * before). A single access token's revocation (RFC 7009 on an access token) ends no session and sends none.
 */
import type { KeyObject } from 'node:crypto'
import type { RedisClient } from '@uspl/redis'
import { keys } from './keys.ts'
import { signEs256 } from './jose.ts'
import type { RevocationEvent } from './revocation.ts'
import type { AccountStore } from './accounts.ts'
import { CAEP_SESSION_REVOKED, DELIVERY_PUSH, SET_TYP, sessionRevokedSet, type SetClaims, type SsfStream, type SsfStreamStore } from './ssf.ts'

export interface SsfTransmitter {
  /** our issuer URL: the SETs' `iss` */
  issuer: string
  streams: SsfStreamStore
  /** the key that signs now (the token service's KeyRing signer) */
  signingKey: () => Promise<{ privateKey: KeyObject, kid: string }>
  /** to name the user by email in the subject (receivers match users by email); iss_sub otherwise */
  accounts?: AccountStore
  timeoutMs?: number
  /** how long delivery state and poll queues are kept (default 30 days) */
  stateTtlS?: number
}

export interface SsfDeliveryResult { pushed: number, queued: number, refused: number, skipped: number }

/** Signs a SET claims set with the transmitter's current key. */
export async function signSet (tx: Pick<SsfTransmitter, 'signingKey'>, claims: SetClaims): Promise<string> {
  return signEs256(claims, await tx.signingKey(), SET_TYP)
}

/** RFC 8935 §2: POST the SET; 202 (or any 2xx) is accepted, 400 is a refusal with `err`, others are failures. */
export async function pushSet (stream: SsfStream, set: string, opts: { fetch?: typeof fetch, timeoutMs?: number } = {}): Promise<{ status: 'accepted' } | { status: 'refused', err: string }> {
  const headers: Record<string, string> = { 'content-type': 'application/secevent+jwt', accept: 'application/json', 'user-agent': 'uspl-ssf-transmitter/1' }
  if (stream.delivery.authorization_header) headers.authorization = stream.delivery.authorization_header
  const res = await (opts.fetch ?? fetch)(stream.delivery.endpoint_url, { method: 'POST', headers, body: set, redirect: 'manual', signal: AbortSignal.timeout(opts.timeoutMs ?? 5000) })
  if (res.status >= 200 && res.status < 300) {
    await res.body?.cancel().catch(() => {})
    return { status: 'accepted' }
  }
  if (res.status === 400) {
    const body = await res.text().catch(() => '')
    let err = 'invalid_request'
    try { err = String((JSON.parse(body) as { err?: unknown }).err ?? err).slice(0, 64) } catch {}
    return { status: 'refused', err }
  }
  await res.body?.cancel().catch(() => {})
  throw new Error(`receiver answered ${res.status}`)
}

export async function deliverSecurityEvents (redis: RedisClient, tx: SsfTransmitter, event: RevocationEvent, doFetch: typeof fetch = fetch): Promise<SsfDeliveryResult> {
  const result: SsfDeliveryResult = { pushed: 0, queued: 0, refused: 0, skipped: 0 }
  if (event.scope === 'token') return result
  const stateKey = keys.ssfDeliveries(event.id)
  // one round trip's worth: the streams, what this event already did, and the user's email
  const [all, done, user] = await Promise.all([
    tx.streams.list(),
    redis.hgetall(stateKey),
    event.userId && tx.accounts ? tx.accounts.getUser(event.userId) : Promise.resolve(null)
  ])
  const streams = all.filter((s) => s.status === 'enabled' && s.events_delivered.includes(CAEP_SESSION_REVOKED))
  const pending = streams.filter((s) => !done[s.stream_id])
  result.skipped = streams.length - pending.length
  if (pending.length === 0) return result
  const email = user?.email ?? null
  const ttl = tx.stateTtlS ?? 30 * 86400
  const record = async (streamId: string, outcome: string): Promise<void> => {
    await redis.multi().hset(stateKey, streamId, outcome).expire(stateKey, ttl).exec()
  }
  const outcomes = await Promise.allSettled(pending.map(async (stream) => {
    const claims = sessionRevokedSet(event, { issuer: tx.issuer, audience: stream.aud, streamId: stream.stream_id, email })
    const set = await signSet(tx, claims)
    if (stream.delivery.method !== DELIVERY_PUSH) {
      await tx.streams.enqueuePoll(stream.stream_id, claims.jti, set, ttl)
      await record(stream.stream_id, `queued:${Date.now()}`)
      result.queued++
      return
    }
    const pushed = await pushSet(stream, set, { fetch: doFetch, timeoutMs: tx.timeoutMs })
    await record(stream.stream_id, pushed.status === 'accepted' ? `pushed:${Date.now()}` : `refused:${pushed.err}`)
    if (pushed.status === 'accepted') result.pushed++
    else result.refused++
  }))
  const failed = outcomes.map((o, i) => ({ o, stream: pending[i] })).filter((x): x is { o: PromiseRejectedResult, stream: SsfStream } => x.o.status === 'rejected')
  if (failed.length > 0) {
    const detail = failed.map((f) => `${f.stream.stream_id}: ${(f.o.reason as Error).message}`).join('; ')
    throw new Error(`${failed.length} of ${pending.length} Shared Signals deliveries failed (${detail})`)
  }
  return result
}
