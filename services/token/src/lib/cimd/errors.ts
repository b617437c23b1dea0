/**
 * Why a Client ID Metadata Document could not be used. `code` is stable (tests and logs match on it); the
 * message says what was wrong in words a user or the client's developer can act on, and never echoes
 * what the document's server sent beyond its status.
 */
export type CimdProblem =
  | 'invalid_url' // not an https URL with a path, or otherwise not a valid client_id URL
  | 'host_not_allowed' // resolves to (or connected to) a loopback, private, link-local, ... address
  | 'dns' // the host name does not resolve
  | 'rate_limited' // too many fetches to this host in the window
  | 'connection' // TLS or TCP failure
  | 'timeout' // the whole fetch took longer than allowed
  | 'redirect' // a 3xx answer (redirects are never followed)
  | 'http_status' // any other non-200 answer
  | 'too_large' // the body is larger than allowed
  | 'not_json' // wrong content type, or not a JSON object
  | 'client_id_mismatch' // the document names another client_id
  | 'invalid_document' // required fields missing, or a field invalid
  | 'secret_requested' // the document asks for a shared-secret authentication method

export class CimdError extends Error {
  constructor (readonly problem: CimdProblem, message: string) {
    super(message)
    this.name = 'CimdError'
  }
}
