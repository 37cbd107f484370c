import { WsmodError } from '../errors.ts';
import { PLUGIN_API_VERSION, type Plugin } from './api.ts';

const HOOKS = ['onUpgrade', 'onOpen', 'onMessage', 'onClose', 'onDrain', 'onShutdown'] as const;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Narrows an untrusted value (a module's default export, an object handed to createHost) to a v1
 * plugin, or throws a WSMOD_ERR_PLUGIN_* error naming `source` and the first problem found.
 */
export function validatePlugin(value: unknown, source: string): Plugin<unknown> {
  const fail = (problem: string): never => {
    throw new WsmodError('WSMOD_ERR_PLUGIN_INVALID', `${source}: ${problem}`);
  };
  if (typeof value !== 'object' || value === null) {
    return fail(`expected a plugin object, got ${describe(value)}: write \`export default definePlugin({ name, apiVersion: ${PLUGIN_API_VERSION}, onMessage… })\``);
  }
  const p = value as Record<string, unknown>;
  if (typeof p['name'] !== 'string' || p['name'] === '') fail(`"name" must be a non-empty string, got ${describe(p['name'])}`);
  if (p['apiVersion'] !== PLUGIN_API_VERSION) {
    if (typeof p['apiVersion'] !== 'number') fail(`"apiVersion" must be ${PLUGIN_API_VERSION}, got ${describe(p['apiVersion'])}: write \`apiVersion: ${PLUGIN_API_VERSION}\``);
    throw new WsmodError(
      'WSMOD_ERR_PLUGIN_API_VERSION',
      `${source}: plugin "${String(p['name'])}" wants API version ${String(p['apiVersion'])}; this host provides ${PLUGIN_API_VERSION}`,
    );
  }
  if (typeof p['onMessage'] !== 'function') {
    fail(`"onMessage" must be a function, got ${describe(p['onMessage'])}: write \`onMessage(session, data, isBinary) { … }\``);
  }
  for (const hook of HOOKS) {
    if (p[hook] !== undefined && typeof p[hook] !== 'function') fail(`"${hook}" must be a function, got ${describe(p[hook])}`);
  }
  const policy = p['backpressurePolicy'];
  if (policy !== undefined && policy !== 'drop' && policy !== 'close') fail(`"backpressurePolicy" must be 'drop' or 'close', got ${describe(policy)}`);
  const protocols = p['protocols'];
  if (protocols !== undefined) {
    if (!Array.isArray(protocols)) fail('"protocols" must be an array of subprotocol tokens');
    for (const proto of protocols as unknown[]) {
      if (typeof proto !== 'string' || !TOKEN.test(proto)) fail(`"protocols" holds an invalid token: ${describe(proto)}`);
    }
  }
  return value as Plugin<unknown>;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v);
  return typeof v === 'object' || typeof v === 'function' ? typeof v : `${typeof v} ${String(v)}`;
}
