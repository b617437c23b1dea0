/**
 * The token endpoint: `authorization_code` (PKCE S256, bound client, redirect URI and resource) and
 * `refresh_token` (rotation on every use, reuse after the grace period revokes the grant, scope can only
 * narrow, resource must match). Every answer is `Cache-Control: no-store`; every refusal is RFC 6749 §5.2.
 * The access token is signed before anything is written, and what is written (code consumed, refresh
 * token stored) is written by one script or not at all.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { constantTimeEqual, s256, type Client } from '@uspl/core'
import { OAuthError } from '@uspl/errors'
import { requestingClient } from '../lib/client-assertion.ts'
import { clientFailureLimit, presentedClientId } from '../lib/client-auth.ts'
import { signAccessToken } from '../lib/jwt.ts'
import { narrowScope, param, resourceMatches, VERIFIER_RE } from '../lib/oauth.ts'
import { newRefreshToken } from '../lib/refresh-tokens.ts'
import { JWT_BEARER } from '../lib/id-jag.ts'
import { jwtBearerGrant } from './grants/jwt-bearer.ts'

interface TokenResponse {
  access_token: string
  token_type: 'Bearer'
  expires_in: number
  scope: string
  refresh_token: string
}

export default async function token (app: FastifyInstance): Promise<void> {
  const { clients, codes, refreshTokens, revoker, keyRing, config } = app.tokenContext

  const invalidGrant = (why: string): OAuthError => new OAuthError('invalid_grant', why)

  async function findClient (request: FastifyRequest, body: unknown, disabledError: 'invalid_client' | 'invalid_grant'): Promise<Client> {
    const client = await requestingClient(app.tokenContext, request, body) as Client
    if (client.disabledAt !== null) {
      throw disabledError === 'invalid_client'
        ? new OAuthError('invalid_client', 'an operator disabled this client', 401)
        : invalidGrant('an operator disabled this client; its grants are revoked')
    }
    return client
  }

  async function issueAccessToken (c: { userId: string, resource: string, clientId: string, scope: string, authTime: number, grantId: string }): Promise<string> {
    const { token } = await signAccessToken(keyRing, { issuer: config.ISSUER_URL, ttlS: config.ACCESS_TOKEN_TTL_S, ...c })
    return token
  }

  async function authorizationCode (request: FastifyRequest, body: unknown): Promise<TokenResponse> {
    // step: parameters
    const code = param(body, 'code', 256)
    if (!code) throw new OAuthError('invalid_request', 'code is required')
    const verifier = param(body, 'code_verifier', 256)
    if (!verifier) throw new OAuthError('invalid_request', 'code_verifier is required (PKCE)')
    const redirectUri = param(body, 'redirect_uri', 2000)
    const resource = param(body, 'resource')
    // step: client (and its authentication)
    const client = await findClient(request, body, 'invalid_client')
    const clientId = client.clientId
    // step: the code (a used one is a replay: revoke what it created)
    const found = await codes.lookup(code)
    if (found.status === 'used') {
      await revoker.revokeGrant(found.grantId, { path: 'code_reuse', actor: { type: 'client', id: clientId } })
      request.log.warn({ clientId, grantId: found.grantId }, 'authorization code reused: grant revoked')
      throw invalidGrant('the authorization code was already used; the grant it created is revoked')
    }
    if (found.status === 'unknown') throw invalidGrant('the authorization code is invalid or expired')
    const record = found.record
    // step: bindings (a failed check burns the code)
    const refuse = async (err: OAuthError): Promise<never> => { await codes.burn(code); throw err }
    if (record.clientId !== client.clientId) await refuse(invalidGrant('the authorization code was issued to another client'))
    if (redirectUri !== undefined ? redirectUri !== record.redirectUri : !(client.metadata.redirect_uris.length === 1 && client.metadata.redirect_uris[0] === record.redirectUri)) {
      await refuse(invalidGrant('redirect_uri does not match the authorization request'))
    }
    if (!VERIFIER_RE.test(verifier) || !constantTimeEqual(s256(verifier), record.codeChallenge)) await refuse(invalidGrant('code_verifier does not match the code challenge (PKCE)'))
    if (resource !== undefined && !resourceMatches(record.resource, resource)) await refuse(new OAuthError('invalid_target', `resource must be ${record.resource}`))
    // step: sign, then redeem the code and store the refresh token atomically
    const accessToken = await issueAccessToken(record)
    const refresh = newRefreshToken(record)
    const redeemed = await codes.redeem(code, record, { hash: refresh.hash, ttlS: config.REFRESH_TOKEN_TTL_S, fields: refresh.fields })
    if (redeemed.status === 'used' && redeemed.grantId) {
      await revoker.revokeGrant(redeemed.grantId, { path: 'code_reuse', actor: { type: 'client', id: clientId } })
      throw invalidGrant('the authorization code was already used; the grant it created is revoked')
    }
    if (redeemed.status === 'revoked') throw invalidGrant('the grant was revoked')
    if (redeemed.status !== 'ok') throw invalidGrant('the authorization code is invalid or expired')
    request.log.info({ clientId, grantId: record.grantId, grantType: 'authorization_code' }, 'tokens issued')
    return { access_token: accessToken, token_type: 'Bearer', expires_in: config.ACCESS_TOKEN_TTL_S, scope: record.scope, refresh_token: refresh.token }
  }

  async function refreshToken (request: FastifyRequest, body: unknown): Promise<TokenResponse> {
    // step: parameters
    const presented = param(body, 'refresh_token', 256)
    if (!presented) throw new OAuthError('invalid_request', 'refresh_token is required')
    const resource = param(body, 'resource')
    const requestedScope = param(body, 'scope', 1024)
    // step: client (and its authentication)
    const { clientId } = await findClient(request, body, 'invalid_grant')
    // step: the refresh token and its bindings
    const current = await refreshTokens.get(presented)
    if (!current) throw invalidGrant('the refresh token is invalid, expired or revoked')
    if (current.clientId !== clientId) throw invalidGrant('the refresh token was issued to another client')
    if (resource !== undefined && !resourceMatches(current.resource, resource)) throw new OAuthError('invalid_target', `resource must be ${current.resource}`)
    const scope = narrowScope(current.scope, requestedScope)
    // step: sign, then rotate atomically (a retry within the grace period gets the same successor; a replay
    //       after it revokes the grant)
    const accessToken = await issueAccessToken({ ...current, scope })
    const next = newRefreshToken(current)
    const rotated = await refreshTokens.rotate(presented, current, next, { graceS: config.REFRESH_REUSE_GRACE_S, ttlS: config.REFRESH_TOKEN_TTL_S })
    if (rotated.status === 'reused') {
      await revoker.revokeGrant(rotated.grantId, { path: 'refresh_token_reuse', actor: { type: 'client', id: clientId } })
      request.log.warn({ clientId, grantId: rotated.grantId }, 'rotated refresh token reused: grant revoked')
      throw invalidGrant('the refresh token was already used; the grant is revoked')
    }
    if (rotated.status !== 'ok') throw invalidGrant('the refresh token is invalid, expired or revoked')
    await clients.touch(clientId)
    request.log.info({ clientId, grantId: current.grantId, grantType: 'refresh_token' }, 'tokens issued')
    return { access_token: accessToken, token_type: 'Bearer', expires_in: config.ACCESS_TOKEN_TTL_S, scope, refresh_token: rotated.refreshToken }
  }

  const jwtBearer = jwtBearerGrant(app)

  app.post('/token', { config: { public: true, basicChallenge: true, failureLimit: clientFailureLimit } }, async (request: FastifyRequest, reply: FastifyReply) => {
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
    const body = request.body ?? {}
    const grantType = param(body, 'grant_type')
    if (!grantType) throw new OAuthError('invalid_request', 'grant_type is required')
    if (grantType === 'authorization_code') return authorizationCode(request, body)
    if (grantType === 'refresh_token') return refreshToken(request, body)
    if (grantType === JWT_BEARER) return jwtBearer(request, body)
    throw new OAuthError('unsupported_grant_type', `grant_type ${grantType} is not supported (authorization_code, refresh_token, ${JWT_BEARER})`)
  })
}
