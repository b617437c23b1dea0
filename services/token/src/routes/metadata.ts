/**
 * Authorization server metadata (RFC 8414), also served as /.well-known/openid-configuration because some
 * clients only look there. When the issuer has a path, the path-inserted form is served too.
 */
import type { FastifyInstance } from 'fastify'
import { SUPPORTED_SCOPES } from '../lib/oauth.ts'
import { CLIENT_ASSERTION_ALGORITHMS } from '../lib/client-assertion.ts'
import { ID_JAG_PROFILE, JWT_BEARER } from '../lib/id-jag.ts'

export function metadataDocument (issuer: string, registrationUrl: string): Record<string, unknown> {
  return {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    registration_endpoint: `${registrationUrl}/register`,
    revocation_endpoint: `${issuer}/revoke`,
    introspection_endpoint: `${issuer}/introspect`,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    scopes_supported: [...SUPPORTED_SCOPES],
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code', 'refresh_token', JWT_BEARER],
    authorization_grant_profiles_supported: [ID_JAG_PROFILE],
    code_challenge_methods_supported: ['S256'],
    // none for registered and metadata-document clients; private_key_jwt for documents that publish keys
    token_endpoint_auth_methods_supported: ['none', 'private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGORITHMS],
    revocation_endpoint_auth_methods_supported: ['none', 'private_key_jwt'],
    revocation_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGORITHMS],
    client_id_metadata_document_supported: true,
    introspection_endpoint_auth_methods_supported: ['bearer'],
    authorization_response_iss_parameter_supported: true
  }
}

export default async function metadata (app: FastifyInstance): Promise<void> {
  const { config } = app.tokenContext
  const doc = metadataDocument(config.ISSUER_URL, config.REGISTRATION_URL)
  const issuerPath = new URL(config.ISSUER_URL).pathname.replace(/\/$/, '')
  const paths = ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']
  if (issuerPath) paths.push(`/.well-known/oauth-authorization-server${issuerPath}`, `${issuerPath}/.well-known/openid-configuration`)
  for (const url of paths) {
    app.get(url, { config: { public: true } }, async (_request, reply) => {
      reply.header('cache-control', `public, max-age=${config.JWKS_MAX_AGE_S}`)
      return doc
    })
  }
}
