import { runServer } from '@uspl/server'
import { build } from './app.ts'
import { loadConfig } from './config.ts'

await runServer({ service: 'api', loadConfig: () => loadConfig(), build })
