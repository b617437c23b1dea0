/**
 * The catalogue's classes: one base (HttpError) and one subclass per wire format (see index.ts).
 */
import { oauthBody, apiBody, type OAuthErrorBody, type ApiErrorBody } from './wire.ts'

export interface HttpErrorOptions {
  /** whether the message may be shown to the caller; default: for statuses below 500 */
  expose?: boolean
  /** seconds the caller should wait before retrying: the answer's Retry-After */
  retryAfterS?: number
  /** the WWW-Authenticate challenge (RFC 9110 §11.6.1), e.g. from bearerChallenge() */
  challenge?: string
  /** the answer says Cache-Control: no-store */
  noStore?: boolean
  /** any other header the answer carries */
  headers?: Record<string, string>
  cause?: unknown
}

export class HttpError extends Error {
  readonly statusCode: number
  /** the wire code (`error` of OAuth, `code` of the API, `err` of RFC 8935) */
  readonly code: string
  readonly expose: boolean
  readonly retryAfterS: number | undefined
  /** set by the refusing step when the challenge depends on where it is answered (the gateway's resource metadata) */
  challenge: string | undefined
  readonly noStore: boolean
  readonly headers: Record<string, string>

  constructor (statusCode: number, code: string, message: string, options: HttpErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'HttpError'
    this.statusCode = statusCode
    this.code = code
    this.expose = options.expose ?? statusCode < 500
    this.retryAfterS = options.retryAfterS
    this.challenge = options.challenge
    this.noStore = options.noStore ?? false
    this.headers = { ...options.headers }
  }

  /** what the caller may read: the message, or nothing internal */
  get description (): string {
    return this.expose ? this.message : 'internal error'
  }
}

export type OAuthErrorCode =
  | 'invalid_request' | 'invalid_client' | 'invalid_grant' | 'unauthorized_client' | 'unsupported_grant_type'
  | 'invalid_scope' | 'access_denied' | 'unsupported_response_type' | 'server_error' | 'temporarily_unavailable'
  | 'invalid_target' | 'invalid_token' | 'insufficient_scope' | 'unsupported_token_type' | 'slow_down'

/** RFC 6749 §5.2; answered with Cache-Control: no-store unless told otherwise. */
export class OAuthError extends HttpError {
  constructor (error: OAuthErrorCode | string, description: string, statusCode = 400, options: HttpErrorOptions = {}) {
    super(statusCode, error, description, { noStore: true, ...options })
    this.name = 'OAuthError'
  }

  /** the RFC 6749 `error` member */
  get error (): string {
    return this.code
  }

  toJSON (): OAuthErrorBody {
    return oauthBody(this)
  }
}

export type RegistrationErrorCode = 'invalid_redirect_uri' | 'invalid_client_metadata' | 'invalid_software_statement' | 'unapproved_software_statement'

export class RegistrationError extends OAuthError {
  constructor (error: RegistrationErrorCode | 'invalid_token' | 'invalid_request', description: string, statusCode = 400, options: HttpErrorOptions = {}) {
    super(error, description, statusCode, options)
    this.name = 'RegistrationError'
  }
}

/** The REST APIs' error; its messages are written for callers, so shown at every status unless told otherwise. */
export class ApiError extends HttpError {
  constructor (code: string, message: string, statusCode = 400, options: HttpErrorOptions = {}) {
    super(statusCode, code, message, { expose: true, ...options })
    this.name = 'ApiError'
  }

  toJSON (): ApiErrorBody {
    return apiBody(this)
  }
}

/** JSON-RPC 2.0 error codes the gateway answers with over HTTP. */
export const RpcCode = {
  /** implementation-defined server error (the MCP SDKs' choice for transport refusals) */
  ServerError: -32000,
  /** MCP: the session is unknown or gone */
  SessionNotFound: -32001,
  InvalidRequest: -32600,
  InternalError: -32603
} as const

/** A JSON-RPC error answered over HTTP; `rpcCode` is the JSON-RPC `error.code`. */
export class RpcError extends HttpError {
  constructor (statusCode: number, readonly rpcCode: number, message: string, options: HttpErrorOptions = {}) {
    super(statusCode, String(rpcCode), message, { expose: true, ...options })
    this.name = 'RpcError'
  }
}

export type SecEventErrorCode = 'invalid_request' | 'invalid_key' | 'invalid_issuer' | 'invalid_audience' | 'authentication_failed' | 'access_denied'

/** RFC 8935 §2.4: a refused Security Event Token. */
export class SecEventError extends HttpError {
  constructor (err: SecEventErrorCode, description: string, statusCode = 400, options: HttpErrorOptions = {}) {
    super(statusCode, err, description, { expose: true, noStore: statusCode < 500, ...options })
    this.name = 'SecEventError'
  }

  /** the RFC 8935 `err` member */
  get err (): SecEventErrorCode {
    return this.code as SecEventErrorCode
  }
}
