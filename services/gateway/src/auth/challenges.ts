/**
 * RFC 6750 §3 challenges with the RFC 9728 resource_metadata parameter, as the MCP authorization spec
 * asks: 401 without an error code when no token was presented, `invalid_token` when one was, 403
 * `insufficient_scope` for a valid token without `mcp:tools`, 400 `invalid_request` for a token in the query.
 * An AuthFailure is a catalogued OAuth error: its body is RFC 6750 §3.1's, a 503 carries Retry-After.
 */
import { OAuthError, bearerChallenge } from '@uspl/errors'

export const REQUIRED_SCOPE = 'mcp:tools'

export type AuthFailureReason =
  | 'missing_token' | 'malformed_header' | 'token_in_query' | 'malformed_token' | 'bad_algorithm' | 'bad_type'
  | 'bad_signature' | 'unknown_kid' | 'expired' | 'not_yet_valid' | 'wrong_issuer' | 'wrong_audience'
  | 'missing_claim' | 'invalid_claim' | 'grant_revoked' | 'client_revoked' | 'token_revoked'
  | 'insufficient_scope' | 'jwks_unavailable' | 'store_unavailable'

export type BearerError = 'invalid_token' | 'invalid_request' | 'insufficient_scope'

/** the gateway cannot check a token right now (its keys or the denylist): retry after this */
const UNAVAILABLE_RETRY_AFTER_S = 2

export class AuthFailure extends OAuthError {
  constructor (
    readonly reason: AuthFailureReason,
    statusCode: 400 | 401 | 403 | 503,
    /** the RFC 6750 error code; absent when the request carried no credentials at all */
    readonly bearerError: BearerError | null,
    description: string
  ) {
    super(bearerError ?? (statusCode === 503 ? 'temporarily_unavailable' : 'unauthorized'), description, statusCode, {
      expose: true,
      retryAfterS: statusCode === 503 ? UNAVAILABLE_RETRY_AFTER_S : undefined
    })
    this.name = 'AuthFailure'
  }
}

export function challenge (resourceMetadataUrl: string, failure: AuthFailure | null): string {
  const described = failure?.bearerError ? { error: failure.bearerError, error_description: failure.message } : {}
  return bearerChallenge({ resource_metadata: resourceMetadataUrl, scope: REQUIRED_SCOPE, ...described })
}
