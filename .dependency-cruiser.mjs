// The layers of DESIGN.md, enforced (`npm test` runs this through test/layers.test.ts):
//
//   protocol  ←  connection  ←  plugin  ←  pubsub (the topic broker)  ←  host  ←  config, client, check, adapters, ops  ←  cluster  ←  cli
//
// (host and plugin form one layer except for pubsub: the host owns a topic broker, which delivers to
// connections and checks topic names with plugin/'s rules, so pubsub sits between plugin and host.)
//
// A layer imports only the layers to its left (and itself). Files at the root of src/ (errors.ts,
// prng.ts, log.ts) are shared leaves any layer may use, and they import no layer; src/index.ts is the
// front door and re-exports from any layer but cli. Type-only imports count: a type dependency is a
// dependency (a protocol type that names a host type would drag the host into protocol's tests).

/** Folders that are not `protocol/`, `connection/`, ... (paths are relative to the working folder). */
const outside = (...allowed) => `^src/(?!(?:${allowed.join('|')})/)[^/]+/`;

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'leaf-imports-layer',
      comment: 'src/errors.ts, src/prng.ts, src/log.ts are shared leaves: every layer may use them, so they may use no layer',
      severity: 'error',
      from: { path: '^src/[^/]+\\.ts$', pathNot: '^src/index\\.ts$' },
      to: { path: '^src/[^/]+/' },
    },
    {
      name: 'protocol-imports-higher-layer',
      comment: 'protocol/ is pure RFC 6455/7692 code: it imports only itself and the shared leaves',
      severity: 'error',
      from: { path: '^src/protocol/' },
      to: { path: outside('protocol') },
    },
    {
      name: 'connection-imports-higher-layer',
      comment: 'connection/ runs one WebSocket over a Duplex: it may use protocol/, nothing above it',
      severity: 'error',
      from: { path: '^src/connection/' },
      to: { path: outside('protocol', 'connection') },
    },
    {
      name: 'host-imports-higher-layer',
      comment: 'host/ sits on plugin/, pubsub/ (its topic broker), connection/ and protocol/; config, client, check, cli, adapters and ops build on it, not the reverse',
      severity: 'error',
      from: { path: '^src/host/' },
      to: { path: outside('protocol', 'connection', 'host', 'plugin', 'pubsub') },
    },
    {
      name: 'plugin-imports-higher-layer',
      comment: 'plugin/ sits on connection/ and protocol/ (and may name host/ types); pubsub/ builds on it, not the reverse',
      severity: 'error',
      from: { path: '^src/plugin/' },
      to: { path: outside('protocol', 'connection', 'host', 'plugin') },
    },
    {
      name: 'pubsub-imports-higher-layer',
      comment: 'pubsub/ (topics, the broker, backplanes) sits on plugin/ (topic rules, API types), connection/ and protocol/; the host owns a broker, so pubsub/ never imports host/',
      severity: 'error',
      from: { path: '^src/pubsub/' },
      to: { path: outside('protocol', 'connection', 'plugin', 'pubsub') },
    },
    {
      name: 'runtime-dependency-in-engine',
      comment: 'protocol/ and connection/ use Node built-ins only (no npm package)',
      severity: 'error',
      from: { path: '^src/(?:protocol|connection)/' },
      to: { dependencyTypes: ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-bundled', 'npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'tool-imports-another-tool',
      comment: 'config/ and client/ are independent of each other and of check/ (check may use the client to drive its cases)',
      severity: 'error',
      from: { path: '^src/(config|client)/' },
      to: { path: '^src/(?:config|client|check)/', pathNot: '^src/$1/' },
    },
    {
      name: 'check-imports-config',
      comment: 'check/ tests a server over the wire: it needs the client and the protocol, not the configuration',
      severity: 'error',
      from: { path: '^src/check/' },
      to: { path: '^src/config/' },
    },
    {
      name: 'cluster-imports-higher-layer',
      comment: 'cluster/ (the --workers primary, worker side, cluster backplane) runs hosts and carries topics: it builds on host, plugin, pubsub and config, not on the tools or the CLI',
      severity: 'error',
      from: { path: '^src/cluster/' },
      to: { path: outside('protocol', 'connection', 'host', 'plugin', 'pubsub', 'config', 'cluster') },
    },
    {
      name: 'imports-cluster',
      comment: 'only the CLI (wsmod serve --workers) and the front door use cluster/; the host and the broker get a Backplane, never the cluster itself',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(?:cli/|cluster/|index\\.ts$)' },
      to: { path: '^src/cluster/' },
    },
    {
      name: 'imports-cli',
      comment: 'cli/ is the top: it parses arguments and calls the library; nothing imports it',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'an import that resolves to nothing is a typo or a missing dependency',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // Type-only imports are dependencies too (see the top of this file).
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist/' },
    // Resolve packages as Node does for an ES module (their `exports` maps, the import condition).
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'node', 'default'],
      mainFields: ['module', 'main'],
    },
  },
};
