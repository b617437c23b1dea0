/**
 * Token introspection (RFC 7662) for resource servers that do not verify JWTs themselves. Callers
 * authenticate with an operator API key (`Authorization: Bearer uspl_…`). A token is active only when it
 * is ours, unexpired, and neither it, its grant nor its client is on the denylist.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { nowSeconds } from '@uspl/core'
import { OAuthError, bearerChallenge } from '@uspl/errors'
import { readAccessToken } from '../lib/jwt.ts'
import { param } from '../lib/oauth.ts'

export default async function introspect (app: FastifyInstance): Promise<void> {
  const { apiKeys, refreshTokens, grants, clients, denylist, keyRing, config } = app.tokenContext
  const inactive = { active: false }

  async function authenticate (request: FastifyRequest): Promise<void> {
    const header = request.headers.authorization
    const key = typeof header === 'string' && /^bearer /i.test(header) ? header.slice(7).trim() : ''
    const apiKey = key ? await apiKeys.verify(key) : null
    if (!apiKey) throw new OAuthError('invalid_client', 'introspection needs an operator API key: Authorization: Bearer uspl_…', 401, { challenge: bearerChallenge({ realm: 'introspect' }) })
  }

  async function accessToken (token: string): Promise<Record<string, unknown> | null> {
    const claims = await readAccessToken(keyRing, token, config.ISSUER_URL)
    if (!claims) return null
    if (claims.exp <= nowSeconds()) return inactive
    const denied = await denylist.check({ grantId: claims.grant_id, clientId: claims.client_id, jti: claims.jti, iat: claims.iat })
    if (denied) return inactive
    return { active: true, token_type: 'Bearer', scope: claims.scope, client_id: claims.client_id, sub: claims.sub, aud: claims.aud, iss: claims.iss, exp: claims.exp, iat: claims.iat, jti: claims.jti, auth_time: claims.auth_time, grant_id: claims.grant_id }
  }

  async function refreshToken (token: string): Promise<Record<string, unknown> | null> {
    const record = await refreshTokens.get(token)
    if (!record) return null
    if (record.rotatedAt !== null && Date.now() - record.rotatedAt >= config.REFRESH_REUSE_GRACE_S * 1000) return inactive
    const [grant, client] = await Promise.all([grants.get(record.grantId), clients.get(record.clientId)])
    if (!grant || grant.revokedAt !== null || !client || client.disabledAt !== null) return inactive
    return { active: true, token_type: 'refresh_token', scope: record.scope, client_id: record.clientId, sub: record.userId, aud: record.resource, iss: config.ISSUER_URL, iat: Math.floor(record.issuedAt / 1000), grant_id: record.grantId }
  }

  app.post('/introspect', { config: { public: true, cors: false as const, failureLimit: {} } }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    // step: the caller is an operator
    await authenticate(request)
    // step: parameters
    const body = request.body ?? {}
    const token = param(body, 'token', 4096)
    if (!token) throw new OAuthError('invalid_request', 'token is required')
    const hint = param(body, 'token_type_hint')
    // step: what the token is, and whether it is live
    const order = hint === 'refresh_token' ? [refreshToken, accessToken] : [accessToken, refreshToken]
    for (const attempt of order) {
      const answer = await attempt(token)
      if (answer) return answer
    }
    return inactive
  })
}
