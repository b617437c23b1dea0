import type { Benchmark } from './common.ts'
export const sessionCost: Benchmark = { name: 'session-cost', title: '4. Session cost', async run () { throw new Error('not written yet') } }
