/**
 * How a client is named to a person (consent page). A name comes from the client itself (its registration
 * or its metadata document), so it is untrusted text: controls that reorder or hide characters (bidi
 * overrides and isolates, zero-width characters) are removed and runs of spaces collapsed, so a name
 * cannot pad itself out or flip what follows it. For a metadata-document client the document's host is
 * what this server verified (it fetched the document from there over https): it is shown on its own,
 * apart from the name, so a name such as "Claude" on an unrelated host cannot pass for that host.
 */
import type { Client } from '@uspl/core'

// bidi embeddings/overrides/isolates, marks, zero-width and other invisible formatting characters
const INVISIBLE = /[\u200b-\u200f\u202a-\u202e\u2060-\u2069\u061c\ufeff\u00ad\u180e\u115f\u1160\u3164\uffa0]/g

export function safeDisplayName (name: string | undefined): string | null {
  if (!name) return null
  const clean = name.normalize('NFC').replace(INVISIBLE, '').replace(/[\p{Cc}\p{Zl}\p{Zp}]/gu, ' ').replace(/\s+/gu, ' ').trim()
  return clean.length > 0 ? clean.slice(0, 100) : null
}

/** The host a metadata-document client was verified at (its client_id URL's host), or null. */
export function documentHost (client: Client): string | null {
  if (client.kind !== 'metadata_document') return null
  try {
    return new URL(client.clientId).host
  } catch {
    return null
  }
}
