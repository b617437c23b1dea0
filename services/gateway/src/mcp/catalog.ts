/**
 * The workspace tools as one catalogue, built once per process: what is the same for every session is
 * computed here and never again. That is the `tools/list` result (each tool's input schema converted to
 * JSON Schema by the SDK's own converter, so clients see exactly what the SDK's McpServer would list), the
 * argument validators (one zod object per tool), and the bodies. A session's server only points at it.
 *
 * `call` follows the v1 SDK McpServer's semantics for `tools/call`: an unknown tool or arguments that do
 * not validate are tool errors (isError) with the SDK's wording, and the body runs with the caller.
 */
import { z } from 'zod'
import { ErrorCode, McpError, type CallToolResult, type ListToolsResult, type Tool } from '@modelcontextprotocol/sdk/types.js'
import { toJsonSchemaCompat } from '@modelcontextprotocol/sdk/server/zod-json-schema-compat.js'
import type { Caller, Shape, ToolBody, ToolConfig, ToolHost } from '../tools/host.ts'
import type { ToolDeps } from '../tools/context.ts'
import { registerTools } from './server.ts'

interface Entry {
  config: ToolConfig<Shape>
  schema: z.ZodObject<Shape>
  body: ToolBody<Shape>
}

function toolError (message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true }
}

/** The SDK's message for a zod failure: each issue's message, with its path when it has one. */
function issuesMessage (error: z.ZodError): string {
  return error.issues.map((i) => i.path.length ? `${i.message} at ${i.path.join('.')}` : i.message).join('\n')
}

export class ToolCatalog {
  /** the tools/list result, shared by every session (never mutated) */
  readonly listResult: ListToolsResult
  /** name → definition, as registered (in order) */
  readonly entries = new Map<string, Entry>()

  constructor (deps: ToolDeps) {
    const host: ToolHost = {
      tool: (name, config, body) => {
        const c = config as unknown as ToolConfig<Shape>
        this.entries.set(name, { config: c, schema: z.object(c.inputSchema), body: body as unknown as ToolBody<Shape> })
      }
    }
    registerTools(host, deps)
    const tools: Tool[] = [...this.entries].map(([name, { config, schema }]) => ({
      name,
      title: config.title,
      description: config.description,
      inputSchema: toJsonSchemaCompat(schema as never, { strictUnions: true, pipeStrategy: 'input' }) as Tool['inputSchema'],
      annotations: config.annotations,
      // what the SDK's registerTool records for a plain (non-task) tool
      execution: { taskSupport: 'forbidden' }
    }))
    this.listResult = deepFreeze({ tools })
  }

  /** Runs one tool for the caller; never throws for the client's mistakes (they are tool errors). */
  async call (name: string, args: unknown, caller: Caller): Promise<CallToolResult> {
    const entry = this.entries.get(name)
    if (!entry) return toolError(new McpError(ErrorCode.InvalidParams, `Tool ${name} not found`).message)
    const parsed = entry.schema.safeParse(args ?? {})
    if (!parsed.success) {
      return toolError(new McpError(ErrorCode.InvalidParams, `Input validation error: Invalid arguments for tool ${name}: ${issuesMessage(parsed.error)}`).message)
    }
    try {
      return await entry.body(parsed.data, caller)
    } catch (err) {
      return toolError(err instanceof Error ? err.message : String(err))
    }
  }
}

function deepFreeze<T> (value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}
