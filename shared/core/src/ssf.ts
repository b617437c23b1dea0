/**
 * Shared Signals (OpenID SSF 1.0, RFC 8417 SETs, RFC 8935 push, RFC 8936 poll): the event types we speak,
 * the SET our transmitter sends for a revocation, and the transmitter's stream store. A stream is one
 * receiver's subscription (stream configuration per SSF §8.1.1) plus its status; all live in one hash
 * (field = stream id), so a change is one command. The push `authorization_header` is an outbound
 * credential the transmitter must replay, so it is stored as given and never returned by a read.
 * Poll queues hold the SETs of a poll stream until the receiver acknowledges them (RFC 8936 §2.4).
 */
import type { RedisClient } from '@uspl/redis'
import { keys } from './keys.ts'
import { newId, hashSecret } from './crypto.ts'
import type { RevocationEvent } from './revocation.ts'

export const CAEP_SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
export const CAEP_CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change'
export const RISC_ACCOUNT_DISABLED = 'https://schemas.openid.net/secevent/risc/event-type/account-disabled'
export const RISC_ACCOUNT_PURGED = 'https://schemas.openid.net/secevent/risc/event-type/account-purged'
export const SSF_VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification'
export const SSF_STREAM_UPDATED = 'https://schemas.openid.net/secevent/ssf/event-type/stream-updated'
export const DELIVERY_PUSH = 'urn:ietf:rfc:8935'
export const DELIVERY_POLL = 'urn:ietf:rfc:8936'
export const SET_TYP = 'secevent+jwt'

/** What our transmitter emits. */
export const TRANSMITTED_EVENTS = [CAEP_SESSION_REVOKED, SSF_VERIFICATION]

export type StreamStatus = 'enabled' | 'paused' | 'disabled'

export interface SsfStream {
  stream_id: string
  iss: string
  aud: string | string[]
  events_supported: string[]
  events_requested: string[]
  events_delivered: string[]
  delivery: { method: typeof DELIVERY_PUSH | typeof DELIVERY_POLL, endpoint_url: string, authorization_header?: string }
  description: string | null
  status: StreamStatus
  reason: string | null
  created_at: number
}

export interface SsfStreamInput {
  aud?: string | string[]
  events_requested?: string[]
  delivery?: { method?: string, endpoint_url?: string, authorization_header?: string }
  description?: string
}

/** The stream as the management API shows it (never the stored authorization header). */
export function publicStream (s: SsfStream): Omit<SsfStream, 'status' | 'reason' | 'created_at' | 'delivery'> & { delivery: { method: string, endpoint_url: string } } {
  const { status: _s, reason: _r, created_at: _c, delivery, ...rest } = s
  return { ...rest, delivery: { method: delivery.method, endpoint_url: delivery.endpoint_url } }
}

export class StreamInputError extends Error {}

/** A SET claims set (RFC 8417 §2.2) with one event and SSF's `sub_id` subject. */
export interface SetClaims {
  iss: string
  jti: string
  iat: number
  aud: string | string[]
  sub_id: Record<string, unknown>
  events: Record<string, Record<string, unknown>>
  txn?: string
}

/** A SET jti that is the same for one event and one stream every time it is built: delivery is exactly once by it. */
export function setJti (eventId: string, streamId: string): string {
  return hashSecret(`${eventId}|${streamId}`).slice(0, 32)
}

/**
 * The CAEP session-revoked SET for one revocation event: the subject is complex (SSF §3.2), the user
 * (`iss_sub`: our issuer and user id, plus the email when known) and, when the event names one client,
 * the application (the OAuth client id) and the session (the grant).
 */
export function sessionRevokedSet (event: RevocationEvent, opts: { issuer: string, audience: string | string[], streamId: string, email?: string | null }): SetClaims {
  const subject: Record<string, unknown> = { format: 'complex' }
  if (event.userId) subject.user = opts.email ? { format: 'email', email: opts.email } : { format: 'iss_sub', iss: opts.issuer, sub: event.userId }
  if (event.clientId) subject.application = { format: 'opaque', id: event.clientId }
  if (event.grantIds.length === 1) subject.session = { format: 'opaque', id: event.grantIds[0] }
  if (!subject.user && !subject.application) subject.tenant = { format: 'opaque', id: opts.issuer }
  const initiating = event.actor.type === 'user' ? 'user' : event.actor.type === 'operator' ? 'admin' : event.actor.type === 'client' ? 'policy' : 'system'
  return {
    iss: opts.issuer,
    jti: setJti(event.id, opts.streamId),
    iat: Math.floor(Date.now() / 1000),
    aud: opts.audience,
    txn: event.id,
    sub_id: subject,
    events: {
      [CAEP_SESSION_REVOKED]: {
        event_timestamp: Math.floor(event.at / 1000),
        initiating_entity: initiating,
        reason_admin: { en: `revoked (${event.path}, scope ${event.scope})` }
      }
    }
  }
}

export class SsfStreamStore {
  constructor (private readonly redis: RedisClient) {}

