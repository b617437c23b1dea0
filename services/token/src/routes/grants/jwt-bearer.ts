/**
 * The jwt-bearer grant (RFC 7523 §2.1) carrying an ID-JAG: an enterprise IdP has already decided this user
 * may use this client here, so there is no browser step. Steps: parameters, client, assertion (lib/id-jag),
 * scope (the request may only narrow it), grant (marked `managed_by` the issuer), access token.
 * No refresh token is issued: the draft recommends against one so the IdP re-decides at every exchange
 * (the client gets a fresh ID-JAG when its access token expires); the grant itself revokes through the
 * one pipeline like any other.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { OAuthError } from '@uspl/errors'
import { presentedClientId } from '../../lib/client-auth.ts'
import { signAccessToken } from '../../lib/jwt.ts'
import { param, resourceMatches } from '../../lib/oauth.ts'
import { verifyIdJag } from '../../lib/id-jag.ts'

export interface AssertionTokenResponse {
  access_token: string
  token_type: 'Bearer'
  expires_in: number
  scope: string
}

export function jwtBearerGrant (app: FastifyInstance): (request: FastifyRequest, body: unknown) => Promise<AssertionTokenResponse> {
  const { clients, grants, accounts, keyRing, config } = app.tokenContext
  const deps = { redis: app.redis, issuers: app.enterprise.issuers, keys: app.enterprise.keys, accounts, config }

  return async function jwtBearer (request, body) {
    // step: parameters
    const clientId = presentedClientId(request, body) as string
    const assertion = param(body, 'assertion', 16384)
    if (!assertion) throw new OAuthError('invalid_request', 'assertion is required')
    const resource = param(body, 'resource')
    if (resource !== undefined && !resourceMatches(config.GATEWAY_RESOURCE_URL, resource)) throw new OAuthError('invalid_target', `resource must be ${config.GATEWAY_RESOURCE_URL}`)
    const requestedScope = param(body, 'scope', 1024)
    // step: client
    const client = await clients.get(clientId)
    if (!client) throw new OAuthError('invalid_client', 'unknown client (not registered, or its registration expired)', 401)
    if (client.disabledAt !== null) throw new OAuthError('invalid_client', 'an operator disabled this client', 401)
    // step: the assertion
    const verified = await verifyIdJag(deps, assertion, clientId, requestedScope)
    const scope = verified.scope
    // step: the grant, managed by the issuer, then the access token
    const grant = await grants.ensure({ userId: verified.user.id, clientId, scope, resource: config.GATEWAY_RESOURCE_URL, authTime: verified.authTime, ttlS: config.REFRESH_TOKEN_TTL_S, managedBy: verified.issuer.id })
    const { token } = await signAccessToken(keyRing, { issuer: config.ISSUER_URL, ttlS: config.ACCESS_TOKEN_TTL_S, userId: verified.user.id, resource: config.GATEWAY_RESOURCE_URL, clientId, scope, authTime: verified.authTime, grantId: grant.id })
    await clients.touch(clientId)
    request.log.info({ clientId, grantId: grant.id, grantType: 'jwt-bearer', issuer: verified.issuer.id }, 'tokens issued for an enterprise assertion')
    return { access_token: token, token_type: 'Bearer', expires_in: config.ACCESS_TOKEN_TTL_S, scope }
  }
}
