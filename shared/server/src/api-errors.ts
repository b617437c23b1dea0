/**
 * The REST APIs' one error shape, `{ "error": { "code", "message" } }` (the connections API and the
 * workspace API): the schema their OpenAPI documents reference as `Error`. The handler that answers every
 * failure in it is the shared one, in the API's format (error-handler.ts).
 */
import { Type } from '@uspl/config'

export { apiErrorHandler } from './error-handler.ts'

export const ErrorBody = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String() })
}, { $id: 'Error', description: 'every error: a stable code and a message' })

const errorRef = Type.Ref('Error')
/** Response schemas for the given error statuses, all the shared `Error`. */
export const errors = (...codes: number[]): Record<number, typeof errorRef> =>
  Object.fromEntries(codes.map((c) => [c, errorRef]))
