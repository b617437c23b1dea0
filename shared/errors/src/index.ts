/**
 * The error catalogue. Three wire formats, each the one its standard prescribes:
 * - OAuthError: RFC 6749 §5.2 (`error`, `error_description`), also used for RFC 7009/7662 endpoints;
 * - RegistrationError: RFC 7591 §3.2.2 (same shape, its own codes);
 * - ApiError: the connections REST API (`{ error: { code, message } }`, stable codes).
 * Each carries its HTTP status and whether its description may be shown to the caller.
 */
import createError from '@fastify/error'

export type OAuthErrorCode =
  | 'invalid_request' | 'invalid_client' | 'invalid_grant' | 'unauthorized_client' | 'unsupported_grant_type'
  | 'invalid_scope' | 'access_denied' | 'unsupported_response_type' | 'server_error' | 'temporarily_unavailable'
  | 'invalid_target' | 'invalid_token' | 'insufficient_scope' | 'unsupported_token_type' | 'slow_down'

export class OAuthError extends Error {
  readonly error: string
  readonly statusCode: number
  readonly expose: boolean
  readonly headers: Record<string, string>
  constructor (error: OAuthErrorCode | string, description: string, statusCode = 400, headers: Record<string, string> = {}) {
    super(description)
    this.name = 'OAuthError'
    this.error = error
    this.statusCode = statusCode
    this.expose = statusCode < 500
    this.headers = headers
  }

  toJSON (): { error: string, error_description: string } {
    return { error: this.error, error_description: this.expose ? this.message : 'internal error' }
  }
}

export type RegistrationErrorCode = 'invalid_redirect_uri' | 'invalid_client_metadata' | 'invalid_software_statement' | 'unapproved_software_statement'

export class RegistrationError extends OAuthError {
  constructor (error: RegistrationErrorCode | 'invalid_token' | 'invalid_request', description: string, statusCode = 400) {
    super(error, description, statusCode)
    this.name = 'RegistrationError'
  }
}

export class ApiError extends Error {
  readonly code: string
  readonly statusCode: number
  constructor (code: string, message: string, statusCode = 400) {
    super(message)
    this.name = 'ApiError'
    this.code = code
    this.statusCode = statusCode
  }

  toJSON (): { error: { code: string, message: string } } {
    return { error: { code: this.code, message: this.message } }
  }
}

/** Raised when Redis cannot answer; every service maps it to 503 with Retry-After (fail closed). */
export const StoreUnavailableError = createError('USPL_STORE_UNAVAILABLE', 'the session store is unavailable: %s', 503)
export const ConfigurationError = createError('USPL_CONFIG', 'invalid configuration: %s', 500)

/** True for errors raised by ioredis when Redis cannot be reached or does not answer in time. */
export function isRedisUnavailable (err: unknown): boolean {
  if (!(err instanceof Error)) return false
  if ((err as { code?: string }).code === 'USPL_STORE_UNAVAILABLE') return true
  const msg = err.message
  return err.name === 'MaxRetriesPerRequestError' ||
    /Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|ETIMEDOUT|Command timed out|enableOfflineQueue|Reached the max retries|CLUSTERDOWN|LOADING|MASTERDOWN|READONLY/.test(msg)
}
