/**
 * Public clients identify themselves with `client_id` (no secret exists). Clients that believe they hold a
 * secret send HTTP Basic; the id is read from it and the secret ignored.
 */
import type { FastifyRequest } from 'fastify'
import { OAuthError } from '@uspl/errors'
import { MAX_DOCUMENT_CLIENT_ID_LENGTH } from '@uspl/core'
import { param } from './oauth.ts'

/** The failure-limit route config of endpoints where the client names itself in the body or Basic. */
export const clientFailureLimit = { client: (request: FastifyRequest) => presentedClientId(request, request.body, false), clientInBody: true }

export function presentedClientId (request: FastifyRequest, body: unknown, required = true): string | undefined {
  const fromBody = param(body, 'client_id', MAX_DOCUMENT_CLIENT_ID_LENGTH)
  const header = request.headers.authorization
  let fromBasic: string | undefined
  if (typeof header === 'string' && /^basic /i.test(header)) {
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString()
    const colon = decoded.indexOf(':')
    try {
      fromBasic = decodeURIComponent(colon === -1 ? decoded : decoded.slice(0, colon)) || undefined
    } catch {
      throw new OAuthError('invalid_client', 'malformed Basic credentials', 401)
    }
  }
  if (fromBody && fromBasic && fromBody !== fromBasic) throw new OAuthError('invalid_request', 'client_id differs between the body and the Authorization header')
  const clientId = fromBody ?? fromBasic
  if (!clientId && required) throw new OAuthError('invalid_client', 'client_id is required (this server has public clients only)', 401)
  return clientId
}
