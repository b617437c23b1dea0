import type { Benchmark } from './common.ts'
export const revocation: Benchmark = { name: 'revocation', title: '2. Revocation to drop', async run () { throw new Error('not written yet') } }
