import type { Client } from '@uspl/core'

/** The client information response (RFC 7591 §3.2.1, RFC 7592 §3). */
export function clientInformation (client: Client, registrationUrl: string): Record<string, unknown> {
  return {
    client_id: client.clientId,
    client_id_issued_at: client.issuedAt,
    ...client.metadata,
    registration_client_uri: `${registrationUrl}/register/${client.clientId}`
  }
}
