/**
 * Client configuration endpoint (RFC 7592): read and delete, authenticated by the registration access
 * token (Bearer, compared in constant time against its stored hash). An unknown client and a wrong
 * token answer the same 401. Delete revokes every grant of the client through the revocation module
 * (disabling the client, so no token of it passes the gateway), then removes it.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { RegistrationError, bearerChallenge } from '@uspl/errors'
import { clientInformation } from '../lib/client-response.ts'

interface Params { clientId: string }

export default async function clientConfiguration (app: FastifyInstance): Promise<void> {
  const { clients, revoker, config } = app.registrationContext

  async function authenticate (request: FastifyRequest<{ Params: Params }>): Promise<string> {
    const header = request.headers.authorization
    const token = typeof header === 'string' && /^bearer /i.test(header) ? header.slice(7).trim() : ''
    const { clientId } = request.params
    if (!token || token.length > 256 || !await clients.verifyRegistrationToken(clientId, token)) {
      throw new RegistrationError('invalid_token', 'the registration access token is missing or invalid for this client', 401, { challenge: bearerChallenge({ error: 'invalid_token' }) })
    }
    return clientId
  }

  // a wrong registration access token counts against the address and the client it names
  const options = { config: { public: true, failureLimit: { client: (request: FastifyRequest) => (request.params as Params).clientId } } }

  app.get<{ Params: Params }>('/register/:clientId', options, async (request, reply) => {
    const clientId = await authenticate(request)
    const client = await clients.get(clientId)
    if (!client) throw new RegistrationError('invalid_token', 'the client no longer exists', 401)
    reply.header('cache-control', 'no-store')
    return clientInformation(client, config.REGISTRATION_URL)
  })

  app.delete<{ Params: Params }>('/register/:clientId', options, async (request, reply) => {
    const clientId = await authenticate(request)
    // step: revoke every grant (and disable, so outstanding tokens die at the gateway at once)
    await revoker.revokeClient(clientId, { path: 'client_delete', disable: true, actor: { type: 'client', id: clientId } })
    // step: remove the registration
    await clients.remove(clientId)
    request.log.info({ clientId }, 'client deleted')
    return reply.code(204).send()
  })
}
