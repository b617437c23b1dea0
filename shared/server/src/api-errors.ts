/**
 * The REST APIs' one error shape, `{ "error": { "code", "message" } }` (the connections API and the
 * workspace API): the schema their OpenAPI documents reference as `Error`, and the error handler that
 * answers every failure in it (ApiError as it says; validation 400 naming the field; Redis outages 503 with
 * Retry-After; anything unexpected 500 with nothing internal, logged under `err`).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type } from '@uspl/config'
import { ApiError, isRedisUnavailable } from '@uspl/errors'

export const ErrorBody = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String() })
}, { $id: 'Error', description: 'every error: a stable code and a message' })

const errorRef = Type.Ref('Error')
/** Response schemas for the given error statuses, all the shared `Error`. */
export const errors = (...codes: number[]): Record<number, typeof errorRef> =>
  Object.fromEntries(codes.map((c) => [c, errorRef]))

export function apiErrorHandler (this: FastifyInstance, err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (err instanceof ApiError) {
    reply.code(err.statusCode).send(err.toJSON())
    return
  }
  if (err.validation) {
    reply.code(400).send(new ApiError('invalid_request', err.message).toJSON())
    return
  }
  if (isRedisUnavailable(err)) {
    request.log.warn({ err }, 'redis unavailable')
    reply.code(503).header('retry-after', '2').send(new ApiError('unavailable', 'the service cannot reach its store; retry shortly', 503).toJSON())
    return
  }
  const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500
  if (status === 500) {
    request.log.error({ err }, 'request failed')
    reply.code(500).send(new ApiError('internal', 'internal error', 500).toJSON())
    return
  }
  reply.code(status).send(new ApiError(err.code?.toLowerCase() ?? 'bad_request', err.message, status).toJSON())
}
