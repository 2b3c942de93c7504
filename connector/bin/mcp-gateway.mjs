#!/usr/bin/env node
// The installed admin command. Node >= 22.18 runs the TypeScript source directly (type stripping).
import { main } from "../cli/main.ts";

process.exitCode = await main();
