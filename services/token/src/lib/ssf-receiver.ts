/**
 * The Shared Signals receiver's strict SET reader (RFC 8417, RFC 8935 push, SSF 1.0): a SET from a trusted
 * enterprise issuer about a user it governs, in order:
 *   1. shape: a compact JWS, header `typ` `secevent+jwt`, asymmetric `alg` only;
 *   2. issuer: `iss` is a trusted enterprise issuer                               (else invalid_issuer);
 *   3. signature: against that issuer's keys     (unknown key or alg: invalid_key; mismatch: authentication_failed);
 *   4. audience: `aud` names this issuer                                           (else invalid_audience);
 *   5. freshness: `iat` within SSF_MAX_SET_AGE_S, not in the future; `jti` present; exactly one event;
 *   6. subject: `sub_id` (or the event's `subject`): email, iss_sub, or complex with a user (and an
 *      application naming one of our clients), mapped to our user through the issuer's governed domains
 *      and subject mapping                                         (a user it does not govern: access_denied);
 *   7. replay: `jti` recorded per issuer (SET NX, for as long as the SET could be fresh), last.
 * A refusal is an SsfRefusal carrying the RFC 8935 §2.4 error code.
 * `receiveSet` is the whole intake of one SET, pushed (routes/ssf-receiver) or polled (lib/ssf-poller):
 * read it, act on it through the one revocation pipeline, audit it in `ssf:rx:audit` (with `via`), so the
 * two deliveries cannot drift.
 */
import type { FastifyBaseLogger } from 'fastify'
import { CAEP_CREDENTIAL_CHANGE, CAEP_SESSION_REVOKED, CLOCK_SKEW_S, RISC_ACCOUNT_DISABLED, RISC_ACCOUNT_PURGED, decodeJws, emailDomain, hashSecret, JoseError, keys, nowSeconds, type AccountStore, type DecodedJws, type EnterpriseIssuer, type EnterpriseIssuerStore, type GrantStore, type RevocationResult, type Revoker, type User } from '@uspl/core'
import type { RedisClient } from '@uspl/redis'
import { SecEventError, type SecEventErrorCode } from '@uspl/errors'
import { JwksUnavailableError, type EnterpriseKeys } from './enterprise-keys.ts'

export type SsfErrorCode = SecEventErrorCode

/** A refused SET (400, RFC 8935 §2.4), with the issuer it named when known (for the audit record). */
export class SsfRefusal extends SecEventError {
  constructor (err: SsfErrorCode, description: string, readonly issuer: EnterpriseIssuer | null = null) {
    super(err, description)
    this.name = 'SsfRefusal'
  }
}

/** The events the receiver acts on. */
export const RECEIVED_EVENTS = [CAEP_SESSION_REVOKED, CAEP_CREDENTIAL_CHANGE, RISC_ACCOUNT_DISABLED, RISC_ACCOUNT_PURGED]

export interface ReceivedSet {
  issuer: EnterpriseIssuer
  jti: string
  eventType: string
  /** null when the subject names no user of ours (nothing to do) */
  user: User | null
  /** the application (our client id) the subject names, when it names one */
  clientId: string | null
}

