/**
 * Token revocation (RFC 7009). A refresh token revokes its whole grant; an access token goes onto the
 * `jti` denylist until it expires. Both go through the shared revocation module, so every gateway replica
 * hears of it. An unknown token answers 200 and changes nothing (RFC 7009 §2.2: the answer never tells
 * whether a token exists) but counts as a failed credential. A token issued to another client than the
 * one that names itself is refused, `unauthorized_client` (RFC 7009 §2.1: the server "verifies whether
 * the token was issued to the client making the revocation request. If this validation fails, the
 * request is refused and the client is informed of the error"); nothing is revoked.
 */
import type { FastifyInstance } from 'fastify'
import { nowSeconds } from '@uspl/core'
import { OAuthError } from '@uspl/errors'
import { requestingClient } from '../lib/client-assertion.ts'
import { clientFailureLimit, presentedClientId } from '../lib/client-auth.ts'
import { readAccessToken } from '../lib/jwt.ts'
import { param } from '../lib/oauth.ts'

export default async function revoke (app: FastifyInstance): Promise<void> {
  const { refreshTokens, revoker, keyRing, config } = app.tokenContext

  const otherClients = (): OAuthError => new OAuthError('unauthorized_client', 'the token was not issued to this client; nothing was revoked')

  async function revokeRefreshToken (token: string, clientId: string | undefined): Promise<boolean> {
    const record = await refreshTokens.get(token)
    if (!record) return false
    if (clientId !== undefined && record.clientId !== clientId) throw otherClients()
    await revoker.revokeGrant(record.grantId, { path: 'oauth_revoke', actor: { type: 'client', id: record.clientId } })
    return true
  }

  async function revokeAccessToken (token: string, clientId: string | undefined): Promise<boolean> {
    const claims = await readAccessToken(keyRing, token, config.ISSUER_URL)
    if (!claims) return false
    if (claims.exp <= nowSeconds()) return true
    if (clientId !== undefined && claims.client_id !== clientId) throw otherClients()
    await revoker.revokeAccessToken({ jti: claims.jti, exp: claims.exp, grantId: claims.grant_id, clientId: claims.client_id, userId: claims.sub }, { path: 'oauth_revoke', actor: { type: 'client', id: claims.client_id } })
    return true
  }

  app.post('/revoke', { config: { public: true, basicChallenge: true, failureLimit: clientFailureLimit } }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    const body = request.body ?? {}
    // step: parameters (a public client names itself; holding the token is what proves the right to revoke it)
    const token = param(body, 'token', 4096)
    if (!token) throw new OAuthError('invalid_request', 'token is required')
    const hint = param(body, 'token_type_hint')
    if (hint !== undefined && hint !== 'access_token' && hint !== 'refresh_token') throw new OAuthError('unsupported_token_type', `token_type_hint ${hint} is not supported`)
    // a named client must exist and prove itself as its metadata says (private_key_jwt for some)
    const clientId = (await requestingClient(app.tokenContext, request, body, false))?.clientId
    // step: revoke what the token is (the hint only orders the lookups)
    const order = hint === 'access_token' ? [revokeAccessToken, revokeRefreshToken] : [revokeRefreshToken, revokeAccessToken]
    let known = false
    for (const attempt of order) if ((known = await attempt(token, clientId))) break
    // an unknown token answers 200 (RFC 7009 §2.2) but is a guess all the same
    if (!known) request.countFailure()
    return reply.code(200).send()
  })
}
