#!/usr/bin/env node
// The installed command. Node >= 22.18 runs the TypeScript source directly (type stripping).
import { main } from "../main.ts";

process.exit(await main());
