/**
 * POST /ssf/receiver: the Shared Signals push endpoint (RFC 8935) for trusted enterprise issuers. Steps:
 * content type, the strict SET reader (lib/ssf-receiver), then the action through the one revocation
 * pipeline, then the audit record. CAEP session-revoked revokes the user's grant of the client the subject
 * names (all the user's grants when it names none); CAEP credential-change revokes every grant of the
 * user, and RISC account-disabled / account-purged also disable the user (no sign-in, no personal key). Answers 202 with no body when accepted, or 400 with the
 * RFC 8935 error (`{"err","description"}`); every SET, accepted or refused, is audited (a capped stream).
 * Authenticated by the SET's own signature: no other credential is asked for.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { SecEventError } from '@uspl/errors'
import { sendError } from '@uspl/server'
import { CAEP_SESSION_REVOKED, RISC_ACCOUNT_DISABLED, RISC_ACCOUNT_PURGED, keys, type RevocationResult } from '@uspl/core'
import { readSet, RECEIVED_EVENTS, SsfRefusal, type ReceivedSet } from '../lib/ssf-receiver.ts'
import { JwksUnavailableError } from '../lib/enterprise-keys.ts'

const AUDIT_MAXLEN = 10000
const SET_MAX_BYTES = 64 * 1024

export default async function ssfReceiver (app: FastifyInstance): Promise<void> {
  const { accounts, grants, revoker, config } = app.tokenContext
  const deps = { redis: app.redis, issuers: app.enterprise.issuers, keys: app.enterprise.keys, accounts, config }

  // this context reads every body as text, so a wrong content type is refused in the RFC 8935 format
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: SET_MAX_BYTES }, (_request, body, done) => done(null, body))

  async function audit (entry: Record<string, string | null | undefined>): Promise<void> {
    const fields = Object.entries({ at: String(Date.now()), ...entry }).filter(([, v]) => typeof v === 'string' && v.length > 0).flat() as string[]
    await app.redis.xadd(keys.ssfReceiverAudit(), 'MAXLEN', '~', String(AUDIT_MAXLEN), '*', ...fields)
  }

  async function act (set: ReceivedSet): Promise<RevocationResult | null> {
    if (!RECEIVED_EVENTS.includes(set.eventType) || !set.user) return null
    const how = { path: 'enterprise_signal' as const, actor: { type: 'system' as const, id: set.issuer.id } }
    if (set.eventType === CAEP_SESSION_REVOKED && set.clientId) {
      const grant = await grants.activeFor(set.user.id, set.clientId)
      return grant ? revoker.revokeGrant(grant.id, how) : null
    }
    // the IdP disabled or removed the account: no sign-in and no personal key here either, then every grant goes
    if (set.eventType === RISC_ACCOUNT_DISABLED || set.eventType === RISC_ACCOUNT_PURGED) await accounts.setDisabled(set.user.id, true)
    return revoker.revokeUser(set.user.id, how)
  }

  // server to server: no CORS
  const options = { config: { public: true, cors: false as const, failureLimit: {} } }
  app.post('/ssf/receiver', options, async (request: FastifyRequest, reply: FastifyReply) => {
    const refuse = async (err: SsfRefusal): Promise<FastifyReply> => {
      await audit({ outcome: 'refused', err: err.err, description: err.message, issuer: err.issuer?.issuer })
      request.log.warn({ err: err.err, issuer: err.issuer?.id }, 'security event refused')
      return sendError(reply, err)
    }
    // step: content type (RFC 8935 §2.1)
    const type = String(request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()
    if (type !== 'application/secevent+jwt' || typeof request.body !== 'string') return refuse(new SsfRefusal('invalid_request', 'the body must be one SET (application/secevent+jwt)'))
    // step: the SET
    let set: ReceivedSet
    try {
      set = await readSet(deps, request.body.trim())
    } catch (err) {
      if (err instanceof SsfRefusal) return refuse(err)
      if (err instanceof JwksUnavailableError) {
        request.log.warn({ err }, 'security event: the issuer\'s keys are unavailable')
        return sendError(reply, new SecEventError('invalid_key', 'the issuer\'s keys could not be read; retry shortly', 503, { retryAfterS: err.retryAfterS }))
      }
      throw err
    }
    // step: act through the revocation pipeline, then audit
    const result = await act(set)
    await audit({
      outcome: result ? 'accepted' : RECEIVED_EVENTS.includes(set.eventType) ? 'accepted_no_change' : 'ignored',
      issuer: set.issuer.issuer,
      jti: set.jti,
      event: set.eventType,
      user: set.user?.id,
      client: set.clientId,
      revocation: result?.eventId
    })
    request.log.info({ issuer: set.issuer.id, event: set.eventType, userId: set.user?.id, revoked: result?.status ?? 'none' }, 'security event received')
    return reply.code(202).send()
  })
}
