/**
 * Where the tools are registered. They are written once against this small interface (zod 4 schemas, a
 * body taking the arguments and the caller). The gateway registers them once into its ToolCatalog
 * (mcp/catalog.ts), which both the 2025 sessions and the stateless 2026-07-28 requests serve. The two
 * adapters below put the same tools on the SDKs' own McpServer: the benchmarks' bare baselines do, and the
 * catalogue's test compares against it. Each maps its SDK's handler context to the caller's AuthInfo.
 */
import type { McpServer as McpServerV1 } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { McpServer as McpServerV2 } from '@modelcontextprotocol/server'
import type { CallToolResult, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js'
import { z } from 'zod'

/** The part of the verified token the tools read (both SDKs' AuthInfo have it). */
export interface Caller {
  authInfo?: { extra?: Record<string, unknown> }
}

export type Shape = Record<string, z.ZodType>

export interface ToolConfig<S extends Shape> {
  title: string
  description: string
  inputSchema: S
  annotations?: ToolAnnotations
}

export type ToolBody<S extends Shape> = (args: z.infer<z.ZodObject<S>>, caller: Caller) => Promise<CallToolResult>

export interface ToolHost {
  tool: <S extends Shape>(name: string, config: ToolConfig<S>, body: ToolBody<S>) => void
}

type AnyBody = (args: unknown, caller: Caller) => Promise<CallToolResult>

/** Registers on the v1 SDK's McpServer (sessions); its handler's `extra` carries authInfo. */
export function v1Host (server: McpServerV1): ToolHost {
  return {
    tool (name, config, body) {
      const register = server.registerTool.bind(server) as unknown as (name: string, config: unknown, cb: (args: unknown, extra: { authInfo?: Caller['authInfo'] }) => Promise<CallToolResult>) => void
      register(name, config, async (args, extra) => (body as AnyBody)(args, { authInfo: extra.authInfo }))
    }
  }
}

/** Registers on the v2 SDK's McpServer (stateless 2026-07-28); its handler's `ctx.http` carries authInfo. */
export function v2Host (server: McpServerV2): ToolHost {
  return {
    tool (name, config, body) {
      const register = server.registerTool.bind(server) as unknown as (name: string, config: unknown, cb: (args: unknown, ctx: { http?: { authInfo?: Caller['authInfo'] } }) => Promise<CallToolResult>) => void
      register(name, { ...config, inputSchema: z.object(config.inputSchema) }, async (args, ctx) => (body as AnyBody)(args, { authInfo: ctx.http?.authInfo }))
    }
  }
}
