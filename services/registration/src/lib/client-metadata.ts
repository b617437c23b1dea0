/**
 * RFC 7591 client metadata, validated for public clients. Each refusal names the field (and for redirect
 * URIs, the URI) and why. What the server decides differently from the request (auth method `none`,
 * both grant types) is what the response reports (RFC 7591 §3.2.1). Every string a person reads
 * (name, scope, software id and version, contacts) is refused when it holds control, bidirectional or
 * invisible characters, so a name cannot spoof another or be impossible to type back.
 */
import { displayTextProblem, redirectUriProblem, type ClientMetadata } from '@uspl/core'
import { RegistrationError } from '@uspl/errors'

export const LIMITS = { redirectUris: 20, uri: 2000, name: 200, scope: 1000, contacts: 10, contact: 254, softwareField: 200 }

const SUPPORTED_GRANTS = ['authorization_code', 'refresh_token']
const SECRET_METHODS = ['none', 'client_secret_post', 'client_secret_basic', 'client_secret_jwt', 'private_key_jwt']

const invalid = (description: string): RegistrationError => new RegistrationError('invalid_client_metadata', description)

function optionalString (body: Record<string, unknown>, field: string, max: number): string | undefined {
  const v = body[field]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') throw invalid(`${field} must be a string`)
  if (v.length > max) throw invalid(`${field} is longer than ${max} characters`)
  const problem = displayTextProblem(v)
  if (problem) throw invalid(`${field} ${problem}`)
  return v.length > 0 ? v : undefined
}

function optionalWebUri (body: Record<string, unknown>, field: string): string | undefined {
  const v = optionalString(body, field, LIMITS.uri)
  if (v === undefined) return undefined
  let url: URL
  try {
    url = new URL(v)
  } catch {
    throw invalid(`${field} ${JSON.stringify(v)} is not a valid URL`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalid(`${field} ${JSON.stringify(v)} must be an http or https URL`)
  return v
}

function stringArray (body: Record<string, unknown>, field: string): string[] | undefined {
  const v = body[field]
  if (v === undefined || v === null) return undefined
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw invalid(`${field} must be an array of strings`)
  for (const x of v as string[]) {
    const problem = displayTextProblem(x)
    if (problem) throw invalid(`${field} entry ${problem}`)
  }
  return v as string[]
}

function redirectUris (body: Record<string, unknown>): string[] {
  const v = body.redirect_uris
  if (v === undefined || v === null) throw new RegistrationError('invalid_redirect_uri', 'redirect_uris is required: list at least one redirect URI')
  if (!Array.isArray(v)) throw new RegistrationError('invalid_redirect_uri', 'redirect_uris must be an array of URIs')
  if (v.length === 0) throw new RegistrationError('invalid_redirect_uri', 'redirect_uris is empty: list at least one redirect URI')
  if (v.length > LIMITS.redirectUris) throw new RegistrationError('invalid_redirect_uri', `redirect_uris lists more than ${LIMITS.redirectUris} URIs`)
  for (const uri of v) {
    const problem = redirectUriProblem(uri)
    if (problem) {
      const shown = typeof uri === 'string' ? JSON.stringify(uri.length > 200 ? uri.slice(0, 200) + '…' : uri) : String(uri)
      throw new RegistrationError('invalid_redirect_uri', `redirect URI ${shown} ${problem}`)
    }
  }
  return [...new Set(v as string[])]
}

export function validateClientMetadata (input: unknown): ClientMetadata {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw invalid('the body must be a JSON object of client metadata')
  const body = input as Record<string, unknown>
  const uris = redirectUris(body)

  const method = optionalString(body, 'token_endpoint_auth_method', 64)
  if (method !== undefined && !SECRET_METHODS.includes(method)) throw invalid(`token_endpoint_auth_method ${method} is not supported; this server registers public clients (none)`)

  const grantTypes = stringArray(body, 'grant_types')
  if (grantTypes) {
    const unsupported = grantTypes.filter((g) => !SUPPORTED_GRANTS.includes(g))
    if (unsupported.length > 0) throw invalid(`grant_types ${unsupported.join(', ')} not supported (authorization_code, refresh_token)`)
  }
  const responseTypes = stringArray(body, 'response_types')
  if (responseTypes && responseTypes.some((r) => r !== 'code')) throw invalid('response_types must be ["code"]')

  const scope = optionalString(body, 'scope', LIMITS.scope)
  const contacts = stringArray(body, 'contacts')
  if (contacts && (contacts.length > LIMITS.contacts || contacts.some((c) => c.length > LIMITS.contact))) throw invalid(`contacts lists at most ${LIMITS.contacts} addresses of at most ${LIMITS.contact} characters`)

  const metadata: ClientMetadata = {
    redirect_uris: uris,
    token_endpoint_auth_method: 'none',
    grant_types: [...SUPPORTED_GRANTS],
    response_types: ['code']
  }
  const clientName = optionalString(body, 'client_name', LIMITS.name)
  if (clientName !== undefined) metadata.client_name = clientName
  for (const field of ['client_uri', 'logo_uri', 'tos_uri', 'policy_uri'] as const) {
    const v = optionalWebUri(body, field)
    if (v !== undefined) metadata[field] = v
  }
  if (scope !== undefined) metadata.scope = scope
  if (contacts && contacts.length > 0) metadata.contacts = contacts
  const softwareId = optionalString(body, 'software_id', LIMITS.softwareField)
  if (softwareId !== undefined) metadata.software_id = softwareId
  const softwareVersion = optionalString(body, 'software_version', LIMITS.softwareField)
  if (softwareVersion !== undefined) metadata.software_version = softwareVersion
  return metadata
}
