import { definePlugin, definePluginFactory } from 'wsmod';

/** The plugin's options: the route's `options` in wsmod.config.yaml. */
export interface Options {
  /** Sent to each new session, and put before every text message echoed back. Default "Hello". */
  greeting?: string;
}

/**
 * A plugin factory: wsmod calls it once per route with that route's options, so two routes using
 * this file do not share state. Throwing here refuses the configuration, naming this file.
 */
export default definePluginFactory<Options | undefined>((options, context) => {
  if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options))) {
    throw new Error('options must be an object, like { greeting: Hello }');
  }
  const greeting: unknown = options?.greeting ?? 'Hello';
  if (typeof greeting !== 'string' || greeting.trim() === '') {
    throw new Error(`"greeting" must be a non-empty string, got ${JSON.stringify(greeting)}`);
  }
  context.log.debug({ path: context.path, greeting }, '{{name}}: ready');

  return definePlugin({
    name: '{{name}}',
    apiVersion: 1,
    onOpen(session) {
      session.send(`${greeting}!`);
    },
    onMessage(session, data, isBinary) {
      // Text comes back with the greeting; binary comes back as it is.
      if (isBinary) session.send(data, { binary: true });
      else session.send(`${greeting}, ${data.toString()}`);
    },
  });
});
