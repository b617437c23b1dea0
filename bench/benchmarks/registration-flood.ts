import type { Benchmark } from './common.ts'
export const registrationFlood: Benchmark = { name: 'registration-flood', title: '5. Registration flood', async run () { throw new Error('not written yet') } }
