// Entry of the follow-up worker's own process (see worker-app.ts):
//   node --conditions=compiled services/connections/dist/worker.js
import { runServer } from '@uspl/server'
import { buildWorker, loadWorkerConfig } from './worker-app.ts'

await runServer({ service: 'connections-worker', loadConfig: () => loadWorkerConfig(), build: buildWorker })
