/**
 * `wsmod/plugin`: loading plugin modules from files (TypeScript included) and running plugins in
 * isolation (a worker thread, or a process per connection). The plugin API itself is in the root
 * export (`wsmod`); this subpath is for embedders that load or isolate plugins themselves.
 */
export { loadPlugin, type LoadPluginOptions } from './loader.ts';
export { validatePlugin } from './validate.ts';
export { createWorkerPlugin, type WorkerPluginOptions } from './isolation/worker.ts';
export { createProcessPlugin, type ProcessPlugin, type ProcessPluginOptions } from './isolation/process.ts';
