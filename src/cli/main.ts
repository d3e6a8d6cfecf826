#!/usr/bin/env node
// nslab's command line as an ES module (dist/bundle/main.mjs); bin/nslab prefers the startup snapshot.
import { main } from './run.js';

await main(process.argv.slice(2));
