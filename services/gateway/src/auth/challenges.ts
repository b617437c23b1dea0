/**
 * RFC 6750 §3 challenges with the RFC 9728 resource_metadata parameter, as the MCP authorization spec
 * asks: 401 without an error code when no token was presented, `invalid_token` when one was, 403
 * `insufficient_scope` for a valid token without `mcp:tools`, 400 `invalid_request` for a token in the query.
 */
export const REQUIRED_SCOPE = 'mcp:tools'

export type AuthFailureReason =
  | 'missing_token' | 'malformed_header' | 'token_in_query' | 'malformed_token' | 'bad_algorithm' | 'bad_type'
  | 'bad_signature' | 'unknown_kid' | 'expired' | 'not_yet_valid' | 'wrong_issuer' | 'wrong_audience'
  | 'missing_claim' | 'invalid_claim' | 'grant_revoked' | 'client_revoked' | 'token_revoked'
  | 'insufficient_scope' | 'jwks_unavailable' | 'store_unavailable'

export type BearerError = 'invalid_token' | 'invalid_request' | 'insufficient_scope'

export class AuthFailure extends Error {
  constructor (
    readonly reason: AuthFailureReason,
    readonly statusCode: 400 | 401 | 403 | 503,
    /** the RFC 6750 error code; absent when the request carried no credentials at all */
    readonly bearerError: BearerError | null,
    description: string
  ) {
    super(description)
    this.name = 'AuthFailure'
  }
}

function quote (value: string): string {
  return `"${value.replace(/["\\]/g, '')}"`
}

export function challenge (resourceMetadataUrl: string, failure: AuthFailure | null): string {
  const params = [`resource_metadata=${quote(resourceMetadataUrl)}`, `scope=${quote(REQUIRED_SCOPE)}`]
  if (failure?.bearerError) {
    params.push(`error=${quote(failure.bearerError)}`, `error_description=${quote(failure.message)}`)
  }
  return `Bearer ${params.join(', ')}`
}
