import type { Benchmark } from './common.ts'
export const tokenEndpoint: Benchmark = { name: 'token-endpoint', title: '3. Token endpoint', async run () { throw new Error('not written yet') } }
