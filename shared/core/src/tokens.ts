/**
 * The access token contract between the issuer (token service) and the resource server (gateway):
 * an RFC 9068 JWT, header { alg: 'ES256', typ: 'at+jwt', kid }, with these claims, every one required.
 */
export interface AccessTokenClaims {
  iss: string
  /** the user id */
  sub: string
  /** the resource (the gateway's /mcp URL); the issuer writes a string, RFC 9068 allows an array */
  aud: string | string[]
  client_id: string
  /** space-separated; includes 'mcp:tools' */
  scope: string
  jti: string
  iat: number
  exp: number
  auth_time: number
  /** the grant the token belongs to: what the denylist and revocation events name */
  grant_id: string
}

export const ACCESS_TOKEN_TYP = 'at+jwt'
export const MCP_SCOPE = 'mcp:tools'
