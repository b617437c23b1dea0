/**
 * What every tool needs: the caller (from the verified token the SDK hands over as authInfo) and the
 * workspace service of shared/core, which holds the role rules for both doors (these tools and the REST
 * API). A refusal, a missing item or a bad argument (a WorkspaceError) is a tool result with isError and
 * the service's sentence.
 */
import { randomUUID } from 'node:crypto'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { isRedisUnavailable } from '@uspl/errors'
import type { Caller } from './host.ts'
import { z } from 'zod'
import { MAX_PAGE, WorkspaceError, type AccountStore, type WorkspaceRepository } from '@uspl/core'

export interface ToolDeps {
  accounts: AccountStore
  repo: WorkspaceRepository
  /** where unexpected tool failures are logged (their details never reach the client) */
  log?: { error: (obj: object, msg: string) => void }
}

/** The user the request's token names; the gateway always passes it (see routes/mcp.ts). */
export function callerOf (extra: Caller): string {
  const userId = extra.authInfo?.extra?.userId
  if (typeof userId !== 'string') throw new WorkspaceError('invalid', 'this request carries no user; reconnect and sign in again')
  return userId
}

export function ok (text: string, data: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: `${text}\n${JSON.stringify(data, null, 2)}` }], structuredContent: data }
}

export function refusal (message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true }
}

/**
 * Runs a tool body. Refusals become isError results with their message; anything unexpected is logged
 * here and answered with a generic message and a reference, so store errors and internals never reach
 * the client.
 */
export async function run (deps: ToolDeps, body: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await body()
  } catch (err) {
    if (err instanceof WorkspaceError) return refusal(err.message)
    const ref = randomUUID().slice(0, 8)
    deps.log?.error({ err, ref }, 'tool call failed')
    if (isRedisUnavailable(err)) return refusal(`The workspace store is unavailable right now; try again in a moment (reference ${ref}).`)
    return refusal(`Something went wrong on our side; try again later (reference ${ref}).`)
  }
}

export const workspaceId = z.string().min(1).max(64).describe('The workspace id, as list_workspaces returns it (e.g. "ws_…").')
export const page = {
  cursor: z.string().max(200).optional().describe('Where to continue: the nextCursor of the previous page. Omit for the first page.'),
  limit: z.number().int().min(1).max(MAX_PAGE).optional().describe(`How many items to return (1–${MAX_PAGE}, default 20).`)
}
