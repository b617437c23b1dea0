/**
 * The one way the token service finds a client, used by /authorize, /consent, /token and /revoke:
 * a registered id is read from the store; an https URL (a Client ID Metadata Document) is resolved through
 * the CIMD cache and fetcher, recorded beside registered clients (so it is listed, counted and disabled
 * like them) and returned with the document's current metadata. Either way the caller gets the same
 * `Client` shape. A document that cannot be used throws CimdError; the caller turns it into its error.
 */
import type { Client, ClientStore } from '@uspl/core'
import type { CimdResolver } from './cimd/resolver.ts'

/** Whether `clientId` is meant as a URL (so it is resolved as a metadata document, or refused as one). */
export function isDocumentClientId (clientId: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(clientId)
}

export class ClientResolver {
  constructor (private readonly clients: ClientStore, private readonly cimd: CimdResolver) {}

  async find (clientId: string): Promise<Client | null> {
    if (!isDocumentClientId(clientId)) return this.clients.get(clientId)
    const { metadata, fetched } = await this.cimd.resolve(clientId)
    let record = fetched ? null : await this.clients.get(clientId)
    if (!record || record.kind !== 'metadata_document') {
      await this.clients.upsertDocumentClient(clientId, metadata)
      record = await this.clients.get(clientId)
      if (!record) return null
    }
    return { ...record, metadata }
  }

  /** Fetches a metadata-document client's document again now (operator refresh) and records it. */
  async refresh (clientId: string): Promise<Client | null> {
    const { metadata } = await this.cimd.refresh(clientId)
    await this.clients.upsertDocumentClient(clientId, metadata)
    const record = await this.clients.get(clientId)
    return record ? { ...record, metadata } : null
  }
}
