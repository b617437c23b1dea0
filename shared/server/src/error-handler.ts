/**
 * The one Fastify error handler. A catalogued error (@uspl/errors HttpError) is answered as it says, in its
 * own wire format; anything else becomes one in the answering context's format (`errorHandlerFor`): a
 * validation failure 400 naming the field, a Redis outage 503 with Retry-After (fail closed), another 4xx
 * as it was raised, anything unexpected 500 with nothing internal, logged under `err`.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { HttpError, OAuthError, ApiError, isRedisUnavailable, renderError, type WireFormat } from '@uspl/errors'

const STORE_DOWN = 'the service cannot reach its store; retry shortly'
const STORE_RETRY_AFTER_S = 2

/** What an uncatalogued error means in the given format (and whether it is ours to log). */
function catalogued (err: FastifyError, format: WireFormat, request: FastifyRequest): HttpError {
  const api = format === 'api'
  if (err.validation) return api ? new ApiError('invalid_request', err.message) : new OAuthError('invalid_request', err.message, 400, { noStore: false })
  if (isRedisUnavailable(err)) {
    request.log.warn({ err }, 'redis unavailable')
    return api
      ? new ApiError('unavailable', STORE_DOWN, 503, { retryAfterS: STORE_RETRY_AFTER_S })
      : new OAuthError('temporarily_unavailable', STORE_DOWN, 503, { expose: true, retryAfterS: STORE_RETRY_AFTER_S, noStore: false })
  }
  const raised = err.statusCode !== undefined && err.statusCode >= 400 ? err.statusCode : 500
  if (api) {
    if (raised < 500) return new ApiError(err.code?.toLowerCase() ?? 'bad_request', err.message, raised)
    request.log.error({ err }, 'request failed')
    return new ApiError('internal', 'internal error', 500)
  }
  if (raised >= 500) {
    request.log.error({ err }, 'request failed')
    return new OAuthError('server_error', err.message, raised, { noStore: false })
  }
  return new OAuthError('invalid_request', err.message, raised, { noStore: false })
}

/** Answers a catalogued error through Fastify (the format is the error's own, else `format`). */
export function sendError (reply: FastifyReply, err: HttpError, format: WireFormat = 'oauth'): FastifyReply {
  const rendered = renderError(err, format)
  reply.code(rendered.status).headers(rendered.headers)
  // a JSON-RPC error is written as the MCP transport writes its own answers, not through a route's schema
  if (rendered.format === 'jsonrpc') return reply.header('content-type', 'application/json').send(JSON.stringify(rendered.body))
  return reply.send(rendered.body)
}

/** The error handler of a context answering in `format` (the base app: OAuth; the REST APIs: 'api'). */
export function errorHandlerFor (format: WireFormat) {
  return function errorHandler (this: FastifyInstance, err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
    if (err instanceof HttpError) {
      if (err.statusCode >= 500) request.log.error({ err }, 'server error')
      sendError(reply, err, format)
      return
    }
    sendError(reply, catalogued(err, format, request), format)
  }
}

export const errorHandler = errorHandlerFor('oauth')
export const apiErrorHandler = errorHandlerFor('api')