export interface ReceiverDeps {
  redis: RedisClient
  issuers: EnterpriseIssuerStore
  keys: EnterpriseKeys
  accounts: AccountStore
  config: { ISSUER_URL: string, SSF_MAX_SET_AGE_S: number }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const str = (v: unknown): string | null => typeof v === 'string' && v.length > 0 && v.length <= 2048 ? v : null

function decode (set: string): DecodedJws {
  try {
    return decodeJws(set)
  } catch (err) {
    throw new SsfRefusal('invalid_request', `not a SET: ${(err as Error).message}`)
  }
}

/** 6. a subject identifier (SSF §3) as the user it names, within what the issuer governs. */
async function resolveSubject (deps: ReceiverDeps, issuer: EnterpriseIssuer, subject: Record<string, unknown>): Promise<{ user: User | null, clientId: string | null }> {
  let id = subject
  let clientId: string | null = null
  if (id.format === 'complex') {
    if (isObject(id.application) && id.application.format === 'opaque') clientId = str(id.application.id)
    if (!isObject(id.user)) throw new SsfRefusal('invalid_request', 'the complex subject names no user', issuer)
    id = id.user
  }
  if (id.format === 'email') {
    const email = str(id.email)
    const domain = emailDomain(email)
    if (!email || !domain) throw new SsfRefusal('invalid_request', 'the subject\'s email is not an email address', issuer)
    if (!issuer.domains.includes(domain)) throw new SsfRefusal('access_denied', `the issuer does not govern the domain ${domain}`, issuer)
    return { user: await deps.accounts.findUserByEmail(email), clientId }
  }
  if (id.format === 'iss_sub') {
    if (id.iss !== issuer.issuer) throw new SsfRefusal('access_denied', 'the subject belongs to another issuer', issuer)
    const sub = str(id.sub)
    if (!sub) throw new SsfRefusal('invalid_request', 'the iss_sub subject has no sub', issuer)
    const userId = await deps.issuers.linkedUser(issuer.id, sub)
    const user = userId ? await deps.accounts.getUser(userId) : null
    if (user && !issuer.domains.includes(emailDomain(user.email) ?? '')) throw new SsfRefusal('access_denied', 'the issuer does not govern this user', issuer)
    return { user, clientId }
  }
  throw new SsfRefusal('invalid_request', `subject format ${String(id.format)} is not supported (email, iss_sub, complex)`, issuer)
}

export async function readSet (deps: ReceiverDeps, set: string): Promise<ReceivedSet> {
  const now = nowSeconds()
  // 1. shape
  const jws = decode(set)
  if (typeof jws.header.typ !== 'string' || jws.header.typ.toLowerCase() !== 'secevent+jwt') throw new SsfRefusal('invalid_request', 'the SET\'s typ must be secevent+jwt')
  // 2. issuer
  const iss = str(jws.claims.iss)
  const issuer = iss ? await deps.issuers.get(iss) : null
  if (!issuer) throw new SsfRefusal('invalid_issuer', 'the SET\'s issuer is not a trusted enterprise issuer')
  // 3. signature
  try {
    await deps.keys.verify(issuer, jws, { typ: ['secevent+jwt'] })
  } catch (err) {
    if (err instanceof JoseError) throw new SsfRefusal(err.code === 'bad_signature' ? 'authentication_failed' : 'invalid_key', err.message, issuer)
    if (err instanceof JwksUnavailableError) throw err
    throw err
  }
  // 4. audience
  const audiences = Array.isArray(jws.claims.aud) ? jws.claims.aud : [jws.claims.aud]
  if (!audiences.includes(deps.config.ISSUER_URL)) throw new SsfRefusal('invalid_audience', `the SET's aud must name ${deps.config.ISSUER_URL}`, issuer)
  // 5. freshness and shape of the claims
  const { iat, events } = jws.claims
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw new SsfRefusal('invalid_request', 'the SET has no iat', issuer)
  if (iat > now + CLOCK_SKEW_S) throw new SsfRefusal('invalid_request', 'the SET was issued in the future (iat)', issuer)
  if (now - iat > deps.config.SSF_MAX_SET_AGE_S) throw new SsfRefusal('invalid_request', `the SET is stale (issued more than ${deps.config.SSF_MAX_SET_AGE_S} s ago)`, issuer)
  const jti = str(jws.claims.jti)
  if (!jti) throw new SsfRefusal('invalid_request', 'the SET has no jti', issuer)
  if (!isObject(events) || Object.keys(events).length !== 1) throw new SsfRefusal('invalid_request', 'a SET carries exactly one event', issuer)
  const [eventType, payload] = Object.entries(events)[0]
  if (!isObject(payload)) throw new SsfRefusal('invalid_request', 'the event payload must be an object', issuer)
  // 6. subject (only for the events acted on: others are acknowledged and ignored)
  let subject: { user: User | null, clientId: string | null } = { user: null, clientId: null }
  if (RECEIVED_EVENTS.includes(eventType)) {
    const id = isObject(jws.claims.sub_id) ? jws.claims.sub_id : isObject(payload.subject) ? payload.subject : null
    if (!id) throw new SsfRefusal('invalid_request', 'the SET names no subject (sub_id)', issuer)
    subject = await resolveSubject(deps, issuer, id)
  }
  // 7. replay
  const ttl = deps.config.SSF_MAX_SET_AGE_S + 2 * CLOCK_SKEW_S
  const first = await deps.redis.set(keys.ssfReceivedJti(issuer.id, hashSecret(jti)), String(now), 'EX', ttl, 'NX')
  if (first !== 'OK') throw new SsfRefusal('invalid_request', 'the SET was already received (jti)', issuer)
  return { issuer, jti, eventType, user: subject.user, clientId: subject.clientId }
}

const AUDIT_MAXLEN = 10000

export type SetDelivery = 'push' | 'poll'

export interface IntakeDeps extends ReceiverDeps {
  grants: GrantStore
  revoker: Revoker
}

export type IntakeOutcome =
  | { outcome: 'accepted' | 'accepted_no_change' | 'ignored', set: ReceivedSet, result: RevocationResult | null }
  | { outcome: 'refused', refusal: SsfRefusal }

/** One entry of the receiver's audit stream (capped); empty fields are left out. */
export async function auditSet (redis: RedisClient, entry: Record<string, string | null | undefined>): Promise<void> {
  const fields = Object.entries({ at: String(Date.now()), ...entry }).filter(([, v]) => typeof v === 'string' && v.length > 0).flat() as string[]
  await redis.xadd(keys.ssfReceiverAudit(), 'MAXLEN', '~', String(AUDIT_MAXLEN), '*', ...fields)
}

/** A refusal before the SET could be read (the push route's content type), audited as the reader's are. */
export async function auditRefusal (deps: { redis: RedisClient, log: FastifyBaseLogger }, refusal: SsfRefusal, via: SetDelivery): Promise<void> {
  await auditSet(deps.redis, { outcome: 'refused', via, err: refusal.err, description: refusal.message, issuer: refusal.issuer?.issuer })
  deps.log.warn({ err: refusal.err, issuer: refusal.issuer?.id, via }, 'security event refused')
}

async function act (deps: IntakeDeps, set: ReceivedSet): Promise<RevocationResult | null> {
  if (!RECEIVED_EVENTS.includes(set.eventType) || !set.user) return null
  const how = { path: 'enterprise_signal' as const, actor: { type: 'system' as const, id: set.issuer.id } }
  if (set.eventType === CAEP_SESSION_REVOKED && set.clientId) {
    const grant = await deps.grants.activeFor(set.user.id, set.clientId)
    return grant ? deps.revoker.revokeGrant(grant.id, how) : null
  }
  // the IdP disabled or removed the account: no sign-in and no personal key here either, then every grant goes
  if (set.eventType === RISC_ACCOUNT_DISABLED || set.eventType === RISC_ACCOUNT_PURGED) await deps.accounts.setDisabled(set.user.id, true)
  return deps.revoker.revokeUser(set.user.id, how)
}

/**
 * One SET, however it came: read, act, audit. A refusal is audited and answered as an outcome; the
 * issuer's keys being unreachable (JwksUnavailableError) is thrown, unaudited, for the caller to retry.
 */
export async function receiveSet (deps: IntakeDeps, log: FastifyBaseLogger, set: string, via: SetDelivery): Promise<IntakeOutcome> {
  let read: ReceivedSet
  try {
    read = await readSet(deps, set.trim())
  } catch (err) {
    if (!(err instanceof SsfRefusal)) throw err
    await auditRefusal({ redis: deps.redis, log }, err, via)
    return { outcome: 'refused', refusal: err }
  }
  const result = await act(deps, read)
  const outcome = result ? 'accepted' : RECEIVED_EVENTS.includes(read.eventType) ? 'accepted_no_change' : 'ignored'
  await auditSet(deps.redis, {
    outcome,
    via,
    issuer: read.issuer.issuer,
    jti: read.jti,
    event: read.eventType,
    user: read.user?.id,
    client: read.clientId,
    revocation: result?.eventId
  })
  log.info({ issuer: read.issuer.id, event: read.eventType, userId: read.user?.id, revoked: result?.status ?? 'none', via }, 'security event received')
  return { outcome, set: read, result }
}
