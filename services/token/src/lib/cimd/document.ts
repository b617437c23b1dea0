/**
 * Validation of a Client ID Metadata Document (draft-ietf-oauth-client-id-metadata-document) into the
 * client metadata the rest of the service uses for any client. Steps:
 * 1. `client_id` equals the URL it was fetched from, exactly (no normalisation);
 * 2. `client_name` and `redirect_uris` present; each redirect URI follows the same rules as a registered
 *    client's (shared/core redirect-uris.ts, including loopback http with any port at authorization time);
 * 3. authentication: `none` (the default) or `private_key_jwt` with `jwks` or an https `jwks_uri`;
 *    anything needing a shared secret (`client_secret_*`, or a `client_secret` in the document) is refused,
 *    as is any other method;
 * 4. the display fields kept are strings of bounded length (`client_uri`, `logo_uri`, `policy_uri`, `tos_uri`
 *    only as https URLs); every other field is ignored.
 */
import { redirectUriProblem, type ClientMetadata } from '@uspl/core'
import { CimdError } from './errors.ts'
import { documentUrlProblem } from './fetch.ts'

const MAX_REDIRECT_URIS = 20
const MAX_NAME = 200
const SECRET_METHODS = /^client_secret_/

function optionalString (doc: Record<string, unknown>, name: string, max: number): string | undefined {
  const v = doc[name]
  return typeof v === 'string' && v.length > 0 && v.length <= max ? v : undefined
}

function optionalHttps (doc: Record<string, unknown>, name: string): string | undefined {
  const v = optionalString(doc, name, 2000)
  if (!v) return undefined
  try {
    return new URL(v).protocol === 'https:' ? v : undefined
  } catch {
    return undefined
  }
}

function invalid (message: string): CimdError {
  return new CimdError('invalid_document', message)
}

/** The JWK set of a `jwks` member: public keys only (a private member means the document leaks a key). */
export function publicJwks (value: unknown): { keys: Array<Record<string, unknown>> } {
  const keys = (value as { keys?: unknown } | null)?.keys
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > 10) throw invalid('jwks must be a JWK set with 1 to 10 keys')
  for (const k of keys) {
    if (typeof k !== 'object' || k === null || typeof (k as Record<string, unknown>).kty !== 'string') throw invalid('every key in jwks needs a kty')
    if ('d' in k || 'p' in k || 'k' in k) throw invalid('jwks must hold public keys only')
  }
  return { keys: keys as Array<Record<string, unknown>> }
}

export function validateDocument (url: string, doc: Record<string, unknown>): ClientMetadata {
  // step 1: the document is about this URL
  if (doc.client_id !== url) throw new CimdError('client_id_mismatch', 'the document\'s client_id is not exactly the URL it was fetched from')
  // step 2: required fields and redirect URIs
  const name = doc.client_name
  if (typeof name !== 'string' || name.trim().length === 0) throw invalid('client_name is required')
  if (name.length > MAX_NAME) throw invalid(`client_name is longer than ${MAX_NAME} characters`)
  const uris = doc.redirect_uris
  if (!Array.isArray(uris) || uris.length === 0) throw invalid('redirect_uris is required (a non-empty array)')
  if (uris.length > MAX_REDIRECT_URIS) throw invalid(`redirect_uris has more than ${MAX_REDIRECT_URIS} entries`)
  for (const u of uris) {
    const problem = redirectUriProblem(u)
    if (problem) throw invalid(`redirect URI ${typeof u === 'string' ? u.slice(0, 200) : String(u)} ${problem}`)
  }
  // step 3: how it authenticates at the token endpoint
  const method = doc.token_endpoint_auth_method ?? 'none'
  if (typeof method !== 'string') throw invalid('token_endpoint_auth_method must be a string')
  if (SECRET_METHODS.test(method) || doc.client_secret !== undefined) {
    throw new CimdError('secret_requested', 'the document asks for a client secret; a client identified by a metadata document cannot have one (use none or private_key_jwt)')
  }
  const metadata: ClientMetadata = {
    redirect_uris: uris as string[],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    client_name: name
  }
  if (method === 'private_key_jwt') {
    metadata.token_endpoint_auth_method = 'private_key_jwt'
    if (doc.jwks !== undefined) metadata.jwks = publicJwks(doc.jwks)
    else if (typeof doc.jwks_uri === 'string') {
      const problem = documentUrlProblem(doc.jwks_uri)
      if (problem) throw invalid(`jwks_uri ${problem}`)
      metadata.jwks_uri = doc.jwks_uri
    } else throw invalid('private_key_jwt needs jwks or jwks_uri')
  } else if (method !== 'none') {
    throw invalid(`token_endpoint_auth_method ${method.slice(0, 50)} is not supported (none, private_key_jwt)`)
  }
  // step 4: display fields (everything else is ignored)
  const grantTypes = Array.isArray(doc.grant_types) ? doc.grant_types.filter((g) => g === 'authorization_code' || g === 'refresh_token') : []
  if (grantTypes.length > 0) metadata.grant_types = grantTypes as string[]
  for (const field of ['client_uri', 'logo_uri', 'policy_uri', 'tos_uri'] as const) {
    const v = optionalHttps(doc, field)
    if (v) metadata[field] = v
  }
  const scope = optionalString(doc, 'scope', 1000)
  if (scope) metadata.scope = scope
  for (const field of ['software_id', 'software_version'] as const) {
    const v = optionalString(doc, field, 200)
    if (v) metadata[field] = v
  }
  return metadata
}
