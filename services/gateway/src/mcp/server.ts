/**
 * The MCP servers of the 2025 sessions: one SDK `Server` (v1, the protocol layer: initialize, ping,
 * cancellation, progress) per session, whose two tool handlers point at the process's ToolCatalog. A
 * session costs its Server and transport; the tool list, its JSON Schema and the validators are the
 * catalogue's, computed once. The same nine tools serve the stateless 2026-07-28 requests (stateless.ts).
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js'
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv'
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js'
import type { ToolHost } from '../tools/host.ts'
import type { ToolDeps } from '../tools/context.ts'
import { registerWorkspaceTools } from '../tools/workspaces.ts'
import { registerRecordingTools } from '../tools/recordings.ts'
import { registerLinkTools } from '../tools/links.ts'
import type { ToolCatalog } from './catalog.ts'

export const SERVER_INFO = { name: 'uspl-workspace', version: '0.1.0' }

export const INSTRUCTIONS = 'Tools for the signed-in user\'s workspaces: recordings and their share links. Start with list_workspaces; every other tool takes a workspace_id from it.'

/**
 * What every session's server is given, the same objects for all of them: what it announces, and the JSON
 * Schema validator (without one, the SDK's Server builds its own Ajv instance per session).
 */
const OPTIONS = { capabilities: { tools: { listChanged: true } }, instructions: INSTRUCTIONS, jsonSchemaValidator: new AjvJsonSchemaValidator() }

/** The nine workspace tools, on any host (the catalogue, or the v2 SDK's server). */
export function registerTools (host: ToolHost, deps: ToolDeps): void {
  registerWorkspaceTools(host, deps)
  registerRecordingTools(host, deps)
  registerLinkTools(host, deps)
}

/** A new session's server: the SDK's protocol layer over the shared catalogue. */
export function sessionServer (catalog: ToolCatalog): Server {
  const server = new Server(SERVER_INFO, OPTIONS)
  server.setRequestHandler(ListToolsRequestSchema, () => catalog.listResult)
  server.setRequestHandler(CallToolRequestSchema, (request, extra) => catalog.call(request.params.name, request.params.arguments, { authInfo: extra.authInfo }))
  return server
}
