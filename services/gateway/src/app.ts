import type { FastifyInstance } from 'fastify'
import { baseFastify, type AppOptions } from '@uspl/server'
import type { Config } from './config.ts'

export type { Config }

export async function build (config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = baseFastify('gateway', config, options)
  return app
}