  private validate (input: SsfStreamInput, base: SsfStream | null, issuer: string): SsfStream {
    const deliveryIn = input.delivery ?? base?.delivery
    const method = deliveryIn?.method ?? DELIVERY_POLL
    if (method !== DELIVERY_PUSH && method !== DELIVERY_POLL) throw new StreamInputError(`delivery.method must be ${DELIVERY_PUSH} or ${DELIVERY_POLL}`)
    const id = base?.stream_id ?? newId('str', 12)
    let endpoint = deliveryIn?.endpoint_url
    if (method === DELIVERY_PUSH) {
      let url: URL
      try { url = new URL(String(endpoint)) } catch { throw new StreamInputError('delivery.endpoint_url must be an absolute URL for push delivery') }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new StreamInputError('delivery.endpoint_url must be http(s)')
      if (url.username || url.password || url.hash) throw new StreamInputError('delivery.endpoint_url must have no credentials or fragment')
      endpoint = url.toString()
    } else {
      endpoint = `${issuer}/ssf/streams/${id}/poll`
    }
    const authorization = input.delivery?.authorization_header ?? (input.delivery ? undefined : base?.delivery.authorization_header)
    if (authorization !== undefined && (typeof authorization !== 'string' || authorization.length > 4096 || /[\r\n]/.test(authorization))) throw new StreamInputError('delivery.authorization_header must be one header value')
    const requested = input.events_requested ?? base?.events_requested ?? TRANSMITTED_EVENTS
    if (!Array.isArray(requested) || requested.some((e) => typeof e !== 'string')) throw new StreamInputError('events_requested must be an array of event type URIs')
    const aud = input.aud ?? base?.aud ?? endpoint
    if (typeof aud !== 'string' && !(Array.isArray(aud) && aud.every((a) => typeof a === 'string'))) throw new StreamInputError('aud must be a string or an array of strings')
    const description = input.description ?? base?.description ?? null
    if (description !== null && (typeof description !== 'string' || description.length > 500)) throw new StreamInputError('description must be a string of at most 500 characters')
    return {
      stream_id: id,
      iss: issuer,
      aud,
      events_supported: TRANSMITTED_EVENTS,
      events_requested: requested,
      events_delivered: TRANSMITTED_EVENTS.filter((e) => requested.includes(e)),
      delivery: { method, endpoint_url: endpoint, ...(authorization ? { authorization_header: authorization } : {}) },
      description,
      status: base?.status ?? 'enabled',
      reason: base?.reason ?? null,
      created_at: base?.created_at ?? Date.now()
    }
  }

  async create (input: SsfStreamInput, issuer: string): Promise<SsfStream> {
    const stream = this.validate(input, null, issuer)
    await this.redis.hset(keys.ssfStreams(), stream.stream_id, JSON.stringify(stream))
    return stream
  }

  async get (id: string): Promise<SsfStream | null> {
    if (typeof id !== 'string' || !/^str_[A-Za-z0-9_-]{1,32}$/.test(id)) return null
    const raw = await this.redis.hget(keys.ssfStreams(), id)
    return raw ? JSON.parse(raw) as SsfStream : null
  }

  async list (): Promise<SsfStream[]> {
    return (await this.redis.hvals(keys.ssfStreams())).map((r) => JSON.parse(r) as SsfStream).sort((a, b) => a.created_at - b.created_at)
  }

  /** PATCH semantics (`replace`: PUT, absent fields take their defaults). */
  async update (id: string, input: SsfStreamInput, issuer: string, replace = false): Promise<SsfStream | null> {
    const base = await this.get(id)
    if (!base) return null
    const next = this.validate(input, replace ? { ...base, events_requested: TRANSMITTED_EVENTS, description: null, aud: input.aud ?? base.aud, delivery: input.delivery as SsfStream['delivery'] ?? base.delivery } : base, issuer)
    await this.redis.hset(keys.ssfStreams(), id, JSON.stringify(next))
    return next
  }

  async setStatus (id: string, status: StreamStatus, reason: string | null): Promise<SsfStream | null> {
    const base = await this.get(id)
    if (!base) return null
    const next = { ...base, status, reason }
    await this.redis.hset(keys.ssfStreams(), id, JSON.stringify(next))
    return next
  }

  async remove (id: string): Promise<boolean> {
    const results = await this.redis.multi().hdel(keys.ssfStreams(), id).del(keys.ssfPollQueue(id), keys.ssfPollSets(id)).exec()
    return results?.[0]?.[1] === 1
  }

  /** Queues a SET for a poll stream (idempotent by jti). */
  async enqueuePoll (streamId: string, jti: string, set: string, ttlS = 30 * 86400): Promise<void> {
    await this.redis.multi()
      .hsetnx(keys.ssfPollSets(streamId), jti, set)
      .zadd(keys.ssfPollQueue(streamId), 'NX', Date.now(), jti)
      .expire(keys.ssfPollSets(streamId), ttlS)
      .expire(keys.ssfPollQueue(streamId), ttlS)
      .exec()
  }

  /** RFC 8936: drops acknowledged SETs, then answers up to `max` pending ones and whether more wait. */
  async poll (streamId: string, ack: string[], max: number): Promise<{ sets: Record<string, string>, moreAvailable: boolean }> {
    if (ack.length > 0) await this.redis.multi().hdel(keys.ssfPollSets(streamId), ...ack).zrem(keys.ssfPollQueue(streamId), ...ack).exec()
    const jtis = await this.redis.zrange(keys.ssfPollQueue(streamId), 0, max)
    const page = jtis.slice(0, max)
    const values = page.length > 0 ? await this.redis.hmget(keys.ssfPollSets(streamId), ...page) : []
    const sets: Record<string, string> = {}
    page.forEach((j, i) => { if (values[i]) sets[j] = values[i] as string })
    return { sets, moreAvailable: jtis.length > max }
  }
}
