import type { RevocationResult } from '@uspl/core'

/** The answer of a client-wide or user-wide revocation. */
export function bulkResult (result: RevocationResult, sessionsClosed: number): {
  status: 'revoked' | 'noop', revoked_at: string | null, grants_revoked: number, sessions_closed: number, event_id: string | null
} {
  const revoked = result.status === 'revoked'
  return {
    status: revoked ? 'revoked' : 'noop',
    revoked_at: result.revokedAt === null ? null : new Date(result.revokedAt).toISOString(),
    grants_revoked: result.event?.grantIds.length ?? 0,
    sessions_closed: revoked ? sessionsClosed : 0,
    event_id: result.eventId
  }
}
