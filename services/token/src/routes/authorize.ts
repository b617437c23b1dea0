/**
 * The authorization endpoint. Until the client and its redirect URI are known good, every problem is an
 * error page and never a redirect (an open redirector otherwise). A protocol error of a known client goes
 * back to its redirect URI (with `state` and `iss`, RFC 9207) only when the user is signed in: anyone may
 * register a client with any redirect URI, so before sign-in this host would otherwise bounce strangers
 * to it (RFC 9700 §4.11.2, OAuth 2.1 §7.12.2); such an error is an error page too. A valid request waits
 * for sign-in and consent under a random id; the browser goes to /consent.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { findRedirectUri, MAX_DOCUMENT_CLIENT_ID_LENGTH, type Client } from '@uspl/core'
import { OAuthError } from '@uspl/errors'
import { errorPage } from '../lib/html.ts'
import { authorizationResponseUrl, authorizationScope, CHALLENGE_RE, param, resourceMatches } from '../lib/oauth.ts'
import type { AuthRequest } from '../lib/codes.ts'
import { CimdError } from '../lib/cimd/errors.ts'

/** A problem the user must see here, because the client cannot be trusted to receive it. */
class NoRedirectError extends Error {
  constructor (readonly title: string, message: string, readonly status = 400) { super(message) }
}

export default async function authorize (app: FastifyInstance): Promise<void> {
  const { resolveClient, authRequests, config } = app.tokenContext

  async function findClient (request: FastifyRequest, input: unknown): Promise<Client> {
    const clientId = param(input, 'client_id', MAX_DOCUMENT_CLIENT_ID_LENGTH)
    if (!clientId) throw new NoRedirectError('Missing client', 'The request does not say which application is asking (client_id is missing).')
    let client: Client | null
    try {
      client = await resolveClient.find(clientId)
    } catch (err) {
      // a metadata document that cannot be used: its redirect URIs are unverified, so never redirect
      if (!(err instanceof CimdError)) throw err
      request.log.info({ clientId, problem: err.problem }, 'client metadata document refused')
      throw new NoRedirectError('Application could not be verified', `This application identifies itself by ${clientId}, but its metadata document could not be used: ${err.message}.`, err.problem === 'rate_limited' ? 429 : 400)
    }
    if (!client) throw new NoRedirectError('Unknown application', 'This application is not registered here (unknown client_id), or its registration expired. Try connecting again from the application.')
    if (client.disabledAt !== null) throw new NoRedirectError('Application disabled', 'An operator disabled this application, so it cannot be authorized.', 403)
    return client
  }

  function matchRedirectUri (client: Client, input: unknown): string {
    const given = param(input, 'redirect_uri', 2000)
    if (!given) {
      if (client.metadata.redirect_uris.length === 1) return client.metadata.redirect_uris[0]
      throw new NoRedirectError('Missing redirect URI', 'The request does not say where to return (redirect_uri is missing) and the application registered several.')
    }
    if (!findRedirectUri(client.metadata.redirect_uris, given)) throw new NoRedirectError('Redirect URI not registered', 'The address this request would return to is not one the application registered, so this server will not send you there.')
    return given
  }

  function validateRequest (client: Client, redirectUri: string, input: unknown): AuthRequest {
    const responseType = param(input, 'response_type')
    if (responseType !== 'code') throw new OAuthError('unsupported_response_type', 'response_type must be code')
    const challenge = param(input, 'code_challenge', 128)
    const method = param(input, 'code_challenge_method')
    if (!challenge) throw new OAuthError('invalid_request', 'PKCE is required: send code_challenge with code_challenge_method=S256')
    if (method !== 'S256') throw new OAuthError('invalid_request', 'code_challenge_method must be S256 (plain is not supported)')
    if (!CHALLENGE_RE.test(challenge)) throw new OAuthError('invalid_request', 'code_challenge must be the base64url SHA-256 of the verifier (43 characters)')
    const resource = param(input, 'resource') ?? config.GATEWAY_RESOURCE_URL
    if (!resourceMatches(config.GATEWAY_RESOURCE_URL, resource)) throw new OAuthError('invalid_target', `resource must be ${config.GATEWAY_RESOURCE_URL}`)
    return {
      clientId: client.clientId,
      redirectUri,
      state: param(input, 'state', 1024) ?? null,
      codeChallenge: challenge,
      scope: authorizationScope(param(input, 'scope', 1024)),
      resource: config.GATEWAY_RESOURCE_URL,
      createdAt: Date.now()
    }
  }

  async function handler (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const input = request.method === 'POST' ? request.body : request.query
    reply.header('cache-control', 'no-store')
    let client: Client
    let redirectUri: string
    try {
      client = await findClient(request, input)
      redirectUri = matchRedirectUri(client, input)
    } catch (err) {
      if (err instanceof NoRedirectError) return errorPage(reply, err.status, err.title, err.message)
      if (err instanceof OAuthError) return errorPage(reply, 400, 'Invalid request', err.message)
      throw err
    }
    let authRequest: AuthRequest
    try {
      authRequest = validateRequest(client, redirectUri, input)
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err
      // step: no redirect to an unauthenticated client's URI before a user signed in
      if (!await app.tokenContext.session(request)) return errorPage(reply, 400, 'Invalid request', `${err.message} (${err.error})`)
      const state = typeof (input as Record<string, unknown>)?.state === 'string' ? (input as Record<string, string>).state : null
      return reply.redirect(authorizationResponseUrl(redirectUri, { error: err.error, error_description: err.message, state, iss: config.ISSUER_URL }), 303)
    }
    const id = await authRequests.create(authRequest)
    return reply.redirect(`/consent?request=${encodeURIComponent(id)}`, 303)
  }

  const options = { config: { public: true, cors: false as const } }
  app.get('/authorize', options, handler)
  app.post('/authorize', options, handler)
}
