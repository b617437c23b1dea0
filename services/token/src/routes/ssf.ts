/**
 * Shared Signals transmitter endpoints (OpenID SSF 1.0) on the issuer:
 *   GET /.well-known/ssf-configuration          the transmitter configuration (public)
 * and, for operator API keys only (`Authorization: Bearer uspl_…`, an encapsulated context's hook):
 *   POST|GET|PATCH|PUT|DELETE /ssf/streams       stream configuration (SSF §8.1.1)
 *   GET|POST /ssf/status                         stream status (SSF §8.1.2)
 *   POST /ssf/verify                             a verification event to the stream (SSF §8.1.4)
 *   POST /ssf/streams/:streamId/poll             RFC 8936 poll delivery: acknowledge, then receive SETs
 * The SETs themselves are made and delivered by the revocation follow-up worker (shared/core ssf-delivery).
 * Errors are `{"error":{"code","message"}}`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ApiError, bearerChallenge } from '@uspl/errors'
import {
  ApiKeyStore, DELIVERY_POLL, DELIVERY_PUSH, SSF_VERIFICATION, StreamInputError, newId, nowSeconds, publicStream, pushSet, signSet,
  type SsfStream, type SsfStreamInput, type StreamStatus
} from '@uspl/core'

const STATUSES: StreamStatus[] = ['enabled', 'paused', 'disabled']

export function ssfConfiguration (issuer: string): Record<string, unknown> {
  return {
    spec_version: '1_0',
    issuer,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    delivery_methods_supported: [DELIVERY_PUSH, DELIVERY_POLL],
    configuration_endpoint: `${issuer}/ssf/streams`,
    status_endpoint: `${issuer}/ssf/status`,
    verification_endpoint: `${issuer}/ssf/verify`,
    authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6750' }],
    default_subjects: 'ALL'
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

function bodyOf (request: FastifyRequest): Record<string, unknown> {
  if (!isObject(request.body)) throw new ApiError('invalid_request', 'the body must be a JSON object')
  return request.body
}

function streamIdOf (value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw new ApiError('invalid_request', 'stream_id is required')
  return value
}

export default async function ssf (app: FastifyInstance): Promise<void> {
  const { config, keyRing } = app.tokenContext
  const { streams } = app.enterprise
  const issuer = config.ISSUER_URL
  const doc = ssfConfiguration(issuer)
  const signingKey = async (): Promise<{ privateKey: import('node:crypto').KeyObject, kid: string }> => (await keyRing.current()).signer

  app.get('/.well-known/ssf-configuration', { config: { public: true } }, async (_request, reply) => {
    reply.header('cache-control', `public, max-age=${config.JWKS_MAX_AGE_S}`)
    return doc
  })

  await app.register(async (operator) => {
    const apiKeys = new ApiKeyStore(operator.redis)
    operator.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
      const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')
      if (!match || !await apiKeys.verify(match[1])) {
        throw new ApiError('unauthenticated', 'send an operator API key as a Bearer token', 401, { challenge: bearerChallenge({ realm: 'uspl-ssf' }) })
      }
    })

    const found = async (id: string): Promise<SsfStream> => {
      const stream = await streams.get(id)
      if (!stream) throw new ApiError('not_found', 'no such stream', 404)
      return stream
    }
    const input = (b: Record<string, unknown>): SsfStreamInput => ({
      aud: b.aud as SsfStreamInput['aud'],
      events_requested: b.events_requested as string[] | undefined,
      delivery: b.delivery as SsfStreamInput['delivery'],
      description: b.description as string | undefined
    })
    const invalid = (err: unknown): never => {
      if (err instanceof StreamInputError) throw new ApiError('invalid_request', err.message)
      throw err
    }
    const opts = { config: { public: true, cors: false as const, failureLimit: {} } }

    operator.post('/ssf/streams', opts, async (request, reply) => {
      const stream = await streams.create(input(bodyOf(request)), issuer).catch(invalid)
      reply.code(201)
      return publicStream(stream)
    })
    operator.get<{ Querystring: { stream_id?: string } }>('/ssf/streams', opts, async (request) => {
      if (request.query.stream_id !== undefined) return publicStream(await found(request.query.stream_id))
      return (await streams.list()).map(publicStream)
    })
    for (const method of ['PATCH', 'PUT'] as const) {
      operator.route({
        method,
        url: '/ssf/streams',
        ...opts,
        handler: async (request) => {
          const b = bodyOf(request)
          const id = streamIdOf(b.stream_id)
          await found(id)
          const updated = await streams.update(id, input(b), issuer, method === 'PUT').catch(invalid)
          if (!updated) throw new ApiError('not_found', 'no such stream', 404)
          return publicStream(updated)
        }
      })
    }
    operator.delete<{ Querystring: { stream_id?: string } }>('/ssf/streams', opts, async (request, reply) => {
      if (!await streams.remove(streamIdOf(request.query.stream_id))) throw new ApiError('not_found', 'no such stream', 404)
      return reply.code(204).send()
    })

    operator.get<{ Querystring: { stream_id?: string } }>('/ssf/status', opts, async (request) => {
      const stream = await found(streamIdOf(request.query.stream_id))
      return { stream_id: stream.stream_id, status: stream.status, ...(stream.reason ? { reason: stream.reason } : {}) }
    })
    operator.post('/ssf/status', opts, async (request) => {
      const b = bodyOf(request)
      const id = streamIdOf(b.stream_id)
      if (!STATUSES.includes(b.status as StreamStatus)) throw new ApiError('invalid_request', `status must be one of ${STATUSES.join(', ')}`)
      const reason = typeof b.reason === 'string' ? b.reason.slice(0, 500) : null
      const stream = await streams.setStatus(id, b.status as StreamStatus, reason)
      if (!stream) throw new ApiError('not_found', 'no such stream', 404)
      return { stream_id: stream.stream_id, status: stream.status, ...(stream.reason ? { reason: stream.reason } : {}) }
    })

    operator.post('/ssf/verify', opts, async (request, reply) => {
      const b = bodyOf(request)
      const stream = await found(streamIdOf(b.stream_id))
      const state = typeof b.state === 'string' ? b.state.slice(0, 1024) : undefined
      const claims = { iss: issuer, jti: newId('set', 16), iat: nowSeconds(), aud: stream.aud, sub_id: { format: 'opaque', id: stream.stream_id }, events: { [SSF_VERIFICATION]: state === undefined ? {} : { state } } }
      const set = await signSet({ signingKey }, claims)
      if (stream.delivery.method === DELIVERY_POLL) {
        await streams.enqueuePoll(stream.stream_id, claims.jti, set)
      } else {
        // answered first (SSF: 204, then the event); a failed push is the receiver's to notice
        setImmediate(() => {
          pushSet(stream, set).catch((err: unknown) => request.log.warn({ err, streamId: stream.stream_id }, 'verification event push failed'))
        })
      }
      return reply.code(204).send()
    })

    operator.post<{ Params: { streamId: string } }>('/ssf/streams/:streamId/poll', opts, async (request) => {
      const stream = await found(request.params.streamId)
      if (stream.delivery.method !== DELIVERY_POLL) throw new ApiError('invalid_request', 'this stream is delivered by push')
      const b = request.body === undefined || request.body === null ? {} : bodyOf(request)
      const ack = Array.isArray(b.ack) ? b.ack.filter((j): j is string => typeof j === 'string').slice(0, 1000) : []
      const setErrs = isObject(b.setErrs) ? Object.keys(b.setErrs) : []
      if (setErrs.length > 0) request.log.warn({ streamId: stream.stream_id, jtis: setErrs }, 'a poll receiver reported SET errors')
      const max = typeof b.maxEvents === 'number' && Number.isInteger(b.maxEvents) && b.maxEvents >= 0 ? Math.min(b.maxEvents, 1000) : 100
      return streams.poll(stream.stream_id, [...ack, ...setErrs], max)
    })
  })
}
