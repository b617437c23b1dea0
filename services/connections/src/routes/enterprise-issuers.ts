/**
 * Operators: the trusted enterprise issuers (the company IdPs whose ID-JAGs the token endpoint accepts and
 * whose Shared Signals the receiver acts on). The same store and validation as the CLI's commands.
 * `poll_authorization` (the `Authorization` value the token service's poller sends to `poll_url`) is
 * write-only: responses say only `poll_authorization_set`.
 * GET    /v1/enterprise-issuers               list
 * PUT    /v1/enterprise-issuers               add or replace one (by `issuer`)
 * DELETE /v1/enterprise-issuers/:issuerId     stop trusting it (its managed grants stay until revoked)
 * POST   /v1/enterprise-issuers/:issuerId/revoke  revoke every grant it manages, through the one pipeline
 */
import type { FastifyInstance } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { ApiError } from '@uspl/errors'
import { EnterpriseIssuerStore, publicEnterpriseIssuer, type EnterpriseIssuer, type Grant } from '@uspl/core'
import { actorOf, principalOf } from '../auth.ts'
import { activeGrantsPage } from '../connections.ts'
import { errors, operatorOnly } from '../schemas.ts'

const SubjectMapping = Type.Union([Type.Literal('email'), Type.Literal('sub')], { description: "how the IdP's subject maps to a user: its `email` claim, or its `sub` linked beforehand" })

const IssuerBody = Type.Object({
  issuer: Type.String({ description: 'the IdP issuer URL, exactly as its assertions carry it in `iss`' }),
  name: Type.Optional(Type.String({ maxLength: 200 })),
  jwks_uri: Type.Optional(Type.String({ description: "the IdP's JWKS URL; its origin must be listed in the token service's ENTERPRISE_JWKS_ORIGINS" })),
  jwks: Type.Optional(Type.Object({ keys: Type.Array(Type.Object({}, { additionalProperties: true })) }, { description: 'an inline public JWK set instead of jwks_uri' })),
  domains: Type.Array(Type.String(), { minItems: 1, description: 'email domains the issuer governs' }),
  tenant: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  subject: Type.Optional(SubjectMapping),
  poll_url: Type.Optional(Type.Union([Type.String({ maxLength: 2048 }), Type.Null()], { description: "the IdP's RFC 8936 poll endpoint (its stream's delivery.endpoint_url), https; polled by the token service only when its origin is listed in ENTERPRISE_JWKS_ORIGINS" })),
  poll_authorization: Type.Optional(Type.Union([Type.String({ maxLength: 4096 }), Type.Null()], { description: 'the Authorization header value sent with each poll; write-only (responses show poll_authorization_set)' }))
})

const IssuerView = Type.Object({
  id: Type.String(),
  issuer: Type.String(),
  name: Type.String(),
  jwks_uri: Type.Union([Type.String(), Type.Null()]),
  inline_jwks_kids: Type.Union([Type.Array(Type.String()), Type.Null()]),
  domains: Type.Array(Type.String()),
  tenant: Type.Union([Type.String(), Type.Null()]),
  subject: SubjectMapping,
  poll_url: Type.Union([Type.String(), Type.Null()]),
  poll_authorization_set: Type.Boolean({ description: 'whether a poll_authorization is stored (it is never returned)' }),
  created_at: Type.String({ format: 'date-time' })
})

const IssuerParams = Type.Object({ issuerId: Type.String({ pattern: '^ent_[A-Za-z0-9_-]{1,64}$' }) })

function view (issuer: EnterpriseIssuer): Static<typeof IssuerView> {
  const i = publicEnterpriseIssuer(issuer)
  return {
    id: i.id,
    issuer: i.issuer,
    name: i.name,
    jwks_uri: i.jwksUri,
    inline_jwks_kids: i.jwks ? i.jwks.keys.map((k) => k.kid ?? '') : null,
    domains: i.domains,
    tenant: i.tenant,
    subject: i.subject,
    poll_url: i.pollUrl,
    poll_authorization_set: i.pollAuthorizationSet,
    created_at: new Date(i.createdAt).toISOString()
  }
}

export default async function enterpriseIssuerRoutes (app: FastifyInstance): Promise<void> {
  const store = new EnterpriseIssuerStore(app.redis)

  app.get('/v1/enterprise-issuers', {
    config: { auth: 'operator', failureLimit: {} },
    schema: { tags: ['operators'], summary: 'List trusted enterprise issuers', security: operatorOnly, response: { 200: Type.Object({ items: Type.Array(IssuerView) }), ...errors(401, 403) } }
  }, async () => ({ items: (await store.list()).map(view) }))

  app.put<{ Body: Static<typeof IssuerBody> }>('/v1/enterprise-issuers', {
    config: { auth: 'operator', failureLimit: {} },
    schema: { tags: ['operators'], summary: 'Trust an enterprise issuer (or replace its configuration)', security: operatorOnly, body: IssuerBody, response: { 200: IssuerView, ...errors(400, 401, 403) } }
  }, async (request) => {
    const b = request.body
    try {
      return view(await store.put({ issuer: b.issuer, name: b.name, jwksUri: b.jwks_uri ?? null, jwks: b.jwks, domains: b.domains, tenant: b.tenant ?? null, subject: b.subject, pollUrl: b.poll_url ?? null, pollAuthorization: b.poll_authorization ?? null }))
    } catch (err) {
      throw new ApiError('invalid_request', (err as Error).message, 400)
    }
  })

  app.delete<{ Params: Static<typeof IssuerParams> }>('/v1/enterprise-issuers/:issuerId', {
    config: { auth: 'operator', failureLimit: {} },
    schema: { tags: ['operators'], summary: 'Stop trusting an enterprise issuer', description: 'New assertions from it are refused at once; grants it manages stay until revoked (POST …/revoke).', security: operatorOnly, params: IssuerParams, response: { 204: Type.Null(), ...errors(401, 403, 404) } }
  }, async (request, reply) => {
    if (!await store.remove(request.params.issuerId)) throw new ApiError('not_found', 'no such enterprise issuer', 404)
    return reply.code(204).send()
  })

  app.post<{ Params: Static<typeof IssuerParams> }>('/v1/enterprise-issuers/:issuerId/revoke', {
    config: { auth: 'operator', failureLimit: {} },
    schema: {
      tags: ['operators'],
      summary: 'Revoke every grant an enterprise issuer manages',
      security: operatorOnly,
      params: IssuerParams,
      response: { 200: Type.Object({ issuer_id: Type.String(), revoked_grants: Type.Integer() }), ...errors(401, 403, 404) }
    }
  }, async (request) => {
    const who = principalOf(request)
    const { issuerId } = request.params
    // every active grant this issuer manages: walked page by page (an operator action, not a hot path)
    const grants: Grant[] = []
    let cursor: string | undefined
    do {
      const page = await activeGrantsPage(app, cursor, 500)
      grants.push(...page.grants.filter((g) => g.managedBy === issuerId))
      cursor = page.nextCursor ?? undefined
    } while (cursor !== undefined)
    if (grants.length === 0 && !await store.find(issuerId)) throw new ApiError('not_found', 'no such enterprise issuer', 404)
    let revoked = 0
    for (const g of grants) {
      const result = await app.connectionsContext.revoker.revokeGrant(g.id, { path: 'connections_operator', actor: actorOf(who) })
      if (result.status === 'revoked') revoked++
    }
    return { issuer_id: issuerId, revoked_grants: revoked }
  })
}
