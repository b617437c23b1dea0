/**
 * API keys:
 *   GET  /v1/api-keys                 a signed-in user's own personal keys; operators see every key (or one user's)
 *   POST /v1/api-keys                 a signed-in user creates a personal key (name, optional expiry); shown once
 *   POST /v1/api-keys/:keyId/revoke   revoke one; a user only their own, confirmed by typing its name
 * Creating and revoking are records in the revocation audit trail (ApiKeyStore writes them with the change).
 */
import type { FastifyInstance } from 'fastify'
import type { Static } from '@sinclair/typebox'
import { ApiError } from '@uspl/errors'
import { ApiKeyError, type ApiKey } from '@uspl/core'
import { principalOf, actorOf } from '../auth.ts'
import {
  ApiKeyList, ApiKeyParams, ApiKeyQuery, CreateApiKeyBody, CreatedApiKey, RevokeApiKeyBody, RevokeApiKeyResult,
  errors, userOrOperator
} from '../schemas.ts'

const iso = (ms: number | null): string | null => ms === null ? null : new Date(ms).toISOString()

export function apiKeyInfo (k: ApiKey): Static<typeof ApiKeyList>['items'][number] {
  return { id: k.id, name: k.name, kind: k.kind, user_id: k.userId, created_at: new Date(k.createdAt).toISOString(), last_used_at: iso(k.lastUsedAt), expires_at: iso(k.expiresAt) }
}

export default async function apiKeyRoutes (app: FastifyInstance): Promise<void> {
  const store = app.connectionsContext.apiKeys

  app.get<{ Querystring: Static<typeof ApiKeyQuery> }>('/v1/api-keys', {
    config: { auth: 'either', failureLimit: {} },
    schema: {
      tags: ['connections'],
      summary: 'List API keys',
      description: 'A signed-in user sees their own personal keys; an operator sees every key, operator and personal, optionally one user\'s. Never the keys themselves.',
      security: userOrOperator,
      querystring: ApiKeyQuery,
      response: { 200: ApiKeyList, ...errors(400, 401, 403) }
    }
  }, async (request) => {
    const who = principalOf(request)
    const userId = who.type === 'user' ? who.userId : request.query.user_id
    return { items: (await store.list(userId !== undefined ? { userId } : {})).map(apiKeyInfo) }
  })

  app.post<{ Body: Static<typeof CreateApiKeyBody> }>('/v1/api-keys', {
    config: { auth: 'user', failureLimit: {} },
    schema: {
      tags: ['connections'],
      summary: 'Create a personal API key',
      description: 'A key for the workspace API that acts as you, with your roles. The key is in this answer only; it is stored hashed.',
      security: [{ userSession: [] }],
      body: CreateApiKeyBody,
      response: { 201: CreatedApiKey, ...errors(400, 401, 403) }
    }
  }, async (request, reply) => {
    const who = principalOf(request)
    if (who.type !== 'user') throw new Error('unreachable: auth "user" admits users only')
    const expiresAt = request.body.expires_at ? Date.parse(request.body.expires_at) : null
    try {
      const { key, apiKey } = await store.create(request.body.name, { userId: who.userId, expiresAt, actor: actorOf(who) })
      request.log.info({ keyId: apiKey.id }, 'personal API key created')
      reply.code(201)
      return { ...apiKeyInfo(apiKey), key }
    } catch (err) {
      if (err instanceof ApiKeyError) throw new ApiError('invalid_request', err.message, 400)
      throw err
    }
  })

  app.post<{ Params: Static<typeof ApiKeyParams>, Body: Static<typeof RevokeApiKeyBody> }>('/v1/api-keys/:keyId/revoke', {
    config: { auth: 'either', failureLimit: {} },
    schema: {
      tags: ['connections'],
      summary: 'Revoke an API key',
      description: 'The next request with the key answers 401, on every replica. A user revokes only their own keys and must repeat the key\'s name in `confirm`; an operator revokes any key.',
      security: userOrOperator,
      params: ApiKeyParams,
      body: RevokeApiKeyBody,
      response: { 200: RevokeApiKeyResult, ...errors(400, 401, 403, 404) }
    }
  }, async (request) => {
    const who = principalOf(request)
    const notFound = new ApiError('not_found', 'no such API key', 404)
    const key = await store.get(request.params.keyId)
    if (!key || (who.type === 'user' && key.userId !== who.userId)) throw notFound
    const confirm = request.body?.confirm
    if (who.type === 'user' && confirm?.trim() !== key.name) {
      throw new ApiError('confirmation_mismatch', "confirm must be the key's name exactly as listed", 400)
    }
    const revoked = await store.revoke(key.id, { actor: actorOf(who), ownerId: who.type === 'user' ? who.userId : undefined })
    if (!revoked) throw notFound
    request.log.info({ keyId: key.id }, 'API key revoked')
    return { id: key.id, status: 'revoked' as const }
  })
}
