/**
 * POST /ssf/receiver: the Shared Signals push endpoint (RFC 8935) for trusted enterprise issuers. Steps:
 * content type, then `receiveSet` (lib/ssf-receiver: the strict SET reader, the action through the one
 * revocation pipeline, the audit record), the same intake as the poller's (lib/ssf-poller). CAEP session-revoked revokes the user's grant of the client the subject
 * names (all the user's grants when it names none); CAEP credential-change revokes every grant of the
 * user, and RISC account-disabled / account-purged also disable the user (no sign-in, no personal key). Answers 202 with no body when accepted, or 400 with the
 * RFC 8935 error (`{"err","description"}`); every SET, accepted or refused, is audited (a capped stream).
 * Authenticated by the SET's own signature: no other credential is asked for.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { SecEventError } from '@uspl/errors'
import { sendError } from '@uspl/server'
import { auditRefusal, receiveSet, SsfRefusal } from '../lib/ssf-receiver.ts'
import { JwksUnavailableError } from '../lib/enterprise-keys.ts'

const SET_MAX_BYTES = 64 * 1024

export default async function ssfReceiver (app: FastifyInstance): Promise<void> {
  const deps = app.enterprise.intake

  // this context reads every body as text, so a wrong content type is refused in the RFC 8935 format
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: SET_MAX_BYTES }, (_request, body, done) => done(null, body))

  // server to server: no CORS
  const options = { config: { public: true, cors: false as const, failureLimit: {} } }
  app.post('/ssf/receiver', options, async (request: FastifyRequest, reply: FastifyReply) => {
    // step: content type (RFC 8935 §2.1)
    const type = String(request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()
    if (type !== 'application/secevent+jwt' || typeof request.body !== 'string') {
      const refusal = new SsfRefusal('invalid_request', 'the body must be one SET (application/secevent+jwt)')
      await auditRefusal({ redis: app.redis, log: request.log }, refusal, 'push')
      return sendError(reply, refusal)
    }
    // step: the SET, read, acted on through the revocation pipeline and audited (as a polled one is)
    try {
      const received = await receiveSet(deps, request.log, request.body, 'push')
      if (received.outcome === 'refused') return sendError(reply, received.refusal)
    } catch (err) {
      if (err instanceof JwksUnavailableError) {
        request.log.warn({ err }, 'security event: the issuer\'s keys are unavailable')
        return sendError(reply, new SecEventError('invalid_key', 'the issuer\'s keys could not be read; retry shortly', 503, { retryAfterS: err.retryAfterS }))
      }
      throw err
    }
    return reply.code(202).send()
  })
}
