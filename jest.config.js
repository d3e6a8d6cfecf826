// Jest 30 + ts-jest in ESM mode (run with NODE_OPTIONS=--experimental-vm-modules).
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', diagnostics: { warnOnly: false } }] },
  testEnvironment: 'node',
  testEnvironmentOptions: { globalsCleanup: 'off' },
};

export default {
  // Per-project testTimeout is ignored by Jest 30; integration tests build whole topologies.
  testTimeout: 300_000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    // Integration tests build real kernel objects: they refuse to run outside an nslab sandbox.
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.test.ts'] },
    // SIGKILL at every step, then `nslab clean`: a sandbox of its own (npm run test:faults).
    { ...common, displayName: 'faults', testMatch: ['<rootDir>/test/faults/**/*.test.ts'] },
  ],
};
